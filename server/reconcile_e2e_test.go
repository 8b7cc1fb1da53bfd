package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// holdProxy is a loopback TCP proxy that holds every connection it accepts
// until release is called, then pipes it to target: an upstream that is
// reachable but not answering yet.
type holdProxy struct {
	ln      net.Listener
	target  string
	release chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
	held    chan struct{} // gets a value when a connection is being held
}

func newHoldProxy(t *testing.T, target string) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{ln: ln, target: target, release: make(chan struct{}), held: make(chan struct{}, 16)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *holdProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *holdProxy) open() { p.once.Do(func() { close(p.release) }) }

func (p *holdProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			select {
			case p.held <- struct{}{}:
			default:
			}
			<-p.release
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			p.track(up)
			p.wg.Add(1)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			_, _ = io.Copy(c, up)
			c.Close()
		}()
	}
}

func (p *holdProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *holdProxy) close() {
	p.open()
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Issue 12, hole 4: with side A out of service, side B accepted state
// changes before the relay's XMPP session on B was up, and their events
// never reached the browser. Every requestId the relay proxied during the
// gap must now get an event.
func TestEndToEndFailoverGapIsReconciled(t *testing.T) {
	var proxy *holdProxy
	st := startStack(t, stackOptions{relay: func(c *Config) {
		// Side B's Notification Service is reached through a proxy that
		// holds the relay's connection: the gap between B accepting REST
		// requests and the relay's XMPP session on B being up.
		b := &c.Sides[1]
		proxy = newHoldProxy(t, net.JoinHostPort(b.XMPPHost, strconv.Itoa(b.XMPPPort)))
		b.XMPPPort = proxy.port()
	}})
	a := st.signIn(t, "1001")
	c := st.open(t, a.Ticket, "")
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
	code, rid, body := st.finesse(t, a.Session, http.MethodPut, "User/1001", "<User><state>LOGIN</state><extension>51001</extension></User>")
	if code != http.StatusAccepted {
		t.Fatalf("LOGIN: %d %s", code, body)
	}
	next(t, c, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid })

	st.sim.SetSideInService("A", false)
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "failover" })
	select {
	case <-proxy.held: // the relay is connecting to B's Notification Service
	case <-time.After(30 * time.Second):
		t.Fatal("the relay never connected to side B's XMPP")
	}

	// The gap: B accepts state changes; the relay has no session on B yet.
	// (Finesse logged the agent out with side A: sign in to the phone first.)
	want := map[string]string{}
	last := ""
	for i := range 20 {
		body := "<User><state>LOGIN</state><extension>51001</extension></User>"
		last = "NOT_READY"
		if i > 0 {
			last = []string{"NOT_READY", "READY"}[i%2]
			body = "<User><state>" + last + "</state></User>"
		}
		code, rid, body := st.finesse(t, a.Session, http.MethodPut, "User/1001", body)
		if code != http.StatusAccepted || rid == "" {
			t.Fatalf("PUT %d during the gap: %d %q %s", i, code, rid, body)
		}
		want[rid] = last
		// Finesse applies a change after its 202 (the CTI round trip); the
		// next request needs it applied. The relay cannot see it: no XMPP.
		deadline := time.Now().Add(5 * time.Second)
		for cur, _ := st.sim.UserState("1001"); cur != last; cur, _ = st.sim.UserState("1001") {
			if time.Now().After(deadline) {
				t.Fatalf("PUT %d: Finesse state %q, want %q", i, cur, last)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	proxy.open()

	got := map[string]wsMsg{}
	var reconciled []wsMsg
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(got) < len(want) {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read after %d of %d requestIds answered: %v", len(got), len(want), err)
		}
		var m struct {
			wsMsg
			Reconciled bool `json:"reconciled"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("not JSON: %s", b)
		}
		if m.Type != "event" {
			continue
		}
		if _, ok := want[m.RequestID]; ok {
			if _, dup := got[m.RequestID]; !dup {
				got[m.RequestID] = m.wsMsg
			}
			if m.Reconciled {
				reconciled = append(reconciled, m.wsMsg)
			}
		}
	}
	// The last state change wins in Finesse; the reconciled events carry
	// the snapshot, which is that state.
	for _, m := range reconciled {
		var u struct{ State string }
		if err := json.Unmarshal(m.Data, &u); err != nil || m.Node != "/finesse/api/User/1001" || m.Event != "PUT" {
			t.Fatalf("reconciled event %+v", m)
		}
		if u.State != last {
			t.Errorf("reconciled %s: state %q, want the snapshot's %s", m.RequestID, u.State, last)
		}
	}
	t.Logf("%d requestIds answered, %d of them reconciled from the snapshot", len(got), len(reconciled))
}
