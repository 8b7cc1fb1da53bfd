package sim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	mxmpp "mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	relayxmpp "finesse-relay/xmpp"
	"finesse-relay/xmpp/bosh"
	"finesse-relay/xmpp/finesse"
)

// started is a running Sim with clients that trust its CA.
type started struct {
	t    *testing.T
	s    *Sim
	ep   Endpoints
	pool *x509.CertPool
	hc   *http.Client
}

func startSim(t *testing.T, cfg Config) *started {
	t.Helper()
	cfg.Fast = true
	if cfg.Agents == 0 {
		cfg.Agents = 5
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	ep := s.Endpoints()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ep.CACertPEM) {
		t.Fatal("CA PEM does not parse")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	st := &started{t: t, s: s, ep: ep, pool: pool, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return 10 s after its context ended")
		}
		tr.CloseIdleConnections()
	})
	return st
}

// rest calls side's REST API; auth is "id:pw" or "Bearer …".
func (st *started) rest(side int, method, path, auth, body string, hdr ...string) (*http.Response, string) {
	st.t.Helper()
	sd := st.ep.Sides[side]
	url := "https://" + net.JoinHostPort(sd.Host, strconv.Itoa(sd.HTTPSPort)) + path
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	switch {
	case strings.HasPrefix(auth, "Bearer "):
		req.Header.Set("Authorization", auth)
	case auth != "":
		id, pw, _ := strings.Cut(auth, ":")
		req.SetBasicAuth(id, pw)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rsp, err := st.hc.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	return rsp, string(b)
}

// updates collects what a relay XMPP client receives.
type updates struct {
	mu   sync.Mutex
	list []finesse.Update
	wake chan struct{}
}

func newUpdates() *updates { return &updates{wake: make(chan struct{}, 1)} }

func (u *updates) add(x finesse.Update) {
	u.mu.Lock()
	u.list = append(u.list, x)
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (u *updates) waitFor(t *testing.T, what string, match func(finesse.Update) bool) finesse.Update {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		u.mu.Lock()
		for _, x := range u.list {
			if match(x) {
				u.mu.Unlock()
				return x
			}
		}
		got := dump(u.list)
		u.mu.Unlock()
		select {
		case <-u.wake:
		case <-deadline:
			t.Fatalf("no update %s; got:\n%s", what, got)
		}
	}
}

// relayClient connects the relay's own XMPP client and runs it until the
// test ends (or the server drops it; runErr then receives the reason).
func (st *started) relayClient(side int, transport relayxmpp.Transport, user, password, resource string) (*relayxmpp.Client, *updates, <-chan error) {
	st.t.Helper()
	sd := st.ep.Sides[side]
	addr := net.JoinHostPort(sd.Host, strconv.Itoa(sd.XMPPPort))
	switch transport {
	case relayxmpp.TransportTLS:
		addr = net.JoinHostPort(sd.Host, strconv.Itoa(sd.XMPPTLSPort))
	case relayxmpp.TransportWebSocket:
		addr = sd.WebSocketURL
	}
	ups := newUpdates()
	c, err := relayxmpp.Dial(context.Background(), relayxmpp.Config{
		Transport: transport, Address: addr, Domain: sd.XMPPDomain, PubSubDomain: sd.PubSubDomain,
		TLSConfig: &tls.Config{RootCAs: st.pool, ServerName: sd.XMPPDomain},
		Username:  user, Password: password, Resource: resource,
		OnUpdate: ups.add,
	})
	if err != nil {
		st.t.Fatalf("XMPP dial (%s, side %s): %v", transport, sd.Name, err)
	}
	runErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { runErr <- c.Run(ctx) }()
	st.t.Cleanup(func() {
		cancel()
		_ = c.Close()
	})
	return c, ups, runErr
}

func (st *started) waitState(id, state string) {
	st.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if s, _ := st.s.UserState(id); s == state {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s, _ := st.s.UserState(id)
	st.t.Fatalf("user %s in %s, want %s", id, s, state)
}

func TestSimRESTAndXMPPEndToEnd(t *testing.T) {
	st := startSim(t, Config{})
	for _, tr := range []relayxmpp.Transport{relayxmpp.TransportTCP, relayxmpp.TransportTLS, relayxmpp.TransportWebSocket} {
		t.Run(string(tr), func(t *testing.T) {
			st.t = t
			_, ups, _ := st.relayClient(sideA, tr, "1001", "demo", "relay-"+string(tr))
			reqID := "e2e-" + string(tr)
			rsp, body := st.rest(sideA, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("LOGIN", "extension", "51001"), "requestId", reqID)
			if rsp.StatusCode != 202 || body != "" || rsp.Header.Get("requestId") != reqID {
				t.Fatalf("PUT: %d %q requestId %q", rsp.StatusCode, body, rsp.Header.Get("requestId"))
			}
			u := ups.waitFor(t, "User PUT with the requestId", func(u finesse.Update) bool {
				return u.RequestID == reqID && u.Node == finesse.UserNode("1001")
			})
			x, err := finesse.ParseUser(u.Data)
			if err != nil || x.LoginID != "1001" {
				t.Fatalf("user %+v (%v)", x, err)
			}
			// Log out again for the next transport.
			st.rest(sideA, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("LOGOUT"))
			st.waitState("1001", stateLogout)
		})
	}
}

func TestSimBearerTokenForRESTAndXMPP(t *testing.T) {
	st := startSim(t, Config{})
	access, _, err := st.s.IdS().IssueForTest("agent1002", "finesse-desktop")
	if err != nil {
		t.Fatal(err)
	}
	// The IdS user_id is the login name; Finesse maps it with GET /User/{loginName}.
	rsp, body := st.rest(sideB, "GET", "/finesse/api/User/agent1002", "Bearer "+access, "")
	u, perr := finesse.ParseUser([]byte(body))
	if rsp.StatusCode != 200 || perr != nil || u.LoginID != "1002" {
		t.Fatalf("GET by loginName with Bearer: %d %s", rsp.StatusCode, body)
	}
	// The token is the XMPP password for the loginId.
	_, ups, _ := st.relayClient(sideB, relayxmpp.TransportTLS, "1002", access, "relay-sso")
	st.rest(sideB, "PUT", "/finesse/api/User/1002", "Bearer "+access, stateBody("LOGIN", "extension", "51002"), "requestId", "sso-login")
	ups.waitFor(t, "the login event", func(u finesse.Update) bool { return u.RequestID == "sso-login" })
	// A token of another user is not 1001's password.
	sd := st.ep.Sides[sideB]
	_, err = relayxmpp.Dial(context.Background(), relayxmpp.Config{
		Transport: relayxmpp.TransportTLS, Address: net.JoinHostPort(sd.Host, strconv.Itoa(sd.XMPPTLSPort)),
		Domain: sd.XMPPDomain, TLSConfig: &tls.Config{RootCAs: st.pool, ServerName: sd.XMPPDomain},
		Username: "1001", Password: access, Resource: "relay-x",
	})
	var se *relayxmpp.SessionError
	if !errors.As(err, &se) || se.Reason != relayxmpp.ReasonAuth {
		t.Fatalf("1001 with 1002's token: %v, want an auth failure", err)
	}
	// Revoked: REST 401.
	st.s.IdS().Revoke("agent1002")
	if rsp, _ := st.rest(sideB, "GET", "/finesse/api/User/1002", "Bearer "+access, ""); rsp.StatusCode != 401 {
		t.Fatalf("revoked token: %d", rsp.StatusCode)
	}
}

// rawClient is a hand-written XMPP client over direct TLS that keeps the
// bytes it reads, to check the wire form of events.
type rawClient struct {
	conn net.Conn
	raw  bytes.Buffer
	mu   sync.Mutex
	dec  *xml.Decoder
}

func (st *started) rawClient(side int, user, pass, resource string) *rawClient {
	st.t.Helper()
	sd := st.ep.Sides[side]
	conn, err := tls.Dial("tcp", net.JoinHostPort(sd.Host, strconv.Itoa(sd.XMPPTLSPort)), &tls.Config{RootCAs: st.pool, ServerName: sd.XMPPDomain})
	if err != nil {
		st.t.Fatal(err)
	}
	st.t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := &rawClient{conn: conn}
	c.reset()
	header := fmt.Sprintf(`<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`, sd.XMPPDomain)
	c.send(st.t, header)
	c.expect(st.t, "features")
	creds := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	c.send(st.t, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`+creds+`</auth>`)
	c.expect(st.t, "success")
	c.reset()
	c.send(st.t, header)
	c.expect(st.t, "features")
	c.send(st.t, `<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>`+resource+`</resource></bind></iq>`)
	c.expect(st.t, "iq")
	c.send(st.t, `<presence><priority>0</priority></presence>`)
	return c
}

type teeReader struct{ c *rawClient }

func (r teeReader) Read(p []byte) (int, error) {
	n, err := r.c.conn.Read(p)
	r.c.mu.Lock()
	r.c.raw.Write(p[:n])
	r.c.mu.Unlock()
	return n, err
}

func (c *rawClient) reset() {
	c.dec = xml.NewDecoder(bufio.NewReader(teeReader{c}))
	c.dec.Strict = true
}

func (c *rawClient) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		t.Fatal(err)
	}
}

// expect reads top-level elements until one named local; the stream
// header is skipped.
func (c *rawClient) expect(t *testing.T, local string) {
	t.Helper()
	for {
		tok, err := c.dec.Token()
		if err != nil {
			t.Fatalf("waiting for <%s>: %v\n%s", local, err, c.raw.String())
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local == "stream" {
			continue
		}
		if err := c.dec.Skip(); err != nil {
			t.Fatal(err)
		}
		if se.Name.Local == local {
			return
		}
	}
}

func TestSimRawEventEnvelope(t *testing.T) {
	st := startSim(t, Config{})
	c := st.rawClient(sideA, "1001", "demo", "raw")
	// The service user is available (F.11).
	c.expect(t, "presence")
	rsp, _ := st.rest(sideA, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("LOGIN", "extension", "51001"), "requestId", "raw-1")
	if rsp.StatusCode != 202 {
		t.Fatal(rsp.StatusCode)
	}
	c.expect(t, "message")
	c.mu.Lock()
	wire := c.raw.String()
	c.mu.Unlock()
	i := strings.LastIndex(wire, "<message")
	msg := wire[i:]
	for _, want := range []string{
		"from='pubsub.finesse-a.demo.local'", "<event xmlns='http://jabber.org/protocol/pubsub#event'>",
		"<items node='/finesse/api/User/1001'>", "<notification xmlns='http://jabber.org/protocol/pubsub'>&lt;Update&gt;&lt;data&gt;&lt;user&gt;",
		"&lt;requestId&gt;raw-1&lt;/requestId&gt;", "&lt;source&gt;/finesse/api/User/1001&lt;/source&gt;",
	} {
		if !strings.Contains(strings.ReplaceAll(msg, `"`, "'"), want) {
			t.Errorf("event lacks %s:\n%s", want, msg)
		}
	}
}

func TestSimBOSH(t *testing.T) {
	st := startSim(t, Config{})
	sd := st.ep.Sides[sideA]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := bosh.Dial(ctx, bosh.Config{URL: sd.BOSHURL, Domain: sd.XMPPDomain, TLSConfig: &tls.Config{RootCAs: st.pool, ServerName: sd.XMPPDomain}})
	if err != nil {
		t.Fatal(err)
	}
	origin := jid.MustParse("1001@" + sd.XMPPDomain)
	s, err := mxmpp.NewSession(ctx, origin.Domain(), origin, conn, mxmpp.Secure,
		mxmpp.NewNegotiator(func(*mxmpp.Session, *mxmpp.StreamConfig) mxmpp.StreamConfig {
			return mxmpp.StreamConfig{Features: []mxmpp.StreamFeature{mxmpp.SASL("", "demo", sasl.Plain), mxmpp.BindResource()}}
		}))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	serveDone := make(chan error, 1)
	go func() {
		serveDone <- s.Serve(mxmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			var m struct {
				Items struct {
					Node string `xml:"node,attr"`
					Note string `xml:"item>notification"`
				} `xml:"event>items"`
			}
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&m); err == nil {
				got <- m.Items.Node + " " + m.Items.Note
			}
			return nil
		}))
	}()
	if err := s.Send(ctx, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "presence"}})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the presence reaches the server before the event
	st.rest(sideA, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("LOGIN", "extension", "51001"), "requestId", "bosh-1")
	select {
	case m := <-got:
		if !strings.HasPrefix(m, "/finesse/api/User/1001 <Update>") || !strings.Contains(m, "<requestId>bosh-1</requestId>") {
			t.Fatalf("event over BOSH: %s", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event over BOSH")
	}
	_ = s.Close()
	_ = conn.Close()
	<-serveDone
}

func TestSimOutOfServiceAndBack(t *testing.T) {
	st := startSim(t, Config{})
	_, upsA, runA := st.relayClient(sideA, relayxmpp.TransportWebSocket, "1001", "demo", "relay-a")
	_, upsB, _ := st.relayClient(sideB, relayxmpp.TransportWebSocket, "1001", "demo", "relay-b")
	st.rest(sideA, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("LOGIN", "extension", "51001"))
	st.waitState("1001", stateNotReady)

	st.s.SetSideInService("A", false)
	upsA.waitFor(t, "SystemInfo OUT_OF_SERVICE on A", func(u finesse.Update) bool {
		si, err := finesse.ParseSystemInfo(u.Data)
		return u.Node == finesse.SystemInfoNode && err == nil && si.Status == "OUT_OF_SERVICE"
	})
	select {
	case err := <-runA:
		t.Logf("side A session ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("side A XMPP was not dropped")
	}
	if rsp, _ := st.rest(sideA, "GET", "/finesse/api/User/1001", "1001:demo", ""); rsp.StatusCode != 503 {
		t.Fatalf("A REST %d, want 503", rsp.StatusCode)
	}
	rsp, body := st.rest(sideA, "GET", "/finesse/api/SystemInfo", "", "")
	if si, err := finesse.ParseSystemInfo([]byte(body)); rsp.StatusCode != 200 || err != nil || si.Status != "OUT_OF_SERVICE" {
		t.Fatalf("A SystemInfo %d %s", rsp.StatusCode, body)
	}
	// Side B carries on; the agent stays signed in through its B session.
	st.rest(sideB, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("READY"), "requestId", "on-b")
	upsB.waitFor(t, "READY on B", func(u finesse.Update) bool { return u.RequestID == "on-b" })

	st.s.SetSideInService("A", true)
	if rsp, _ := st.rest(sideA, "GET", "/finesse/api/User/1001", "1001:demo", ""); rsp.StatusCode != 200 {
		t.Fatalf("A REST after recovery %d", rsp.StatusCode)
	}
	_, upsA2, _ := st.relayClient(sideA, relayxmpp.TransportTCP, "1001", "demo", "relay-a2")
	st.rest(sideA, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("NOT_READY"), "requestId", "back-on-a")
	upsA2.waitFor(t, "events on A again", func(u finesse.Update) bool { return u.RequestID == "back-on-a" })
}

func TestSimForcedLogoutAndCancel(t *testing.T) {
	const delay = 1500 * time.Millisecond
	st := startSim(t, Config{ForcedLogoutDelay: delay})
	c, _, _ := st.relayClient(sideA, relayxmpp.TransportTLS, "1001", "demo", "relay-1")
	st.rest(sideA, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("LOGIN", "extension", "51001"))
	st.waitState("1001", stateNotReady)

	// Dropped, but a new session comes back on the same side within the
	// delay: still signed in.
	dropped := time.Now()
	st.s.DropXMPP("A")
	time.Sleep(100 * time.Millisecond)
	st.relayClient(sideA, relayxmpp.TransportTLS, "1001", "demo", "relay-2")
	if time.Since(dropped) > delay {
		t.Skipf("reconnecting took %v, longer than the delay: machine too slow for this test", time.Since(dropped))
	}
	time.Sleep(time.Until(dropped.Add(delay + 500*time.Millisecond)))
	if s, _ := st.s.UserState("1001"); s != stateNotReady {
		t.Fatalf("1001 %s after a reconnect within the delay", s)
	}
	_ = c.Close()
	// Every session goes: logged out with reason 255 after the delay.
	st.s.DropXMPP("A")
	start := time.Now()
	st.waitState("1001", stateLogout)
	if d := time.Since(start); d < delay-100*time.Millisecond {
		t.Fatalf("logged out after %v, before the delay", d)
	}
	_, body := st.rest(sideA, "GET", "/finesse/api/User/1001", "1001:demo", "")
	if u, _ := finesse.ParseUser([]byte(body)); u == nil || u.ReasonCodeID != "255" {
		t.Fatalf("reason after forced logout: %s", body)
	}
}

func TestSimControlAPI(t *testing.T) {
	st := startSim(t, Config{})
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		rsp, err := http.Post(st.ep.ControlURL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer rsp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(rsp.Body).Decode(&v)
		return rsp.StatusCode, v
	}
	defer http.DefaultClient.CloseIdleConnections()

	code, v := post("/sim/calls", `{"queue":"5001","from":"5551234567"}`)
	if code != 201 || v["dialogId"] == "" {
		t.Fatalf("POST /sim/calls: %d %v", code, v)
	}
	if code, _ := post("/sim/calls", `{"queue":"9999","from":"5551234567"}`); code != 404 {
		t.Fatalf("unknown queue: %d", code)
	}
	if code, _ := post("/sim/calls", `{"queue":"5001","from":"not-a-number"}`); code != 400 {
		t.Fatalf("bad caller: %d", code)
	}
	if code, _ := post("/sim/calls", `{"queue":"5001","form":"1"}`); code != 400 {
		t.Fatalf("unknown field: %d", code)
	}
	if code, _ := post("/sim/sides/C", `{"inService":false}`); code != 404 {
		t.Fatalf("side C: %d", code)
	}
	if code, _ := post("/sim/sides/B", `{"inService":false}`); code != 200 {
		t.Fatalf("side B out: %d", code)
	}
	if rsp, _ := st.rest(sideB, "GET", "/finesse/api/User/1001", "1001:demo", ""); rsp.StatusCode != 503 {
		t.Fatalf("B after control API: %d", rsp.StatusCode)
	}
	post("/sim/sides/B", `{"inService":true}`)
	if code, _ := post("/sim/sides/A/drop-xmpp", ``); code != 200 {
		t.Fatalf("drop-xmpp: %d", code)
	}
	code, v = post("/sim/ids/token", `{"user":"1001"}`)
	tok, _ := v["access_token"].(string)
	if code != 200 || tok == "" {
		t.Fatalf("token: %d %v", code, v)
	}
	if rsp, _ := st.rest(sideA, "GET", "/finesse/api/User/1001", "Bearer "+tok, ""); rsp.StatusCode != 200 {
		t.Fatalf("control-API token on REST: %d", rsp.StatusCode)
	}
	if code, _ := post("/sim/ids/revoke", `{"user":"agent1001"}`); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if rsp, _ := st.rest(sideA, "GET", "/finesse/api/User/1001", "Bearer "+tok, ""); rsp.StatusCode != 401 {
		t.Fatalf("revoked token: %d", rsp.StatusCode)
	}
	if code, _ := post("/sim/ids", `{"available":false}`); code != 200 {
		t.Fatalf("IdS down: %d", code)
	}
	rsp, err := st.hc.Get(st.ep.IdSURL + "/ids/v1/keys/token/public")
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	if rsp.StatusCode != 503 {
		t.Fatalf("IdS while unavailable: %d", rsp.StatusCode)
	}
	post("/sim/ids", `{"available":true}`)

	grsp, err := http.Get(st.ep.ControlURL + "/sim/users/agent1001")
	if err != nil {
		t.Fatal(err)
	}
	defer grsp.Body.Close()
	var uv userViewJSON
	if err := json.NewDecoder(grsp.Body).Decode(&uv); err != nil || uv.LoginID != "1001" || uv.State != "LOGOUT" || uv.Extension != "51001" {
		t.Fatalf("GET /sim/users: %+v %v", uv, err)
	}
	if grsp, _ := http.Get(st.ep.ControlURL + "/sim/users/nobody"); grsp.StatusCode != 404 {
		t.Fatalf("unknown user %d", grsp.StatusCode)
	} else {
		grsp.Body.Close()
	}
}

func TestSimPlaceCallRoutesToReadyAgent(t *testing.T) {
	st := startSim(t, Config{})
	_, ups, _ := st.relayClient(sideA, relayxmpp.TransportWebSocket, "1001", "demo", "relay")
	st.rest(sideA, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("LOGIN", "extension", "51001"))
	st.waitState("1001", stateNotReady)
	id, err := st.s.PlaceCall("5002", "5550123")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.s.PlaceCall("5003", "5550123"); !errors.Is(err, ErrUnknownQueue) {
		t.Fatalf("unknown queue: %v", err)
	}
	if _, err := st.s.PlaceCall("5001", "12ab"); !errors.Is(err, ErrInvalidAddress) {
		t.Fatalf("bad caller: %v", err)
	}
	// Waiting in the queue: the Queue statistics say so.
	_, body := st.rest(sideA, "GET", "/finesse/api/Queue/5002", "1001:demo", "")
	if q, err := finesse.ParseQueue([]byte(body)); err != nil || q.Statistics.CallsInQueue != 1 {
		t.Fatalf("queue %s", body)
	}
	st.rest(sideA, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("READY"))
	post := ups.waitFor(t, "the waiting call rings 1001", func(u finesse.Update) bool {
		return u.Node == finesse.DialogsNode("1001") && u.Event == finesse.EventPost
	})
	if d := dialogOf(t, post); d.ID != id {
		t.Fatalf("dialog %s, want %s", d.ID, id)
	}
	st.waitState("1001", stateReserved)
}

func TestSimStartupWith2000Agents(t *testing.T) {
	start := time.Now()
	s, err := New(Config{Agents: 2000, Robots: true, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	ep := s.Endpoints()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ep.CACertPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	hc := &http.Client{Transport: tr}
	rsp, err := hc.Get(fmt.Sprintf("https://%s:%d/finesse/api/SystemInfo", ep.Sides[0].Host, ep.Sides[0].HTTPSPort))
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	serving := time.Since(start)
	// Speed is BenchmarkSimStartup's to measure; this test checks that
	// 2,000 agents start and answer at all.
	t.Logf("2000 agents: New %v, first SystemInfo answered after %v", built, serving)
	if _, ok := s.UserState("3001"); !ok {
		t.Error("agent 3001 missing (2000 agents skip 2001)")
	}
	if _, ok := s.UserState("3002"); ok {
		t.Error("agent 3002 exists")
	}
	time.Sleep(500 * time.Millisecond) // robots sign in
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
}

func TestSimSupervisorTeamSubscription(t *testing.T) {
	st := startSim(t, Config{})
	sup, ups, _ := st.relayClient(sideA, relayxmpp.TransportWebSocket, SupervisorID, "demo", "relay-sup")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sup.Subscribe(ctx, finesse.TeamUsersNode(TeamID)); err != nil {
		t.Fatalf("supervisor subscribes to its team: %v", err)
	}
	if err := sup.Subscribe(ctx, finesse.QueueNode("5001")); err != nil {
		t.Fatalf("supervisor subscribes to a queue: %v", err)
	}
	agent, _, _ := st.relayClient(sideA, relayxmpp.TransportTLS, "1001", "demo", "relay-agent")
	if err := agent.Subscribe(ctx, finesse.TeamUsersNode(TeamID)); err == nil {
		t.Fatal("an agent subscribed to the team's node")
	}
	st.rest(sideA, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("LOGIN", "extension", "51001"), "requestId", "team-1")
	u := ups.waitFor(t, "the team member update", func(u finesse.Update) bool {
		return u.Node == finesse.TeamUsersNode(TeamID) && u.RequestID == "team-1"
	})
	if x, err := finesse.ParseUser(u.Data); err != nil || x.LoginID != "1001" || x.State != "NOT_READY" || u.Source != finesse.UserNode("1001") {
		t.Fatalf("team update %s (%v)", u.Data, err)
	}
	// The supervisor changes the agent: 202, and the team node tells.
	st.rest(sideA, "PUT", "/finesse/api/User/1001", "2001:demo", stateBody("READY"), "requestId", "team-2")
	ups.waitFor(t, "the supervisor's change", func(u finesse.Update) bool {
		return u.Node == finesse.TeamUsersNode(TeamID) && u.RequestID == "team-2"
	})
	ups.waitFor(t, "queue statistics", func(u finesse.Update) bool { return u.Node == finesse.QueueNode("5001") })
}

// BenchmarkSimStartup measures building a 2,000-agent simulator and serving
// its first SystemInfo.
func BenchmarkSimStartup(b *testing.B) {
	for b.Loop() {
		s, err := New(Config{Agents: 2000, Robots: true, Fast: true})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		ep := s.Endpoints()
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ep.CACertPEM)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		rsp, err := hc.Get(fmt.Sprintf("https://%s:%d/finesse/api/SystemInfo", ep.Sides[0].Host, ep.Sides[0].HTTPSPort))
		if err != nil {
			b.Fatal(err)
		}
		rsp.Body.Close()
		hc.CloseIdleConnections()
		cancel()
		<-done
	}
}
