package rest

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"finesse-relay/xmpp/finesse"
)

// fakeFinesse is an httptest Finesse REST node that behaves like Finesse
// where the client cares: Basic and Bearer authentication with the 5-strike
// lockout, users acting only on their own objects (401 "Invalid
// Authorization User Specified" otherwise), 202 + requestId echo for state
// changes followed by an asynchronous event carrying the requestId,
// capitalised ApiErrors for bad input, 503 with ApiErrors while
// OUT_OF_SERVICE (SystemInfo itself still answers 200), and a few fault
// resources: Dialog/html500 (a Tomcat HTML error page), Dialog/slow (never
// answers until the client gives up), Dialog/huge and Dialog/hugechunked
// (3 MiB bodies with and without Content-Length).
type fakeFinesse struct {
	srv *httptest.Server

	mu           sync.Mutex
	passwords    map[string]string // loginId → password
	tokens       map[string]string // access token → loginId
	failures     map[string]int    // consecutive failed Basic sign-ins
	states       map[string]string // loginId → state
	outOfService bool
	requests     []seen
	events       []finesse.Update // asynchronous notifications "sent" after a 202
}

// seen is one request as the fake received it.
type seen struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

const lockoutAfter = 5

func newFakeFinesse(t testing.TB) *fakeFinesse {
	f := &fakeFinesse{
		passwords: map[string]string{"1001": "demo", "1002": "demo", "2001": "demo"},
		tokens:    map[string]string{},
		failures:  map[string]int{},
		states:    map[string]string{"1001": "NOT_READY", "1002": "READY", "2001": "NOT_READY"},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeFinesse) side() Side { return Side{Name: "A", BaseURL: f.srv.URL} }

// seenRequests returns a copy of the requests received so far.
func (f *fakeFinesse) seenRequests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.requests...)
}

// attempts counts requests whose path starts with prefix.
func (f *fakeFinesse) attempts(prefix string) int {
	n := 0
	for _, r := range f.seenRequests() {
		if strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeFinesse) lastRequest(t testing.TB) seen {
	t.Helper()
	rs := f.seenRequests()
	if len(rs) == 0 {
		t.Fatal("fake Finesse received no request")
	}
	return rs[len(rs)-1]
}

func (f *fakeFinesse) setOutOfService(v bool) {
	f.mu.Lock()
	f.outOfService = v
	f.mu.Unlock()
}

func (f *fakeFinesse) addToken(tok, loginID string) {
	f.mu.Lock()
	f.tokens[tok] = loginID
	f.mu.Unlock()
}

func (f *fakeFinesse) eventsFor(requestID string) []finesse.Update {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []finesse.Update
	for _, e := range f.events {
		if e.RequestID == requestID {
			out = append(out, e)
		}
	}
	return out
}

func apiErrorsXML(errorType, message, data string) string {
	return "<ApiErrors><ApiError><ErrorType>" + errorType + "</ErrorType><ErrorMessage>" + message +
		"</ErrorMessage><ErrorData>" + data + "</ErrorData></ApiError></ApiErrors>"
}

const tomcat500 = `<!doctype html><html lang="en"><head><title>HTTP Status 500 – Internal Server Error</title><style type="text/css">body {font-family:Tahoma,Arial,sans-serif;}</style></head><body><h1>HTTP Status 500 – Internal Server Error</h1><hr class="line" /><p><b>Type</b> Exception Report</p><p><b>Message</b> java.lang.NullPointerException</p></body></html>`

func (f *fakeFinesse) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	f.requests = append(f.requests, seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)})
	f.mu.Unlock()
	if id := r.Header.Get("requestId"); id != "" {
		w.Header().Set("requestId", id) // Finesse echoes it
	}
	path, ok := strings.CutPrefix(r.URL.Path, finesse.APIPrefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	segs := strings.Split(path, "/")
	if path == "SystemInfo" {
		f.systemInfo(w)
		return
	}
	user, ok := f.authenticate(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	oos := f.outOfService
	f.mu.Unlock()
	if oos {
		writeXML(w, http.StatusServiceUnavailable, apiErrorsXML("Service Unavailable", "SERVICE_UNAVAILABLE", "OUT_OF_SERVICE"))
		return
	}
	switch {
	case len(segs) == 2 && segs[0] == "Dialog":
		f.dialog(w, r, segs[1])
	case len(segs) >= 2 && segs[0] == "User":
		if segs[1] != user {
			writeXML(w, http.StatusUnauthorized, apiErrorsXML("Invalid Authorization User Specified", "UNAUTHORIZED", user))
			return
		}
		f.user(w, r, segs[1], segs[2:], body)
	case len(segs) == 2 && segs[0] == "Team":
		writeXML(w, http.StatusOK, `<Team><uri>/finesse/api/Team/`+segs[1]+`</uri><id>`+segs[1]+`</id><name>Support</name><users><User><loginId>1001</loginId><firstName>Ada</firstName><lastName>Agent</lastName><state>NOT_READY</state></User><User><loginId>1002</loginId><state>READY</state></User></users></Team>`)
	case len(segs) == 2 && segs[0] == "Queue":
		writeXML(w, http.StatusOK, `<Queue><uri>/finesse/api/Queue/`+segs[1]+`</uri><name>Sales</name><statistics><callsInQueue>3</callsInQueue><startTimeOfLongestCallInQueue>2024-01-01T10:00:00.000Z</startTimeOfLongestCallInQueue><agentsReady>2</agentsReady><agentsNotReady>1</agentsNotReady><agentsBusyOther>0</agentsBusyOther><agentsLoggedOn>3</agentsLoggedOn><agentsTalkingInbound>0</agentsTalkingInbound><agentsTalkingOutbound>0</agentsTalkingOutbound><agentsTalkingInternal>0</agentsTalkingInternal><agentsWrapUpNotReady>0</agentsWrapUpNotReady><agentsWrapUpReady>0</agentsWrapUpReady></statistics></Queue>`)
	case path == "ReasonCodes":
		writeXML(w, http.StatusOK, `<ReasonCodes/>`)
	default:
		writeXML(w, http.StatusNotFound, apiErrorsXML("Not Found", "NOT_FOUND", path))
	}
}

func writeXML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (f *fakeFinesse) systemInfo(w http.ResponseWriter) {
	f.mu.Lock()
	status := "IN_SERVICE"
	if f.outOfService {
		status = "OUT_OF_SERVICE"
	}
	f.mu.Unlock()
	writeXML(w, http.StatusOK, `<SystemInfo><status>`+status+`</status><deploymentType>UCCE</deploymentType><systemAuthMode>NON_SSO</systemAuthMode><xmppDomain>finesse-a.example.com</xmppDomain><xmppPubSubDomain>pubsub.finesse-a.example.com</xmppPubSubDomain><primaryNode><host>finesse-a.example.com</host></primaryNode><secondaryNode><host>finesse-b.example.com</host></secondaryNode><uri>/finesse/api/SystemInfo</uri></SystemInfo>`)
}

// authenticate checks the Authorization header like Finesse: Basic
// credentials count failures and lock the account after five in a row.
func (f *fakeFinesse) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	refuse := func(who string) (string, bool) {
		writeXML(w, http.StatusUnauthorized, apiErrorsXML("Authentication Failure", "UNAUTHORIZED", who))
		return "", false
	}
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return refuse("")
		}
		user, pass, _ := strings.Cut(string(raw), ":")
		if f.failures[user] >= lockoutAfter {
			return refuse(user) // locked out
		}
		if want, ok := f.passwords[user]; !ok || want != pass {
			f.failures[user]++
			return refuse(user)
		}
		f.failures[user] = 0
		return user, true
	case "bearer":
		if user, ok := f.tokens[cred]; ok {
			return user, true
		}
		return refuse("")
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusUnauthorized) // the container's answer
	_, _ = io.WriteString(w, `<html><head><title>Apache Tomcat - Error report</title></head><body>HTTP Status 401</body></html>`)
	return "", false
}

var validStates = map[string]bool{"READY": true, "NOT_READY": true, "LOGOUT": true, "LOGIN": true}

func (f *fakeFinesse) user(w http.ResponseWriter, r *http.Request, id string, sub []string, body []byte) {
	switch {
	case len(sub) == 0 && r.Method == http.MethodGet:
		f.mu.Lock()
		u := finesse.User{URI: finesse.UserNode(id), LoginID: id, LoginName: "agent" + id, State: f.states[id], Extension: "5" + id,
			ReasonCodeID: "-1", Roles: []string{"Agent"}, TeamID: "10", TeamName: "Support", Dialogs: finesse.DialogsNode(id)}
		f.mu.Unlock()
		data, _ := xml.Marshal(&u)
		writeXML(w, http.StatusOK, string(data))
	case len(sub) == 0 && r.Method == http.MethodPut:
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
			writeXML(w, http.StatusBadRequest, apiErrorsXML("Invalid Input", "INVALID_INPUT", "Content-Type"))
			return
		}
		var req struct {
			State string `xml:"state"`
		}
		if err := xml.Unmarshal(body, &req); err != nil || !validStates[req.State] {
			writeXML(w, http.StatusBadRequest, apiErrorsXML("Invalid Input", "INVALID_STATE", req.State))
			return
		}
		f.mu.Lock()
		f.states[id] = req.State
		f.events = append(f.events, finesse.Update{Node: finesse.UserNode(id), Event: finesse.EventPut, Source: finesse.UserNode(id),
			RequestID: r.Header.Get("requestId"), Data: []byte("<user><state>" + req.State + "</state></user>")})
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted) // the outcome follows as a notification
	case len(sub) == 1 && sub[0] == "Dialogs":
		writeXML(w, http.StatusOK, `<Dialogs><Dialog><id>16817001</id><uri>/finesse/api/Dialog/16817001</uri><state>ALERTING</state><mediaType>Voice</mediaType><fromAddress>5551234</fromAddress><toAddress>5`+id+`</toAddress><participants><Participant><actions><action>ANSWER</action></actions><mediaAddress>5`+id+`</mediaAddress><state>ALERTING</state></Participant></participants></Dialog></Dialogs>`)
	case len(sub) == 1 && sub[0] == "Queues":
		writeXML(w, http.StatusOK, `<Queues><Queue><uri>/finesse/api/Queue/5001</uri><name>Sales</name></Queue><Queue><uri>/finesse/api/Queue/5002</uri><name>Support</name></Queue></Queues>`)
	case len(sub) == 1 && sub[0] == "ReasonCodes":
		cat := r.URL.Query().Get("category")
		writeXML(w, http.StatusOK, `<ReasonCodes><ReasonCode><category>`+cat+`</category><code>32</code><label>Lunch</label><id>16</id><uri>/finesse/api/ReasonCode/16</uri></ReasonCode></ReasonCodes>`)
	default:
		writeXML(w, http.StatusNotFound, apiErrorsXML("Not Found", "NOT_FOUND", r.URL.Path))
	}
}

func (f *fakeFinesse) dialog(w http.ResponseWriter, r *http.Request, id string) {
	switch id {
	case "html500":
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, tomcat500)
	case "slow":
		<-r.Context().Done()
	case "huge", "hugechunked":
		chunk := strings.Repeat("x", 64<<10)
		w.Header().Set("Content-Type", "application/xml")
		if id == "huge" {
			w.Header().Set("Content-Length", fmt.Sprint(48*len(chunk)+len("<Dialog></Dialog>")))
		}
		_, _ = io.WriteString(w, "<Dialog>")
		for range 48 {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, "</Dialog>")
	case "lowercaseerror":
		writeXML(w, http.StatusBadRequest, `<apiErrors><apiError><errorType>Invalid State</errorType><errorMessage>INVALID_STATE</errorMessage><errorData>x</errorData></apiError></apiErrors>`)
	case "forbidden":
		writeXML(w, http.StatusForbidden, apiErrorsXML("Forbidden", "FORBIDDEN", "secondary node"))
	case "plain":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "upstream\x00 said\n\n   no")
	default:
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		writeXML(w, http.StatusOK, `<Dialog><id>`+id+`</id><uri>/finesse/api/Dialog/`+id+`</uri><state>ACTIVE</state></Dialog>`)
	}
}

// newRedirector is Finesse's plain HTTP port: it 301s everything to the
// HTTPS port (here: target's URL).
func newRedirector(t testing.TB, target string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	t.Cleanup(s.Close)
	return s
}
