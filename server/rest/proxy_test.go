package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"finesse-relay/server/cred"
)

// proxyFor returns a proxy whose every caller is the session of client.
func proxyFor(client *Client) http.Handler {
	return NewProxy(ProxyConfig{Resolve: func(*http.Request) (*Client, error) { return client, nil }})
}

// serve runs one request through h.
func serve(h http.Handler, method, target string, body []byte, header http.Header) *httptest.ResponseRecorder {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v) // canonical keys, as a server delivers them
		}
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/xml")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// relayError decodes the proxy's JSON error, or returns ok=false.
func relayError(w *httptest.ResponseRecorder) (code string, ok bool) {
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		return "", false
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
		return "", false
	}
	return e.Error.Code, true
}

func TestProxyAllowList(t *testing.T) {
	f := newFakeFinesse(t)
	h := proxyFor(newTestClient(t, f, agent1001))
	state := []byte("<User><state>READY</state></User>")
	tests := []struct {
		method, target string
		body           []byte
		upstream       string // path Finesse must see; "" = refused by the relay
		status         int    // the relay's status when refused
	}{
		{"GET", "/api/finesse/SystemInfo", nil, "/finesse/api/SystemInfo", 0},
		{"GET", "/api/finesse/User/1001", nil, "/finesse/api/User/1001", 0},
		{"PUT", "/api/finesse/User/1001", state, "/finesse/api/User/1001", 0},
		{"GET", "/api/finesse/User/john.doe@corp-1.com", nil, "/finesse/api/User/john.doe@corp-1.com", 0},
		{"GET", "/api/finesse/User/1001/Dialogs", nil, "/finesse/api/User/1001/Dialogs", 0},
		{"POST", "/api/finesse/User/1001/Dialogs", []byte("<Dialog><requestedAction>MAKE_CALL</requestedAction></Dialog>"), "/finesse/api/User/1001/Dialogs", 0},
		{"GET", "/api/finesse/User/1001/Dialogs/Media", nil, "/finesse/api/User/1001/Dialogs/Media", 0},
		{"GET", "/api/finesse/Dialog/16817001", nil, "/finesse/api/Dialog/16817001", 0},
		{"PUT", "/api/finesse/Dialog/16817001", []byte("<Dialog><requestedAction>ANSWER</requestedAction></Dialog>"), "/finesse/api/Dialog/16817001", 0},
		{"GET", "/api/finesse/User/1001/ReasonCodes?category=NOT_READY", nil, "/finesse/api/User/1001/ReasonCodes", 0},
		{"GET", "/api/finesse/User/1001/ReasonCode/16", nil, "/finesse/api/User/1001/ReasonCode/16", 0},
		{"GET", "/api/finesse/ReasonCodes?category=LOGOUT", nil, "/finesse/api/ReasonCodes", 0},
		{"GET", "/api/finesse/User/1001/WrapUpReasons", nil, "/finesse/api/User/1001/WrapUpReasons", 0},
		{"GET", "/api/finesse/Team/10", nil, "/finesse/api/Team/10", 0},
		{"GET", "/api/finesse/Queue/5001", nil, "/finesse/api/Queue/5001", 0},
		{"GET", "/api/finesse/User/1001/Queues", nil, "/finesse/api/User/1001/Queues", 0},
		{"GET", "/api/finesse/User/1001/Media/1", nil, "/finesse/api/User/1001/Media/1", 0},
		{"PUT", "/api/finesse/User/1001/Media/1", []byte("<Media><state>READY</state></Media>"), "/finesse/api/User/1001/Media/1", 0},

		{"DELETE", "/api/finesse/User/1001", nil, "", 405},
		{"POST", "/api/finesse/User/1001", state, "", 405},
		{"PUT", "/api/finesse/SystemInfo", state, "", 405},
		{"HEAD", "/api/finesse/User/1001", nil, "", 405},
		{"OPTIONS", "/api/finesse/User/1001", nil, "", 405},
		{"GET", "/api/finesse/", nil, "", 404},
		{"GET", "/api/finesse/User", nil, "", 404},
		{"GET", "/api/finesse/User/", nil, "", 404},
		{"GET", "/api/finesse/User/1001/", nil, "", 404},
		{"GET", "/api/finesse/user/1001", nil, "", 404},
		{"GET", "/api/finesse/User//1001", nil, "", 404},
		{"GET", "/api/finesse/User/../SystemInfo", nil, "", 404},
		{"GET", "/api/finesse/User/1001/Dialogs/../../../Team/10", nil, "", 404},
		{"GET", "/api/finesse/User/..%2FSystemInfo", nil, "", 404},
		{"GET", "/api/finesse/User/1001%2FDialogs", nil, "", 404},
		{"GET", "/api/finesse/User/%2e%2e", nil, "", 404},
		{"GET", "/api/finesse/User/%31001", nil, "", 404},
		{"GET", "/api/finesse/User/..", nil, "", 404},
		{"GET", "/api/finesse/User/.", nil, "", 404},
		{"GET", "/api/finesse/Dialog/a..b", nil, "", 404},
		{"GET", "/api/finesse/User/1001;jsessionid=x", nil, "", 404},
		{"GET", "/api/finesse/User/1001%00", nil, "", 404},
		{"GET", "/api/finesse/User/" + strings.Repeat("9", 65), nil, "", 404},
		{"GET", "/api/finesse/Team/10/Users", nil, "", 404},
		{"GET", "/api/finesse/ClientLog", nil, "", 404},
		{"GET", "/api/finesse/finesse/api/User/1001", nil, "", 404},
		{"GET", "/api/finesse/SystemInfo?x=1", nil, "", 400},
		{"GET", "/api/finesse/User/1001/ReasonCodes?category=not-ready", nil, "", 400},
		{"GET", "/api/finesse/User/1001/ReasonCodes?category=LOGOUT&category=NOT_READY", nil, "", 400},
		{"GET", "/api/finesse/User/1001/ReasonCodes?category=LOGOUT&x=1", nil, "", 400},
		{"GET", "/api/finesse/User/1001/ReasonCodes?category=%zz", nil, "", 400},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			before := len(f.seenRequests())
			w := serve(h, tc.method, tc.target, tc.body, nil)
			after := f.seenRequests()
			if tc.upstream == "" {
				if len(after) != before {
					t.Fatalf("refused request reached Finesse as %s", after[len(after)-1].Path)
				}
				code, ok := relayError(w)
				if w.Code != tc.status || !ok || code != CodeNotAllowed {
					t.Fatalf("answer %d %q (%s), want %d not_allowed", w.Code, code, w.Body, tc.status)
				}
				if tc.status == 405 && w.Header().Get("Allow") == "" {
					t.Error("405 without Allow")
				}
				return
			}
			if len(after) != before+1 {
				t.Fatalf("Finesse saw %d requests, want 1 (answer %d %s)", len(after)-before, w.Code, w.Body)
			}
			got := after[len(after)-1]
			if got.Method != tc.method || got.Path != tc.upstream {
				t.Errorf("Finesse saw %s %s, want %s %s", got.Method, got.Path, tc.method, tc.upstream)
			}
			if _, isRelay := relayError(w); isRelay {
				t.Errorf("allowed request answered by the relay: %d %s", w.Code, w.Body)
			}
		})
	}
}

func TestProxyStripsBrowserHeaders(t *testing.T) {
	f := newFakeFinesse(t)
	h := proxyFor(newTestClient(t, f, agent1001))
	w := serve(h, "PUT", "/api/finesse/User/1001", []byte("<User><state>READY</state></User>"), http.Header{
		"Cookie":              {"relay_session=secret-cookie; JSESSIONID=abc"},
		"Authorization":       {"Bearer relay-session-token"},
		"Proxy-Authorization": {"Basic eDp5"},
		"Connection":          {"keep-alive, X-Hop"},
		"X-Hop":               {"hop"},
		"Origin":              {"https://relay.example.com"},
		"Referer":             {"https://relay.example.com/"},
		"X-Forwarded-For":     {"10.0.0.1"},
		"Accept-Language":     {"fr"},
		"Content-Type":        {"application/xml; charset=utf-8"},
	})
	if w.Code != http.StatusAccepted {
		t.Fatalf("answer %d %s", w.Code, w.Body)
	}
	got := f.lastRequest(t).Header
	if a := got.Get("Authorization"); a != "Basic MTAwMTpkZW1v" {
		t.Errorf("Finesse saw Authorization %q, want the session's Basic credential", a)
	}
	for _, k := range []string{"Cookie", "Proxy-Authorization", "X-Hop", "Origin", "Referer", "X-Forwarded-For"} {
		if v := got.Get(k); v != "" {
			t.Errorf("Finesse saw %s: %q", k, v)
		}
	}
	if got.Get("Accept-Language") != "fr" || got.Get("Content-Type") != "application/xml" {
		t.Errorf("Accept-Language %q Content-Type %q", got.Get("Accept-Language"), got.Get("Content-Type"))
	}
}

func TestProxyPassesFinesseErrorsThrough(t *testing.T) {
	f := newFakeFinesse(t)
	h := proxyFor(newTestClient(t, f, agent1001))
	tests := []struct {
		name, method, target string
		body                 []byte
		status               int
		contentType, want    string
	}{
		{"ApiErrors 400", "PUT", "/api/finesse/User/1001", []byte("<User><state>DANCING</state></User>"), 400, "application/xml",
			apiErrorsXML("Invalid Input", "INVALID_STATE", "DANCING")},
		{"other user 401", "GET", "/api/finesse/User/1002", nil, 401, "application/xml",
			apiErrorsXML("Invalid Authorization User Specified", "UNAUTHORIZED", "1001")},
		{"Tomcat HTML 500", "GET", "/api/finesse/Dialog/html500", nil, 500, "text/html;charset=utf-8", tomcat500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, tc.method, tc.target, tc.body, nil)
			if w.Code != tc.status || w.Header().Get("Content-Type") != tc.contentType || w.Body.String() != tc.want {
				t.Fatalf("got %d %q %q, want %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body, tc.status, tc.contentType, tc.want)
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") {
				t.Errorf("CSP = %q, want sandbox", csp)
			}
		})
	}
	// 202 with an empty body and no Content-Type stays without one.
	w := serve(h, "PUT", "/api/finesse/Dialog/1", []byte("<Dialog><requestedAction>ANSWER</requestedAction></Dialog>"), nil)
	if w.Code != http.StatusAccepted || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
		t.Errorf("202: %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
}

func TestProxyRequestIDRoundTrip(t *testing.T) {
	f := newFakeFinesse(t)
	h := proxyFor(newTestClient(t, f, agent1001))
	state := []byte("<User><state>READY</state></User>")

	w := serve(h, "PUT", "/api/finesse/User/1001", state, http.Header{"requestId": {"tab-42.7"}})
	if w.Code != http.StatusAccepted || w.Header().Get("requestId") != "tab-42.7" {
		t.Fatalf("answer %d requestId %q", w.Code, w.Header().Get("requestId"))
	}
	if got := f.lastRequest(t).Header.Get("requestId"); got != "tab-42.7" {
		t.Errorf("Finesse saw requestId %q", got)
	}
	if ev := f.eventsFor("tab-42.7"); len(ev) != 1 {
		t.Errorf("events with the browser's requestId: %d, want 1", len(ev))
	}

	w = serve(h, "PUT", "/api/finesse/User/1001", state, nil)
	gen := w.Header().Get("requestId")
	if !ValidRequestID(gen) || f.lastRequest(t).Header.Get("requestId") != gen || len(f.eventsFor(gen)) != 1 {
		t.Errorf("generated requestId %q not used end to end", gen)
	}

	for _, bad := range []string{"has space", strings.Repeat("a", 65), "a/b", "<x>"} {
		before := len(f.seenRequests())
		w := serve(h, "PUT", "/api/finesse/User/1001", state, http.Header{"requestId": {bad}})
		if code, _ := relayError(w); w.Code != 400 || code != CodeBadRequest || len(f.seenRequests()) != before {
			t.Errorf("requestId %q: %d %q", bad, w.Code, code)
		}
	}
}

func TestProxyOnAccepted(t *testing.T) {
	f := newFakeFinesse(t)
	client := newTestClient(t, f, agent1001)
	type accepted struct{ id, path string }
	var got []accepted
	h := NewProxy(ProxyConfig{
		Resolve: func(*http.Request) (*Client, error) { return client, nil },
		OnAccepted: func(c *Client, id, path string) {
			if c != client {
				t.Error("OnAccepted without the resolved client")
			}
			got = append(got, accepted{id, path})
		},
	})
	state := []byte("<User><state>READY</state></User>")
	tests := []struct {
		method, target string
		body           []byte
		header         http.Header
		want           *accepted // nil: not called
	}{
		{"PUT", "/api/finesse/User/1001", state, http.Header{"requestId": {"tab-1"}}, &accepted{"tab-1", "/finesse/api/User/1001"}},
		{"PUT", "/api/finesse/Dialog/16817001", []byte("<Dialog><requestedAction>ANSWER</requestedAction></Dialog>"), http.Header{"requestId": {"tab-2"}}, &accepted{"tab-2", "/finesse/api/Dialog/16817001"}},
		{"GET", "/api/finesse/User/1001", nil, http.Header{"requestId": {"tab-3"}}, nil},                    // 200, not 202
		{"PUT", "/api/finesse/User/1001", []byte("<User><state>NOPE</state></User>"), nil, nil},             // 400 ApiErrors
		{"PUT", "/api/finesse/Dialog/forbidden", []byte("<Dialog/>"), http.Header{"requestId": {"x"}}, nil}, // 403
	}
	for _, tt := range tests {
		got = nil
		w := serve(h, tt.method, tt.target, tt.body, tt.header)
		switch {
		case tt.want == nil && len(got) != 0:
			t.Errorf("%s %s (%d): OnAccepted called %+v", tt.method, tt.target, w.Code, got)
		case tt.want != nil && (len(got) != 1 || got[0] != *tt.want):
			t.Errorf("%s %s (%d): OnAccepted %+v, want %+v", tt.method, tt.target, w.Code, got, *tt.want)
		}
	}
	// A generated requestId is reported too, the same one the browser gets.
	got = nil
	w := serve(h, "PUT", "/api/finesse/User/1001", state, nil)
	if len(got) != 1 || got[0].id != w.Header().Get("requestId") || got[0].id == "" {
		t.Errorf("generated requestId: OnAccepted %+v, answer %q", got, w.Header().Get("requestId"))
	}
}

func TestProxyBodyChecks(t *testing.T) {
	f := newFakeFinesse(t)
	h := proxyFor(newTestClient(t, f, agent1001))
	big := append([]byte("<User><state>"), bytes.Repeat([]byte("x"), DefaultMaxBodySize)...)
	tests := []struct {
		name        string
		body        []byte
		contentType string
		chunked     bool
		status      int
		code        string
	}{
		{"over the limit", big, "application/xml", false, 413, CodeTooLarge},
		{"over the limit, chunked", big, "application/xml", true, 413, CodeTooLarge},
		{"no content type", []byte("<User/>"), "", false, 415, CodeUnsupportedMediaType},
		{"form post (CSRF)", []byte("state=READY"), "application/x-www-form-urlencoded", false, 415, CodeUnsupportedMediaType},
		{"text/plain (CSRF)", []byte("<User/>"), "text/plain", false, 415, CodeUnsupportedMediaType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.seenRequests())
			req := httptest.NewRequest("PUT", "/api/finesse/User/1001", bytes.NewReader(tc.body))
			if tc.chunked {
				req.ContentLength = -1
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if code, _ := relayError(w); w.Code != tc.status || code != tc.code {
				t.Errorf("answer %d %q, want %d %q", w.Code, code, tc.status, tc.code)
			}
			if len(f.seenRequests()) != before {
				t.Error("request reached Finesse")
			}
		})
	}
	// Exactly at the limit is forwarded.
	w := serve(h, "PUT", "/api/finesse/User/1001", bytes.Repeat([]byte(" "), DefaultMaxBodySize), nil)
	if _, isRelay := relayError(w); isRelay {
		t.Errorf("body of exactly the limit refused: %d %s", w.Code, w.Body)
	}
}

func TestProxyUnauthenticated(t *testing.T) {
	f := newFakeFinesse(t)
	for name, resolve := range map[string]func(*http.Request) (*Client, error){
		"error":      func(*http.Request) (*Client, error) { return nil, errors.New("no relay session") },
		"nil client": func(*http.Request) (*Client, error) { return nil, nil },
		"no resolve": nil,
	} {
		t.Run(name, func(t *testing.T) {
			h := NewProxy(ProxyConfig{Resolve: resolve})
			w := serve(h, "GET", "/api/finesse/User/1001", nil, nil)
			if code, _ := relayError(w); w.Code != 401 || code != CodeUnauthenticated {
				t.Errorf("answer %d %q", w.Code, code)
			}
		})
	}
	if n := len(f.seenRequests()); n != 0 {
		t.Errorf("Finesse saw %d requests", n)
	}
}

func TestProxyUpstreamFailures(t *testing.T) {
	f := newFakeFinesse(t)
	down := newFakeFinesse(t)
	downURL := down.srv.URL
	down.srv.Close()
	redirect := newRedirector(t, f.srv.URL)
	at := func(base string, mod ...func(*Config)) http.Handler {
		cfg := Config{HTTPClient: testHTTPClient(t), Credentials: agent1001, Timeout: 200 * time.Millisecond,
			Side: func() Side { return Side{Name: "A", BaseURL: base} }}
		for _, m := range mod {
			m(&cfg)
		}
		return proxyFor(New(cfg))
	}
	tests := []struct {
		name   string
		h      http.Handler
		target string
		status int
		code   string
	}{
		{"unreachable", at(downURL), "/api/finesse/User/1001", 502, CodeFinesseUnreachable},
		{"timeout", at(f.srv.URL), "/api/finesse/Dialog/slow", 504, CodeTimeout},
		{"redirect", at(redirect.URL), "/api/finesse/User/1001", 502, CodeFinesseRedirect},
		{"too large", at(f.srv.URL), "/api/finesse/Dialog/huge", 502, CodeFinesseTooLarge},
		{"no side", NewProxy(ProxyConfig{Resolve: func(*http.Request) (*Client, error) { return New(Config{}), nil }}), "/api/finesse/User/1001", 500, CodeInternal},
		{"token refresh failed for now", at(f.srv.URL, func(c *Config) { c.Credentials = Bearer{Source: failingSource{}} }), "/api/finesse/User/1001", 503, CodeCredentialsUnavailable},
		{"token gone for good", at(f.srv.URL, func(c *Config) { c.Credentials = Bearer{Source: failingSource{err: cred.ErrSignInAgain}} }), "/api/finesse/User/1001", 401, CodeCredentialsUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(tc.h, "GET", tc.target, nil, nil)
			if code, _ := relayError(w); w.Code != tc.status || code != tc.code {
				t.Errorf("answer %d %q (%s), want %d %q", w.Code, code, w.Body, tc.status, tc.code)
			}
		})
	}
}

func TestProxyRefusedCredentialNotResent(t *testing.T) {
	f := newFakeFinesse(t)
	h := proxyFor(newTestClient(t, f, Basic{Username: "1001", Password: "stale"}))
	w := serve(h, "GET", "/api/finesse/User/1001", nil, nil)
	if w.Code != 401 || w.Header().Get("Content-Type") != "application/xml" {
		t.Fatalf("first: %d %q, want Finesse's own 401", w.Code, w.Header().Get("Content-Type"))
	}
	for range lockoutAfter {
		w = serve(h, "GET", "/api/finesse/User/1001", nil, nil)
		if code, _ := relayError(w); w.Code != 401 || code != CodeCredentialsRefused {
			t.Fatalf("again: %d %q", w.Code, code)
		}
	}
	if n := f.attempts("/finesse/api/User/1001"); n != 1 {
		t.Errorf("Finesse saw %d attempts, want 1", n)
	}
}

func TestProxyUnderStripPrefix(t *testing.T) {
	f := newFakeFinesse(t)
	h := http.StripPrefix("/api/finesse", proxyFor(newTestClient(t, f, agent1001)))
	w := serve(h, "GET", "/api/finesse/User/1001", nil, nil)
	if w.Code != 200 || f.lastRequest(t).Path != "/finesse/api/User/1001" {
		t.Errorf("answer %d, Finesse saw %q", w.Code, f.lastRequest(t).Path)
	}
}
