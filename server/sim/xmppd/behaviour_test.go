package xmppd

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestNoDeliveryWithoutPresence: events reach only sessions that sent
// available presence with priority >= 0 (B.3.2).
func TestNoDeliveryWithoutPresence(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(c *rawClient)
		deliver bool
	}{
		{"no presence", func(*rawClient) {}, false},
		{"negative priority", func(c *rawClient) { c.presence(-1); c.expectServicePresence(true) }, false},
		{"unavailable after available", func(c *rawClient) {
			c.presence(0)
			c.expectServicePresence(true)
			c.send(`<presence xmlns='jabber:client' type='unavailable'/>`)
		}, false},
		{"priority raised to 0", func(c *rawClient) {
			c.presence(-1)
			c.expectServicePresence(true)
			c.presence(0)
		}, true},
		{"priority 0", func(c *rawClient) { c.presence(0); c.expectServicePresence(true) }, true},
		{"no priority element", func(c *rawClient) {
			c.send(`<presence xmlns='jabber:client'/>`)
			c.expectServicePresence(true)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, nil)
			c := connect(t, s, "secure")
			c.login("1001", "relay")
			tt.setup(c)
			c.pingBarrier() // the presence is handled
			s.Publish("/finesse/api/User/1001", updateDoc("1001", "READY"))
			s.Publish("/finesse/api/SystemInfo", []byte("<Update/>"))
			if tt.deliver {
				for _, node := range []string{"/finesse/api/User/1001", "/finesse/api/SystemInfo"} {
					if n := c.must(); n.path("event", "items").get("node") != node {
						t.Fatalf("want event on %s", node)
					}
				}
			}
			c.pingBarrier() // nothing (else) was queued before the answer
		})
	}
}

// TestDefaultNodesReachOnlyTheirUser: a user's default nodes go to that
// user's available sessions (all of them), SystemInfo to everyone, and
// other nodes to nobody without a subscription.
func TestDefaultNodesReachOnlyTheirUser(t *testing.T) {
	s := newTestServer(t, nil)
	a1 := connect(t, s, "secure")
	a1.login("1001", "r1")
	a2 := connect(t, s, "secure")
	a2.login("1001", "r2")
	b := connect(t, s, "secure")
	b.login("1002", "r1")
	for _, c := range []*rawClient{a1, a2, b} {
		c.presence(0)
		c.expectServicePresence(true)
	}
	nodes := []string{
		"/finesse/api/User/1001", "/finesse/api/User/1001/Dialogs",
		"/finesse/api/User/1001/Media/1", "/finesse/api/User/1001/Queues",
	}
	for _, node := range nodes {
		s.Publish(node, []byte("<Update/>"))
	}
	s.Publish("/finesse/api/Team/10/Users", []byte("<Update/>"))
	s.Publish("/finesse/api/User/1001/Dialogs/Media", []byte("<Update/>")) // explicit node
	s.Publish("/finesse/api/SystemInfo", []byte("<Update/>"))
	for _, c := range []*rawClient{a1, a2} {
		for _, node := range append(nodes, "/finesse/api/SystemInfo") {
			n := c.must()
			if got := n.path("event", "items").get("node"); got != node || n.get("to") != "1001@"+testDomain {
				t.Fatalf("%s: got node %s to %s, want %s", c.full, got, n.get("to"), node)
			}
		}
		c.pingBarrier()
	}
	if n := b.must(); n.path("event", "items").get("node") != "/finesse/api/SystemInfo" {
		t.Fatalf("1002 got an event on %s", n.path("event", "items").get("node"))
	}
	b.pingBarrier()
}

// TestSASLFailure: bad credentials get <failure><not-authorized/>, then the
// stream end and the close (no retry).
func TestSASLFailure(t *testing.T) {
	tests := []struct {
		name              string
		authz, user, pass string
		nilAuthenticate   bool
	}{
		{"wrong password", "", "1001", "nope", false},
		{"token of another user", "", "1001", "tok-1002", false},
		{"authzid of another user", "1002@" + testDomain, "1001", "pw-1001", false},
		{"invalid username", "", "a@b", "pw-a@b", false},
		{"no Authenticate", "", "1001", "pw-1001", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, func(c *Config) {
				if tt.nilAuthenticate {
					c.Authenticate = nil
				}
			})
			c := connect(t, s, "starttls")
			c.open(testDomain)
			c.starttls()
			n := c.auth(tt.authz, tt.user, tt.pass)
			if n.XMLName.Local != "failure" || n.child("not-authorized") == nil {
				t.Fatalf("got <%s>, want failure/not-authorized", n.XMLName.Local)
			}
			c.expectEnd()
		})
	}
	t.Run("authzid is the bare JID (Strophe)", func(t *testing.T) {
		s := newTestServer(t, nil)
		c := connect(t, s, "secure")
		c.open(testDomain)
		if n := c.auth("1001@"+testDomain, "1001", "pw-1001"); n.XMLName.Local != "success" {
			t.Fatalf("got <%s>", n.XMLName.Local)
		}
	})
}

// TestSTARTTLSRequired: before TLS only STARTTLS is offered, and SASL is
// refused with a stream error.
func TestSTARTTLSRequired(t *testing.T) {
	s := newTestServer(t, nil)
	c := connect(t, s, "starttls")
	f := c.open(testDomain)
	if f.child("starttls") == nil || f.path("starttls", "required") == nil || f.child("mechanisms") != nil {
		t.Fatalf("features before TLS: %+v", f)
	}
	c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>ADEwMDEAcHctMTAwMQ==</auth>`)
	c.expectStreamError("policy-violation")
	// After TLS: PLAIN only, then bind and the optional session.
	c = connect(t, s, "starttls")
	c.open(testDomain)
	f = c.starttls()
	if m := f.child("mechanisms"); m == nil || len(m.Nodes) != 1 || m.Nodes[0].Text != "PLAIN" {
		t.Fatalf("mechanisms: %+v", m)
	}
	c.auth("", "1001", "pw-1001")
	f = c.open(testDomain)
	if f.child("bind") == nil || f.path("session", "optional") == nil {
		t.Fatalf("features after SASL: %+v", f)
	}
}

// TestHostUnknown: a stream to another domain is refused.
func TestHostUnknown(t *testing.T) {
	s := newTestServer(t, nil)
	c := connect(t, s, "secure")
	c.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='other.example' version='1.0'>`)
	for {
		tok, err := c.dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := tok.(xml.StartElement); ok {
			if st.Name.Local != "stream" {
				t.Fatalf("want the stream header, got <%s>", st.Name.Local)
			}
			break
		}
	}
	if n := c.must(); n.XMLName.Local != "features" || len(n.Nodes) != 0 {
		t.Fatalf("want empty features, got %+v", n)
	}
	c.expectStreamError("host-unknown")
}

// TestBind covers resource binding: a random resource when none is asked
// for or the one asked for is invalid.
func TestBind(t *testing.T) {
	s := newTestServer(t, nil)
	c := connect(t, s, "secure")
	full := c.login("1001", "")
	if !strings.HasPrefix(full, "1001@"+testDomain+"/") || len(full) < len("1001@"+testDomain+"/")+8 {
		t.Fatalf("random resource too short: %q", full)
	}
	c.presence(0)
	c.expectServicePresence(true)
	if !s.Available("1001") {
		t.Fatal("not available")
	}

	c = connect(t, s, "secure")
	c.open(testDomain)
	c.auth("", "1002", "pw-1002")
	c.open(testDomain)
	c.send("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>",
		strings.Repeat("x", 1100))
	n := c.must()
	if j := strings.TrimSpace(n.path("bind", "jid").Text); n.get("type") != "result" ||
		!strings.HasPrefix(j, "1002@"+testDomain+"/") || len(j) > 100 {
		t.Fatalf("invalid resource not replaced: %+v", n)
	}
}

// TestConflict: binding a bound full JID replaces the old session with a
// conflict stream error; events then reach only the new one.
func TestConflict(t *testing.T) {
	for _, tr := range []string{"secure", "websocket"} {
		t.Run(tr, func(t *testing.T) {
			s := newTestServer(t, nil)
			old := connect(t, s, tr)
			old.login("1001", "relay")
			old.presence(0)
			old.expectServicePresence(true)
			nw := connect(t, s, tr)
			nw.login("1001", "relay")
			n, raw, err := old.next()
			if err != nil || n.XMLName.Local != "error" || n.child("conflict") == nil ||
				strings.TrimSpace(n.child("text").Text) != "Replaced by new connection" {
				t.Fatalf("old session got %s %v", raw, err)
			}
			old.expectEnd()
			nw.presence(0)
			nw.expectServicePresence(true)
			s.Publish("/finesse/api/User/1001", []byte("<Update/>"))
			if n := nw.must(); n.XMLName.Local != "message" {
				t.Fatalf("new session got <%s>", n.XMLName.Local)
			}
		})
	}
}

// TestOnPresence follows a user's availability over two sessions.
func TestOnPresence(t *testing.T) {
	log := newPresenceLog()
	s := newTestServer(t, func(c *Config) { c.OnPresence = log.record })
	a := connect(t, s, "secure")
	a.login("1001", "a")
	b := connect(t, s, "secure")
	b.login("1001", "b")
	log.none(t)

	a.presence(0)
	log.expect(t, "1001=true")
	b.presence(5)
	b.expectServicePresence(true)
	log.none(t)

	_ = a.conn.Close() // dropped: b is still available
	eventually(t, "a unregistered", func() bool { return len(s.sessionsOf("1001")) == 1 })
	log.none(t)
	if !s.Available("1001") {
		t.Fatal("1001 unavailable while b is available")
	}

	b.send(`<presence xmlns='jabber:client' type='unavailable'/>`)
	log.expect(t, "1001=false")
	if s.Available("1001") {
		t.Fatal("1001 still available")
	}
	b.presence(0) // initial presence again: the service presence follows
	log.expect(t, "1001=true")
	b.expectServicePresence(true)
	b.send(`</stream:stream>`)
	log.expect(t, "1001=false")
	b.expectEnd()
}

// sessionsOf returns the bound full JIDs of a user (test helper).
func (s *Server) sessionsOf(user string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var l []string
	if u := s.users[user]; u != nil {
		for c := range u.conns {
			l = append(l, c.full)
		}
	}
	return l
}

// TestDropAll closes every connection abruptly and keeps serving.
func TestDropAll(t *testing.T) {
	log := newPresenceLog()
	s := newTestServer(t, func(c *Config) { c.OnPresence = log.record })
	addr := serve(t, s, ModeSecure)
	var clients []*rawClient
	for _, u := range []string{"1001", "1002"} {
		c := dialRaw(t, addr, false)
		c.login(u, "relay")
		c.presence(0)
		c.expectServicePresence(true)
		log.expect(t, u+"=true")
		clients = append(clients, c)
	}
	c := clients[0]
	c.pubsubIQ("set", "s1", `<subscribe node='/finesse/api/User/1001/Dialogs/Media' jid='`+c.full+`'/>`)

	s.DropAll()
	for _, c := range clients {
		_, raw, err := c.next()
		if err == nil || errors.Is(err, errStreamEnd) {
			t.Fatalf("want an abrupt close, got %q %v", raw, err)
		}
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case call := <-log.ch:
			got[call] = true
		case <-time.After(testTimeout):
			t.Fatal("missing OnPresence")
		}
	}
	if !got["1001=false"] || !got["1002=false"] {
		t.Fatalf("OnPresence calls %v", got)
	}
	// Still serving; the subscription survived.
	c = dialRaw(t, addr, false)
	c.login("1001", "relay")
	if subs := s.Subscriptions("/finesse/api/User/1001/Dialogs/Media"); len(subs) != 1 {
		t.Fatalf("subscriptions %v", subs)
	}
}

// TestIQ covers the server's IQ answers: XEP-0199 ping, disco#info, the
// legacy session IQ, and errors for everything else.
func TestIQ(t *testing.T) {
	tests := []struct {
		name, iq string
		want     string // "result", or the error condition
		from     string
	}{
		{"ping domain", `<iq xmlns='jabber:client' type='get' id='x' to='` + testDomain + `'><ping xmlns='urn:xmpp:ping'/></iq>`, "result", testDomain},
		{"ping no to", `<iq xmlns='jabber:client' type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>`, "result", ""},
		{"ping pubsub", `<iq xmlns='jabber:client' type='get' id='x' to='` + testPubSub + `'><ping xmlns='urn:xmpp:ping'/></iq>`, "result", testPubSub},
		{"ping own bare JID", `<iq xmlns='jabber:client' type='get' id='x' to='1001@` + testDomain + `'><ping xmlns='urn:xmpp:ping'/></iq>`, "result", "1001@" + testDomain},
		{"disco pubsub", `<iq xmlns='jabber:client' type='get' id='x' to='` + testPubSub + `'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, "result", testPubSub},
		{"session", `<iq xmlns='jabber:client' type='set' id='x'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`, "result", ""},
		{"unknown namespace", `<iq xmlns='jabber:client' type='get' id='x'><query xmlns='jabber:iq:roster'/></iq>`, "service-unavailable", ""},
		{"other user", `<iq xmlns='jabber:client' type='get' id='x' to='1002@` + testDomain + `'><ping xmlns='urn:xmpp:ping'/></iq>`, "service-unavailable", "1002@" + testDomain},
		{"no payload", `<iq xmlns='jabber:client' type='get' id='x'/>`, "bad-request", ""},
		{"two payloads", `<iq xmlns='jabber:client' type='get' id='x'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>`, "bad-request", ""},
		{"bad to", `<iq xmlns='jabber:client' type='get' id='x' to='@@'><ping xmlns='urn:xmpp:ping'/></iq>`, "bad-request", ""},
		{"pubsub to domain", `<iq xmlns='jabber:client' type='get' id='x' to='` + testDomain + `'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions/></pubsub></iq>`, "service-unavailable", testDomain},
	}
	s := newTestServer(t, nil)
	c := connect(t, s, "secure")
	c.login("1001", "relay")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send("%s", tt.iq)
			n := c.must()
			got := n.get("type")
			if got == "error" {
				got = stanzaError(n)
			}
			if n.XMLName.Local != "iq" || n.get("id") != "x" || got != tt.want || n.get("to") != c.full || n.get("from") != tt.from {
				t.Fatalf("got <%s id=%q type=%q from=%q to=%q> %s", n.XMLName.Local, n.get("id"), n.get("type"), n.get("from"), n.get("to"), got)
			}
		})
	}
	// Results, errors and messages from the client get no answer.
	c.send(`<iq xmlns='jabber:client' type='result' id='r'/><message xmlns='jabber:client' to='x@y'><body>hi</body></message>`)
	c.pingBarrier()
}

// TestLimits: an oversized or too deep stanza ends the stream with
// policy-violation; an idle connection is dropped after PingTimeout.
func TestLimits(t *testing.T) {
	tests := []struct {
		transport, name, stanza, want string
	}{
		{"secure", "oversized", `<message xmlns='jabber:client'><body>` + strings.Repeat("x", 200<<10) + `</body></message>`, "policy-violation"},
		{"tls", "oversized over TLS", `<message xmlns='jabber:client'><body>` + strings.Repeat("x", 200<<10) + `</body></message>`, "policy-violation"},
		{"secure", "too deep", `<message xmlns='jabber:client'>` + strings.Repeat("<a>", 50) + strings.Repeat("</a>", 50) + `</message>`, "policy-violation"},
		{"secure", "not well-formed", `<message xmlns='jabber:client'></iq>`, "not-well-formed"},
		{"secure", "unknown element", `<foo xmlns='jabber:client'/>`, "unsupported-stanza-type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, func(c *Config) { c.MaxStanzaSize = 8 << 10 })
			c := connect(t, s, tt.transport)
			c.login("1001", "relay")
			// Stanzas just under the limit pass.
			c.send(`<message xmlns='jabber:client'><body>%s</body></message>`, strings.Repeat("y", 7<<10))
			c.pingBarrier()
			go func() { // the server stops reading; don't block the test on the write
				_ = c.conn.SetWriteDeadline(time.Now().Add(testTimeout))
				_, _ = fmt.Fprint(c.conn, tt.stanza)
			}()
			c.expectStreamError(tt.want)
		})
	}
	t.Run("websocket oversized", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.MaxStanzaSize = 8 << 10 })
		c := connect(t, s, "websocket")
		c.login("1001", "relay")
		c.send(`<message xmlns='jabber:client'><body>%s</body></message>`, strings.Repeat("x", 9<<10))
		c.expectClosed() // gorilla's read limit closes with 1009
	})
	t.Run("handshake too large", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.MaxStanzaSize = 8 << 10 })
		c := connect(t, s, "secure")
		c.open(testDomain)
		go func() {
			_ = c.conn.SetWriteDeadline(time.Now().Add(testTimeout))
			_, _ = fmt.Fprintf(c.conn, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, strings.Repeat("A", 100<<10))
		}()
		c.expectStreamError("policy-violation")
	})
	t.Run("idle", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.PingTimeout = 300 * time.Millisecond })
		idle := connect(t, s, "secure")
		idle.login("1001", "idle")
		busy := connect(t, s, "secure")
		busy.login("1001", "busy")
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { // whitespace keepalives
			defer close(done)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := busy.conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		start := time.Now()
		idle.expectStreamError("connection-timeout")
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("dropped after %v", d)
		}
		time.Sleep(400 * time.Millisecond)
		close(stop)
		<-done
		busy.pingBarrier()
	})
	t.Run("handshake timeout", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
		c := connect(t, s, "secure")
		c.open(testDomain)
		c.expectClosed()
	})
}

// TestQueueOverflow: a client that stops reading is dropped when its
// queue overflows, without slowing Publish or the other sessions.
func TestQueueOverflow(t *testing.T) {
	log := newPresenceLog()
	s := newTestServer(t, func(c *Config) {
		c.QueueSize = 4
		c.OnPresence = log.record // WriteTimeout stays at its 10 s default
	})
	ln := newPipeListener()
	serveOn(t, s, ln, ModeSecure)
	dial := func(user string) *rawClient {
		conn, err := ln.dial()
		if err != nil {
			t.Fatal(err)
		}
		c := newRawClient(t, conn, false)
		c.login(user, "relay")
		c.presence(0)
		c.expectServicePresence(true)
		log.expect(t, user+"=true")
		return c
	}
	stuck := dial("1001")
	ok := dial("1002")
	start := time.Now()
	for range 20 {
		s.Publish("/finesse/api/User/1001", updateDoc("1001", "READY"))
		s.Publish("/finesse/api/User/1002", updateDoc("1002", "READY"))
		if n := ok.must(); n.XMLName.Local != "message" {
			t.Fatalf("1002 got <%s>", n.XMLName.Local)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("publishing took %v", d)
	}
	log.expect(t, "1001=false")
	if d := time.Since(start); d > 3*closeTimeout {
		t.Errorf("dropping took %v", d)
	}
	stuck.expectClosed()
}

// TestServiceAvailable: the finesse user's presence reaches sessions that
// sent presence, now and after their initial presence.
func TestServiceAvailable(t *testing.T) {
	s := newTestServer(t, nil)
	a := connect(t, s, "secure")
	a.login("1001", "relay")
	a.presence(0)
	a.expectServicePresence(true)
	silent := connect(t, s, "secure")
	silent.login("1002", "relay")

	s.SetServiceAvailable(false)
	a.expectServicePresence(false)
	silent.pingBarrier() // no presence: nothing sent

	b := connect(t, s, "websocket")
	b.login("1003", "relay")
	b.presence(0)
	b.expectServicePresence(false)

	s.SetServiceAvailable(true)
	a.expectServicePresence(true)
	b.expectServicePresence(true)
	// A presence update is not an initial presence.
	a.presence(1)
	a.pingBarrier()
}

// TestServeLifecycle: Serve returns nil when its context ends and
// ErrServerClosed after Close, ending its connections with
// system-shutdown either way.
func TestServeLifecycle(t *testing.T) {
	for _, viaClose := range []bool{false, true} {
		t.Run(fmt.Sprintf("close=%v", viaClose), func(t *testing.T) {
			s := newTestServer(t, nil)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx, ln, ModeSecure) }()
			c := dialRaw(t, ln.Addr().String(), false)
			c.login("1001", "relay")
			half := dialRaw(t, ln.Addr().String(), false) // mid-handshake
			half.open(testDomain)
			want := error(nil)
			if viaClose {
				want = ErrServerClosed
				go func() { _ = s.Close() }()
			} else {
				cancel()
			}
			c.expectStreamError("system-shutdown")
			half.expectClosed()
			select {
			case err := <-done:
				if !errors.Is(err, want) {
					t.Fatalf("Serve = %v, want %v", err, want)
				}
			case <-time.After(testTimeout):
				t.Fatal("Serve did not return")
			}
			if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				t.Fatal("listener still open")
			}
		})
	}
}

// TestConfig: unusable configurations are reported, not panicked on.
func TestConfig(t *testing.T) {
	stls, _ := testTLS(t)
	tests := []struct {
		name string
		cfg  Config
		mode ListenMode
	}{
		{"no domain", Config{TLSConfig: stls}, ModeSecure},
		{"bad domain", Config{Domain: "a b", TLSConfig: stls}, ModeSecure},
		{"pubsub equals domain", Config{Domain: testDomain, PubSubDomain: testDomain}, ModeSecure},
		{"starttls without TLS", Config{Domain: testDomain}, ModeSTARTTLS},
		{"tls without TLS", Config{Domain: testDomain}, ModeTLS},
		{"unknown mode", Config{Domain: testDomain}, ListenMode(42)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.cfg)
			defer s.Close()
			ln := newPipeListener()
			if err := s.Serve(context.Background(), ln, tt.mode); !errors.Is(err, ErrConfig) {
				t.Fatalf("Serve = %v, want ErrConfig", err)
			}
			if _, err := ln.dial(); err == nil {
				t.Fatal("listener not closed")
			}
		})
	}
	t.Run("closed server", func(t *testing.T) {
		s := New(Config{Domain: testDomain})
		_ = s.Close()
		_ = s.Close()
		if err := s.Serve(context.Background(), newPipeListener(), ModeSecure); !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve = %v", err)
		}
	})
}

// TestWebSocketHandlerRefusals: the handler's HTTP answers.
func TestWebSocketHandlerRefusals(t *testing.T) {
	s := newTestServer(t, nil)
	url := "http" + strings.TrimPrefix(serveWS(t, s, false), "ws")
	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"plain GET", nil, http.StatusBadRequest},
		{"no xmpp subprotocol", map[string]string{
			"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
			"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "chat",
		}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	t.Run("max connections", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.MaxConnections = 1 })
		u := serveWS(t, s, false)
		c := dialWS(t, u)
		c.login("1001", "relay")
		d := websocket.Dialer{Subprotocols: []string{"xmpp"}, HandshakeTimeout: testTimeout}
		ws, resp, err := d.Dial(u, nil)
		if err == nil {
			_ = ws.Close()
			t.Fatal("second connection accepted")
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", resp.StatusCode)
		}
		// A TCP connection over the limit is closed at once.
		tc := dialRaw(t, serve(t, s, ModeSecure), false)
		tc.expectClosed()
	})
}
