package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"finesse-relay/server/signin"
	"finesse-relay/server/sim"
)

// stack is the relay and the simulator, both on loopback :0.
type stack struct {
	base string
	sim  *sim.Sim
	app  *App
	stop func()
}

// stackOptions adjust the simulator's and the relay's configuration.
type stackOptions struct {
	sim   func(*sim.Config)
	relay func(*Config)
}

func startStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	base := "http://127.0.0.1:" + port
	secret := randomToken()
	sc := sim.Config{Fast: true, Seed: 7, CallInterval: -1, ClientID: demoClientID, ClientSecret: secret,
		RedirectURIs: []string{base + "/idscallback"}, Logger: zap.NewNop()}
	if opts.sim != nil {
		opts.sim(&sc)
	}
	s, err := sim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := demoConfig(s, secret, base, "127.0.0.1", port, "https://finesse-a.example.test:8445")
	if err != nil {
		t.Fatal(err)
	}
	if opts.relay != nil {
		opts.relay(cfg)
	}
	cfg.Listener = ln
	app, err := NewApp(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = s.Run(ctx); done <- struct{}{} }()
	go func() { _ = app.Run(ctx); done <- struct{}{} }()
	st := &stack{base: base, sim: s, app: app, stop: func() { cancel(); <-done; <-done }}
	t.Cleanup(st.stop)
	return st
}

type signIn struct {
	LoginID, Session, Ticket string
	Roles                    []string
}

func (st *stack) signIn(t *testing.T, id string) signIn {
	t.Helper()
	return st.postSession(t, "/api/v1/sessions", fmt.Sprintf(`{"loginId":%q,"password":"demo"}`, id), "")
}

func (st *stack) ticket(t *testing.T, session string) string {
	t.Helper()
	return st.postSession(t, "/api/v1/tickets", "", session).Ticket
}

// postSession POSTs to a sessions API route and decodes its 201 answer.
func (st *stack) postSession(t *testing.T, path, body, session string) signIn {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, st.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if session != "" {
		req.Header.Set("Authorization", "Bearer "+session)
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	var out signIn
	b, _ := io.ReadAll(rsp.Body)
	if rsp.StatusCode != http.StatusCreated || json.Unmarshal(b, &out) != nil {
		t.Fatalf("POST %s: %d %s", path, rsp.StatusCode, b)
	}
	return out
}

// finesse calls the REST proxy with the session bearer.
func (st *stack) finesse(t *testing.T, session, method, path, body string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, st.base+"/api/finesse/"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+session)
	if body != "" {
		req.Header.Set("Content-Type", "application/xml")
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	return rsp.StatusCode, rsp.Header.Get("requestId"), string(b)
}

type wsMsg struct {
	Type      string          `json:"type"`
	Seq       int64           `json:"seq"`
	Node      string          `json:"node"`
	Event     string          `json:"event"`
	RequestID string          `json:"requestId"`
	Resumed   bool            `json:"resumed"`
	Code      string          `json:"code"`
	ID        string          `json:"id"`
	Upstream  string          `json:"upstream"`
	Data      json.RawMessage `json:"data"`
}

func (st *stack) dial(t *testing.T, ticket, query string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := strings.Replace(st.base, "http", "ws", 1) + "/ws?ticket=" + ticket + query
	return websocket.DefaultDialer.Dial(u, hdr)
}

// open dials the WebSocket and fails the test if that is refused; the
// connection is closed when the test ends.
func (st *stack) open(t *testing.T, ticket, query string) *websocket.Conn {
	t.Helper()
	c, _, err := st.dial(t, ticket, query, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// next reads until pred matches (or fails after a deadline).
func next(t *testing.T, c *websocket.Conn, pred func(wsMsg) bool) wsMsg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m wsMsg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("not JSON: %s", b)
		}
		if pred(m) {
			return m
		}
	}
}

func TestEndToEndTwoTabsSameEventSameSeq(t *testing.T) {
	st := startStack(t, stackOptions{})
	a := st.signIn(t, "1001")
	c1 := st.open(t, a.Ticket, "")
	c2 := st.open(t, st.ticket(t, a.Session), "")
	w1 := next(t, c1, func(m wsMsg) bool { return m.Type == "welcome" })
	next(t, c1, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
	next(t, c2, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })

	code, rid, body := st.finesse(t, a.Session, http.MethodPut, "User/1001", "<User><state>LOGIN</state><extension>51001</extension></User>")
	if code != http.StatusAccepted || rid == "" {
		t.Fatalf("PUT User: %d %q %s", code, rid, body)
	}
	e1 := next(t, c1, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid })
	e2 := next(t, c2, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid })
	if e1.Seq != e2.Seq || e1.Seq <= w1.Seq || e1.Node != "/finesse/api/User/1001" {
		t.Fatalf("events differ or out of order: %+v / %+v (welcome seq %d)", e1, e2, w1.Seq)
	}
	var user struct{ State string }
	json.Unmarshal(e1.Data, &user)
	if user.State != "NOT_READY" {
		t.Fatalf("LOGIN lands in NOT_READY, got %q", user.State)
	}
	// Finesse's own errors pass through unchanged.
	code, _, body = st.finesse(t, a.Session, http.MethodPut, "User/1001", "<User><state>WRONG</state></User>")
	if code != http.StatusBadRequest || !strings.Contains(body, "ApiError") {
		t.Fatalf("bad state: %d %s", code, body)
	}
}

func TestEndToEndResume(t *testing.T) {
	st := startStack(t, stackOptions{relay: func(c *Config) { c.RingSize = 16 }})
	a := st.signIn(t, "1001")
	c := st.open(t, a.Ticket, "")
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
	_, rid, _ := st.finesse(t, a.Session, http.MethodPut, "User/1001", "<User><state>LOGIN</state><extension>51001</extension></User>")
	last := next(t, c, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid }).Seq
	c.Close()

	// Missed while disconnected: replayed exactly.
	_, rid, _ = st.finesse(t, a.Session, http.MethodPut, "User/1001", "<User><state>READY</state></User>")
	time.Sleep(200 * time.Millisecond)
	c = st.open(t, st.ticket(t, a.Session), fmt.Sprintf("&since=%d", last))
	w := next(t, c, func(m wsMsg) bool { return m.Type == "welcome" })
	if !w.Resumed {
		t.Fatal("want a resumed welcome")
	}
	ev := next(t, c, func(m wsMsg) bool { return m.Type == "event" })
	if ev.RequestID != rid || ev.Seq != last+1 {
		t.Fatalf("want the missed event (seq %d, %s), got %+v", last+1, rid, ev)
	}
	c.Close()

	// The ring (16) moved on: fresh state instead, never silence.
	for i := 0; i < 30; i++ {
		state := []string{"NOT_READY", "READY"}[i%2]
		st.finesse(t, a.Session, http.MethodPut, "User/1001", "<User><state>"+state+"</state></User>")
	}
	time.Sleep(300 * time.Millisecond)
	c = st.open(t, st.ticket(t, a.Session), fmt.Sprintf("&since=%d", last))
	w = next(t, c, func(m wsMsg) bool { return m.Type == "welcome" })
	if w.Resumed {
		t.Fatal("the ring no longer holds it: resumed must be false")
	}
	s := next(t, c, func(m wsMsg) bool { return m.Type == "state" && m.Node == "/finesse/api/User/1001" })
	if s.Seq != w.Seq {
		t.Fatalf("snapshot state carries the welcome seq: %d vs %d", s.Seq, w.Seq)
	}
}

func TestEndToEndRefusals(t *testing.T) {
	st := startStack(t, stackOptions{relay: func(c *Config) { c.TicketTTL = 300 * time.Millisecond }})
	a := st.signIn(t, "1001")
	b := st.signIn(t, "1002")
	c := st.open(t, a.Ticket, "")
	next(t, c, func(m wsMsg) bool { return m.Type == "welcome" })

	status := func(rsp *http.Response) int {
		if rsp == nil {
			return 0
		}
		return rsp.StatusCode
	}
	if _, rsp, err := st.dial(t, a.Ticket, "", nil); err == nil || status(rsp) != http.StatusUnauthorized {
		t.Errorf("replayed ticket: %v %d", err, status(rsp))
	}
	expired := st.ticket(t, a.Session)
	time.Sleep(400 * time.Millisecond)
	if _, rsp, err := st.dial(t, expired, "", nil); err == nil || status(rsp) != http.StatusUnauthorized {
		t.Errorf("expired ticket: %v %d", err, status(rsp))
	}
	if _, rsp, err := st.dial(t, st.ticket(t, a.Session), "", http.Header{"Origin": {"https://evil.example"}}); err == nil || status(rsp) != http.StatusForbidden {
		t.Errorf("wrong origin: %v %d", err, status(rsp))
	}
	if c2, _, err := st.dial(t, st.ticket(t, a.Session), "", http.Header{"Origin": {"https://finesse-a.example.test:8445"}}); err != nil {
		t.Errorf("allowed origin refused: %v", err)
	} else {
		c2.Close()
	}
	// Another agent's session cannot act on this agent (Finesse answers 401/403).
	if code, _, _ := st.finesse(t, b.Session, http.MethodPut, "User/1001", "<User><state>READY</state></User>"); code != http.StatusForbidden && code != http.StatusUnauthorized {
		t.Errorf("1002 changing 1001's state: %d", code)
	}
	// A malformed and an oversized message.
	c.WriteMessage(websocket.TextMessage, []byte("{nope"))
	next(t, c, func(m wsMsg) bool { return m.Type == "error" && m.Code == "bad_request" })
	c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), 64<<10))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
				t.Errorf("oversized message: want close 1009, got %v", err)
			}
			break
		}
	}
	// Unknown session.
	req, _ := http.NewRequest(http.MethodPost, st.base+"/api/v1/tickets", nil)
	req.Header.Set("Authorization", "Bearer forged")
	rsp, _ := http.DefaultClient.Do(req)
	if rsp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged session: %d", rsp.StatusCode)
	}
	rsp.Body.Close()
	// Cookie without the CSRF header on a state-changing route.
	req, _ = http.NewRequest(http.MethodPut, st.base+"/api/finesse/User/1001", strings.NewReader("<User><state>READY</state></User>"))
	req.Header.Set("Content-Type", "application/xml")
	req.AddCookie(&http.Cookie{Name: signin.SessionCookie, Value: a.Session})
	rsp, _ = http.DefaultClient.Do(req)
	if rsp.StatusCode != http.StatusUnauthorized {
		t.Errorf("cookie PUT without %s: %d", signin.CSRFHeader, rsp.StatusCode)
	}
	rsp.Body.Close()
}

func TestEndToEndStalledTabDoesNotStallOthers(t *testing.T) {
	st := startStack(t, stackOptions{relay: func(c *Config) { c.QueueSize = 64 }})
	a := st.signIn(t, "1001")
	// The slow tab never reads and has a tiny socket buffer, so the relay's
	// writes back up into its queue instead of the kernel's.
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(2048)
		}
		return c, err
	}}
	slow, _, err := d.Dial(strings.Replace(st.base, "http", "ws", 1)+"/ws?ticket="+a.Ticket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast := st.open(t, st.ticket(t, a.Session), "")
	next(t, fast, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
	// The fast tab reads everything as it comes; the slow one never reads.
	seen := make(chan string, 4096)
	fast.SetReadDeadline(time.Time{})
	go func() {
		for {
			_, b, err := fast.ReadMessage()
			if err != nil {
				t.Logf("fast tab: %v", err)
				close(seen)
				return
			}
			var m wsMsg
			if json.Unmarshal(b, &m) == nil && m.Type == "event" {
				seen <- m.RequestID
			}
		}
	}()
	_, login, _ := st.finesse(t, a.Session, http.MethodPut, "User/1001", "<User><state>LOGIN</state><extension>51001</extension></User>")
	for rid := range seen {
		if rid == login {
			break
		}
	}
	var sent []string
	for i := 0; i < 400; i++ {
		state := []string{"READY", "NOT_READY"}[i%2]
		code, rid, body := st.finesse(t, a.Session, http.MethodPut, "User/1001", "<User><state>"+state+"</state></User>")
		if code != http.StatusAccepted {
			t.Fatalf("PUT %s: %d %s", state, code, body)
		}
		sent = append(sent, rid)
	}
	got := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for len(got) < len(sent) {
		select {
		case rid, ok := <-seen:
			if !ok {
				t.Fatalf("the fast tab was closed after %d of %d events", len(got), len(sent))
			}
			got[rid] = true
		case <-timeout:
			t.Fatalf("the fast tab got %d of %d events", len(got), len(sent))
		}
	}
	// The 4000 close of an overflowing connection is asserted in the gadget
	// package (TestSlowConsumerClosedFastOneGetsEverything); here the point
	// is that a tab which stops reading never stalls the agent's other tabs.
}

func TestOperatorEndpoints(t *testing.T) {
	st := startStack(t, stackOptions{})
	for path, want := range map[string]string{"/testbackend": testBackendBody, "/healthz": "ok", "/readyz": "ready", "/metrics": "finesse_relay_ws_connections"} {
		var rsp *http.Response
		var err error
		for i := 0; i < 50; i++ { // readiness flips once Run has started
			rsp, err = http.Get(st.base + path)
			if err == nil && rsp.StatusCode == http.StatusOK {
				break
			}
			if rsp != nil {
				rsp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rsp.Body)
		rsp.Body.Close()
		if rsp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %q", path, rsp.StatusCode, b)
		}
	}
}

// testLogger logs to the test output with -v and E2E_LOG=1, else nowhere.
func testLogger(t *testing.T) *zap.Logger {
	if testing.Verbose() && os.Getenv("E2E_LOG") != "" {
		l, _ := zap.NewDevelopment()
		return l
	}
	return zap.NewNop()
}

func TestEndToEndFailoverToSideB(t *testing.T) {
	st := startStack(t, stackOptions{})
	a := st.signIn(t, "1001")
	c := st.open(t, a.Ticket, "")
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
	_, rid, _ := st.finesse(t, a.Session, http.MethodPut, "User/1001", "<User><state>LOGIN</state><extension>51001</extension></User>")
	next(t, c, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid })

	st.sim.SetSideInService("A", false)
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "out_of_service" })
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "failover" })
	// After the failover the relay re-snapshots, then reports up; REST goes to side B.
	snap := next(t, c, func(m wsMsg) bool { return m.Type == "state" && m.Node == "/finesse/api/User/1001" })
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
	var user struct{ State string }
	json.Unmarshal(snap.Data, &user)
	// Finesse may have signed the agent out during the failover (the agent
	// signs in again on the new side, DG-33); act on the fresh snapshot.
	change := "<User><state>READY</state></User>"
	if user.State == "LOGOUT" {
		change = "<User><state>LOGIN</state><extension>51001</extension></User>"
	}
	code, rid, body := st.finesse(t, a.Session, http.MethodPut, "User/1001", change)
	if code != http.StatusAccepted {
		t.Fatalf("REST after failover: %d %s", code, body)
	}
	next(t, c, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid })
	if s, _ := st.app.manager.Get("1001"); s.Side() != "B" {
		t.Fatalf("session on side %q, want B", s.Side())
	}
}

func TestEndToEndXMPPDropReconnects(t *testing.T) {
	st := startStack(t, stackOptions{})
	a := st.signIn(t, "1001")
	c := st.open(t, a.Ticket, "")
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
	st.sim.DropXMPP("A")
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "reconnecting" })
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
	_, rid, _ := st.finesse(t, a.Session, http.MethodPut, "User/1001", "<User><state>LOGIN</state><extension>51001</extension></User>")
	next(t, c, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid })
}
