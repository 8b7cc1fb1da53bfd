package xmpp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mxmpp "mellium.im/xmpp"
	"mellium.im/xmpp/stanza"

	"finesse-relay/xmpp/finesse"
)

// Recorded stanzas, in the shapes Finesse (Openfire) and Prosody send.
const (
	// F.1 of the protocol reference: escaped <Update>, no type attribute.
	stanzaEscaped = `<message from='pubsub.finesse.test' to='1001@finesse.test' id='/finesse/api/User/1001__1001@finesse.test__a9X2q'>` +
		`<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='/finesse/api/User/1001'>` +
		`<item id='6f1c2d0e'><notification xmlns='http://jabber.org/protocol/pubsub'>` +
		`&lt;Update&gt;&lt;data&gt;&lt;user&gt;&lt;loginId&gt;1001&lt;/loginId&gt;&lt;firstName&gt;Tom &amp;amp; Jerry&lt;/firstName&gt;` +
		`&lt;state&gt;READY&lt;/state&gt;&lt;/user&gt;&lt;/data&gt;&lt;event&gt;PUT&lt;/event&gt;&lt;requestId&gt;req-escaped&lt;/requestId&gt;` +
		`&lt;source&gt;/finesse/api/User/1001&lt;/source&gt;&lt;/Update&gt;</notification></item></items></event></message>`

	// A captured UCCE message: inline <Update> elements, headline type.
	stanzaInline = `<message from='pubsub.finesse.test' to='1001@finesse.test' type='headline'>
  <event xmlns='http://jabber.org/protocol/pubsub#event'>
    <items node='/finesse/api/User/1001'>
      <item id='a1b2c3'>
        <notification xmlns='http://jabber.org/protocol/pubsub'>
          <Update>
            <data><user><loginId>1001</loginId><firstName>Tom &amp; Jerry</firstName><state>NOT_READY</state></user></data>
            <event>put</event>
            <requestId>req-inline</requestId>
            <source>/finesse/api/User/1001</source>
          </Update>
        </notification>
      </item>
    </items>
  </event>
</message>`

	// Two items in one message (a server may batch), then a retraction.
	stanzaTwoItems = `<message from='pubsub.finesse.test' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'>` +
		`<items node='/finesse/api/User/1001/Dialogs'>` +
		`<item id='1'><notification xmlns='http://jabber.org/protocol/pubsub'>&lt;Update&gt;&lt;event&gt;POST&lt;/event&gt;&lt;requestId&gt;req-two-1&lt;/requestId&gt;&lt;source&gt;/finesse/api/User/1001/Dialogs&lt;/source&gt;&lt;data&gt;&lt;dialogs&gt;&lt;Dialog&gt;&lt;id&gt;16817001&lt;/id&gt;&lt;/Dialog&gt;&lt;/dialogs&gt;&lt;/data&gt;&lt;/Update&gt;</notification></item>` +
		`<item id='2'><notification xmlns='http://jabber.org/protocol/pubsub'>&lt;Update&gt;&lt;event&gt;DELETE&lt;/event&gt;&lt;requestId&gt;req-two-2&lt;/requestId&gt;&lt;source&gt;/finesse/api/User/1001/Dialogs&lt;/source&gt;&lt;/Update&gt;</notification></item>` +
		`<retract id='0'/></items></event></message>`

	// Not a pubsub event: a chat message.
	stanzaChat = `<message from='1002@finesse.test/desktop' type='chat'><body>hello</body></message>`

	// A pubsub event whose notification is not an Update.
	stanzaUnknownPayload = `<message from='pubsub.finesse.test'><event xmlns='http://jabber.org/protocol/pubsub#event'>` +
		`<items node='/finesse/api/User/1001'><item id='x'><notification xmlns='http://jabber.org/protocol/pubsub'>&lt;Something&gt;else&lt;/Something&gt;</notification></item></items></event></message>`

	// A forged event from another user.
	stanzaForged = `<message from='1002@finesse.test/evil'><event xmlns='http://jabber.org/protocol/pubsub#event'>` +
		`<items node='/finesse/api/User/1001'><item id='x'><notification xmlns='http://jabber.org/protocol/pubsub'>&lt;Update&gt;&lt;event&gt;PUT&lt;/event&gt;&lt;requestId&gt;req-forged&lt;/requestId&gt;&lt;/Update&gt;</notification></item></items></event></message>`

	stanzaMarker = `<message from='pubsub.finesse.test'><event xmlns='http://jabber.org/protocol/pubsub#event'>` +
		`<items node='/finesse/api/SystemInfo'><item id='m'><notification xmlns='http://jabber.org/protocol/pubsub'>&lt;Update&gt;&lt;event&gt;PUT&lt;/event&gt;&lt;requestId&gt;req-marker&lt;/requestId&gt;&lt;source&gt;/finesse/api/SystemInfo&lt;/source&gt;&lt;/Update&gt;</notification></item></items></event></message>`
)

// harness is a Client connected to a fake server and served by Run.
type harness struct {
	*Client
	srv     *fakeServer
	fs      *fakeSession
	updates chan finesse.Update
	runErr  chan error
}

func dialFake(t *testing.T, transport string, opts fakeOpts, tweak func(*Config)) *harness {
	t.Helper()
	srv := newFake(t, transport, opts)
	h := &harness{srv: srv, updates: make(chan finesse.Update, 64), runErr: make(chan error, 1)}
	cfg := srv.config()
	cfg.OnUpdate = func(u finesse.Update) { h.updates <- u }
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	h.Client = c
	h.fs = srv.next()
	return h
}

// run starts Run in the background; the test's cleanup closes the client.
func (h *harness) run(t *testing.T, ctx context.Context) {
	go func() { h.runErr <- h.Run(ctx) }()
	t.Cleanup(func() {
		_ = h.Close()
		select {
		case err := <-h.runErr:
			h.runErr <- err
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after Close")
		}
	})
}

// ended waits for Run's result.
func (h *harness) ended(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-h.runErr:
		h.runErr <- err
		return err
	case <-time.After(within):
		t.Fatalf("Run did not end within %s", within)
		return nil
	}
}

func (h *harness) nextUpdate(t *testing.T) finesse.Update {
	t.Helper()
	select {
	case u := <-h.updates:
		// Every update says when its message was read (the relay's latency
		// metric starts there).
		if u.Received.IsZero() || time.Since(u.Received) > 5*time.Second {
			t.Errorf("update on %s: Received %v", u.Node, u.Received)
		}
		return u
	case err := <-h.runErr:
		h.runErr <- err
		t.Fatalf("Run ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no update within 5 s")
	}
	return finesse.Update{}
}

func TestDialTransports(t *testing.T) {
	for _, transport := range []string{"tcp", "tls", "ws", "wss"} {
		t.Run(transport, func(t *testing.T) {
			h := dialFake(t, transport, fakeOpts{}, nil)
			if got, want := h.JID(), "1001@finesse.test/relay-1"; got != want {
				t.Errorf("JID() = %q, want %q", got, want)
			}
			if h.fs.resource != "relay-1" {
				t.Errorf("server saw bind resource %q, want relay-1", h.fs.resource)
			}
			if h.fs.s.State()&mxmpp.Secure == 0 {
				t.Error("server session is not secure")
			}
			h.fs.expect("<presence", ">0</priority>")
			h.fs.expect("replay-barrier-", "disco#info")
			h.run(t, context.Background())
			// Let the client read the barrier's answer before it closes, or
			// closing with unread data resets the server's connection.
			for deadline := time.Now().Add(5 * time.Second); !h.replay.barrierDone() && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if err := h.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := h.ended(t, 5*time.Second); !errors.Is(err, ErrClosed) {
				t.Errorf("Run = %v, want ErrClosed", err)
			}
			h.fs.expect("<presence", `type="unavailable"`)
			select {
			case err := <-h.fs.done:
				// mellium's WebSocket server side does not understand <close/>;
				// checkFrames checks the client sent it.
				if err != nil && transport != "ws" && transport != "wss" {
					t.Errorf("server Serve = %v, want a clean end of stream", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("server stream not closed by the client")
			}
			if transport == "ws" || transport == "wss" {
				frames := checkFrames(t, h.srv.wsFrames)
				if last := frames[len(frames)-1]; last != string(wsClose) {
					t.Errorf("last frame = %q, want %q", last, wsClose)
				}
			}
		})
	}
}

// checkFrames asserts RFC 7395 framing: every message the client sent is
// one complete element. It returns the messages.
func checkFrames(t *testing.T, frames chan string) []string {
	t.Helper()
	var all []string
	for {
		select {
		case f := <-frames:
			all = append(all, f)
			sc := xmlScanner{maxSize: 1 << 20, maxDepth: 64}
			doneAt := -1
			for i := range len(f) {
				done, err := sc.step(f[i])
				if err != nil {
					t.Fatalf("frame %q: %v", f, err)
				}
				if done && doneAt < 0 {
					doneAt = i
				}
			}
			if !strings.HasPrefix(f, "<") || doneAt != len(f)-1 {
				t.Errorf("frame is not exactly one element: %q", f)
			}
		default:
			// open, auth, open, bind, presence, unavailable presence, close
			if len(all) < 7 {
				t.Fatalf("only %d frames recorded: %q", len(all), all)
			}
			return all
		}
	}
}

func TestDialAuthRefused(t *testing.T) {
	srv := newFake(t, "tls", fakeOpts{})
	cfg := srv.config()
	cfg.Password = "wrong-password-value"
	c, err := Dial(context.Background(), cfg)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded with a wrong password")
	}
	var se *SessionError
	if !errors.As(err, &se) || se.Reason != ReasonAuth || !errors.Is(err, ErrAuth) {
		t.Fatalf("Dial = %v, want ReasonAuth", err)
	}
	if !strings.Contains(err.Error(), "not-authorized") {
		t.Errorf("error does not name the SASL condition: %v", err)
	}
	if strings.Contains(err.Error(), cfg.Password) {
		t.Errorf("error contains the password: %v", err)
	}
}

func TestDialBindConflict(t *testing.T) {
	srv := newFake(t, "tls", fakeOpts{bindConflict: true})
	_, err := Dial(context.Background(), srv.config())
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Dial = %v, want ErrConflict", err)
	}
}

func TestDialContext(t *testing.T) {
	// A server that accepts and then says nothing: Dial must give up when
	// its context ends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	for _, tr := range []Transport{TransportTLS, TransportTCP} {
		t.Run(string(tr), func(t *testing.T) {
			cfg := Config{Transport: tr, Address: ln.Addr().String(), Domain: fakeDomain, Username: "1001", Password: "p", Resource: "relay"}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := Dial(ctx, cfg)
			if !errors.Is(err, ErrContext) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Dial = %v, want ErrContext wrapping DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Dial took %s after a 200 ms context", d)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	base := Config{Transport: TransportTLS, Address: "127.0.0.1:5223", Domain: "finesse.test", Username: "1001", Password: "p", Resource: "relay"}
	tests := []struct {
		name string
		edit func(*Config)
		want error
	}{
		{"no domain", func(c *Config) { c.Domain = "" }, ErrConfig},
		{"no username", func(c *Config) { c.Username = "" }, ErrConfig},
		{"no password", func(c *Config) { c.Password = "" }, ErrConfig},
		{"no resource", func(c *Config) { c.Resource = "" }, ErrConfig},
		{"desktop resource", func(c *Config) { c.Resource = "desktop" }, ErrConfig},
		{"Desktop resource", func(c *Config) { c.Resource = "DeskTop" }, ErrConfig},
		{"no transport", func(c *Config) { c.Transport = "" }, ErrConfig},
		{"unknown transport", func(c *Config) { c.Transport = "carrier-pigeon" }, ErrConfig},
		{"address without port", func(c *Config) { c.Address = "finesse.test" }, ErrConfig},
		{"negative ping", func(c *Config) { c.PingInterval = -1 }, ErrConfig},
		{"domain with localpart", func(c *Config) { c.Domain = "a@finesse.test" }, ErrConfig},
		{"ws not loopback", func(c *Config) {
			c.Transport, c.Address, c.AllowInsecure = TransportWebSocket, "ws://finesse.test:7071/ws", true
		}, ErrInsecure},
		{"ws loopback without AllowInsecure", func(c *Config) {
			c.Transport, c.Address = TransportWebSocket, "ws://127.0.0.1:7071/ws"
		}, ErrInsecure},
		{"http bosh", func(c *Config) { c.Transport, c.Address = TransportBOSH, "http://finesse.test:7071/http-bind" }, ErrInsecure},
		{"ftp websocket", func(c *Config) { c.Transport, c.Address = TransportWebSocket, "ftp://finesse.test/ws" }, ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.edit(&cfg)
			_, err := Dial(context.Background(), cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Dial = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{Transport: TransportWebSocket, Address: "wss://finesse.test:8445", Domain: "finesse.test",
		Username: "1001", Password: "p", Resource: "relay"}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Address", cfg.Address, "wss://finesse.test:8445/ws"},
		{"PubSubDomain", cfg.PubSubDomain, "pubsub.finesse.test"},
		{"PingInterval", cfg.PingInterval, 10 * time.Second},
		{"PingMisses", cfg.PingMisses, 2},
		{"MaxStanzaSize", cfg.MaxStanzaSize, int64(1 << 20)},
		{"ServiceUser", cfg.ServiceUser, "finesse"},
		{"CloseTimeout", cfg.CloseTimeout, 3 * time.Second},
		{"ServerName", cfg.TLSConfig.ServerName, "finesse.test"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEvents(t *testing.T) {
	for _, transport := range []string{"tls", "ws"} {
		t.Run(transport, func(t *testing.T) {
			h := dialFake(t, transport, fakeOpts{}, nil)
			h.run(t, context.Background())
			for _, s := range []string{stanzaEscaped, stanzaChat, stanzaInline, stanzaForged, stanzaUnknownPayload, stanzaTwoItems, stanzaMarker} {
				h.fs.mustSend(s)
			}
			want := []struct {
				node, reqID string
				event       finesse.Event
				data        string
			}{
				{"/finesse/api/User/1001", "req-escaped", finesse.EventPut, "<user><loginId>1001</loginId><firstName>Tom &amp; Jerry</firstName><state>READY</state></user>"},
				{"/finesse/api/User/1001", "req-inline", finesse.EventPut, "<user><loginId>1001</loginId><firstName>Tom &amp; Jerry</firstName><state>NOT_READY</state></user>"},
				{"/finesse/api/User/1001/Dialogs", "req-two-1", finesse.EventPost, "<dialogs><Dialog><id>16817001</id></Dialog></dialogs>"},
				{"/finesse/api/User/1001/Dialogs", "req-two-2", finesse.EventDelete, ""},
				{"/finesse/api/SystemInfo", "req-marker", finesse.EventPut, ""},
			}
			for _, w := range want {
				u := h.nextUpdate(t)
				if u.Node != w.node || u.RequestID != w.reqID || u.Event != w.event || string(u.Data) != w.data {
					t.Errorf("update = {%s %s %s %q}, want {%s %s %s %q}", u.Node, u.RequestID, u.Event, u.Data, w.node, w.reqID, w.event, w.data)
				}
			}
			st := h.Stats()
			if st.Updates != 5 || st.Malformed != 1 || st.Ignored != 1 {
				t.Errorf("Stats = %+v, want 5 updates, 1 malformed, 1 ignored", st)
			}
			select {
			case err := <-h.runErr:
				t.Fatalf("bad payloads ended the session: %v", err)
			default:
			}
		})
	}
}

func TestLimits(t *testing.T) {
	big := strings.Repeat("x", 2<<20)
	deep := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	tests := []struct {
		name string
		send string
	}{
		{"huge text", "<message from='pubsub.finesse.test'><body>" + big + "</body></message>"},
		{"huge attribute", "<message from='" + big + "'/>"},
		{"huge tag name", "<" + big + "/>"},
		{"endless whitespace", strings.Repeat(" ", 2<<20)},
		{"deep nesting", "<message from='pubsub.finesse.test'>" + deep + "</message>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := dialFake(t, "tls", fakeOpts{}, func(c *Config) { c.MaxStanzaSize = 1 << 20; c.MaxDepth = 32 })
			h.run(t, context.Background())
			go func() { _ = h.fs.sendRaw(tt.send) }()
			err := h.ended(t, 5*time.Second)
			var se *SessionError
			if !errors.As(err, &se) || se.Reason != ReasonLimit || !errors.Is(err, ErrLimit) {
				t.Fatalf("Run = %v, want ReasonLimit", err)
			}
		})
	}
	t.Run("websocket message", func(t *testing.T) {
		h := dialFake(t, "ws", fakeOpts{}, func(c *Config) { c.MaxStanzaSize = 64 << 10 })
		h.run(t, context.Background())
		go func() { _ = h.fs.sendRaw("<message><body>" + strings.Repeat("y", 128<<10) + "</body></message>") }()
		if err := h.ended(t, 5*time.Second); !errors.Is(err, ErrLimit) {
			t.Fatalf("Run = %v, want ErrLimit", err)
		}
	})
	t.Run("within limits", func(t *testing.T) {
		h := dialFake(t, "tls", fakeOpts{}, func(c *Config) { c.MaxStanzaSize = 4096; c.MaxDepth = 16 })
		h.run(t, context.Background())
		for range 50 { // many stanzas, each small: the count is per stanza
			h.fs.mustSend(stanzaEscaped)
		}
		for range 50 {
			h.nextUpdate(t)
		}
	})
}

func TestStreamErrors(t *testing.T) {
	tests := []struct {
		name      string
		transport string
		send      string
		want      Reason
		text      string
	}{
		{"conflict", "tls", `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text></stream:error></stream:stream>`, ReasonConflict, "conflict"},
		{"conflict over websocket", "ws", `<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, ReasonConflict, "conflict"},
		{"system-shutdown", "tls", `<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`, ReasonStream, "system-shutdown"},
		{"end of stream", "tcp", `</stream:stream>`, ReasonStream, "closed the stream"},
		{"malformed xml", "tls", `<message><a></b></message>`, ReasonStream, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := dialFake(t, tt.transport, fakeOpts{}, nil)
			h.run(t, context.Background())
			_ = h.fs.sendRaw(tt.send)
			err := h.ended(t, 5*time.Second)
			var se *SessionError
			if !errors.As(err, &se) || se.Reason != tt.want {
				t.Fatalf("Run = %v, want reason %s", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Run = %v, want it to mention %q", err, tt.text)
			}
		})
	}
}

func TestPingTimeout(t *testing.T) {
	h := dialFake(t, "tls", fakeOpts{silentPings: true}, func(c *Config) {
		c.PingInterval = 50 * time.Millisecond
		c.PingMisses = 2
	})
	start := time.Now()
	h.run(t, context.Background())
	err := h.ended(t, 2*time.Second)
	if !errors.Is(err, ErrPingTimeout) {
		t.Fatalf("Run = %v, want ErrPingTimeout", err)
	}
	// First ping after 50 ms of silence, times out 25 ms later; the second
	// follows at once and times out at 100 ms: dead within 2 × interval.
	if d := time.Since(start); d < 95*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("declared dead after %s, want about 100 ms (2 × PingInterval)", d)
	}
	h.fs.expect("urn:xmpp:ping", `type="get"`)
}

func TestPingsAnswered(t *testing.T) {
	h := dialFake(t, "tcp", fakeOpts{}, func(c *Config) {
		c.PingInterval = 50 * time.Millisecond
		c.PingMisses = 3
	})
	h.run(t, context.Background())
	// Pings go out after each 50 ms of silence; wait for three answered
	// ones (polling: a loaded machine stretches the timers).
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case err := <-h.runErr:
			t.Fatalf("Run ended although pings are answered: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		st := h.Stats()
		if st.Pings >= 3 && st.LastPingRTT > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Stats = %+v, want >= 3 answered pings with an RTT", st)
		}
	}
}

func TestAnswersServerPing(t *testing.T) {
	h := dialFake(t, "tls", fakeOpts{}, nil)
	h.run(t, context.Background())
	h.fs.mustSend(`<iq type='get' id='srv-ping-1' from='finesse.test'><ping xmlns='urn:xmpp:ping'/></iq>`)
	h.fs.expect(`id="srv-ping-1"`, `type="result"`, `to="finesse.test"`)
	// Any other request gets service-unavailable, and the session lives on.
	h.fs.mustSend(`<iq type='get' id='srv-q-2' from='finesse.test'><query xmlns='jabber:iq:version'/></iq>`)
	h.fs.expect(`id="srv-q-2"`, `type="error"`, "service-unavailable")
	h.fs.mustSend(stanzaMarker)
	h.nextUpdate(t)
}

func TestServicePresence(t *testing.T) {
	var mu sync.Mutex
	var got []bool
	h := dialFake(t, "tls", fakeOpts{}, func(c *Config) {
		c.OnServicePresence = func(avail bool) {
			mu.Lock()
			got = append(got, avail)
			mu.Unlock()
		}
	})
	h.run(t, context.Background())
	for _, s := range []string{
		`<presence from='1002@finesse.test/desktop'/>`,                       // someone else
		`<presence from='finesse@finesse.test/server1'/>`,                    // up: true
		`<presence from='finesse@finesse.test/server2'/>`,                    // still up
		`<presence from='finesse@finesse.test/server1' type='unavailable'/>`, // server2 still up
		`<presence from='finesse@finesse.test/x' type='subscribe'/>`,         // not availability
		`<presence from='finesse@finesse.test/server2' type='unavailable'/>`, // down: false
		`<presence from='finesse@finesse.test/server1'/>`,                    // up again: true
		`<presence from='finesse@finesse.test' type='unavailable'/>`,         // bare: all down
	} {
		h.fs.mustSend(s)
	}
	h.fs.mustSend(stanzaMarker) // callbacks run in order before the marker's update
	h.nextUpdate(t)
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{true, false, true, false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("OnServicePresence calls = %v, want %v", got, want)
	}
}

// itemStanza is a pubsub event with one item of id on node (%s for the
// node is kept for beforeSubAnswer), with extra inside the message.
func itemStanza(node, id, requestID, extra string) string {
	return `<message xmlns='jabber:client' from='pubsub.finesse.test' to='1001@finesse.test/relay-1'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='` + node + `'>` +
		`<item id='` + id + `'><notification xmlns='http://jabber.org/protocol/pubsub'>&lt;Update&gt;&lt;event&gt;PUT&lt;/event&gt;&lt;requestId&gt;` + requestID +
		`&lt;/requestId&gt;&lt;source&gt;/finesse/api/User/1001&lt;/source&gt;&lt;data&gt;&lt;user&gt;&lt;state&gt;READY&lt;/state&gt;&lt;/user&gt;&lt;/data&gt;&lt;/Update&gt;</notification></item></items></event>` +
		extra + `</message>`
}

func TestReplayedItemsAreMarked(t *testing.T) {
	const delay = `<delay xmlns='urn:xmpp:delay' from='pubsub.finesse.test' stamp='2026-12-01T10:00:00Z'/>`
	team := finesse.TeamUsersNode("10")
	tests := []struct {
		name     string
		presence string   // sent on the client's initial presence
		before   string   // sent before the subscribe answer
		after    []string // sent after Subscribe returned
		replayed []bool   // Replayed of each update, in order
	}{
		{"last item before the subscribe answer, no delay", "", itemStanza("%s", "i1", "stale", ""), []string{itemStanza(team, "i2", "live", "")}, []bool{true, false}},
		{"delayed item after the answer", "", "", []string{itemStanza(team, "i1", "stale", delay), itemStanza(team, "i2", "live", "")}, []bool{true, false}},
		{"legacy delay", "", "", []string{itemStanza(team, "i1", "stale", `<x xmlns='jabber:x:delay' stamp='20261201T10:00:00'/>`), itemStanza(team, "i2", "live", "")}, []bool{true, false}},
		{"item on presence, before the barrier's answer, no delay", itemStanza(finesse.UserNode("1001"), "u1", "stale", ""), "", []string{itemStanza(team, "i2", "live", "")}, []bool{true, false}},
		{"item id already seen on the node", "", "", []string{itemStanza(team, "i1", "live-1", ""), itemStanza(team, "i1", "stale", ""), itemStanza(team, "i2", "live-2", "")}, []bool{false, true, false}},
		{"same id on another node is not a replay", "", "", []string{itemStanza(team, "i1", "live-1", ""), itemStanza(finesse.TeamUsersNode("11"), "i1", "live-2", "")}, []bool{false, false}},
		{"no replay", "", "", []string{itemStanza(team, "i1", "live", "")}, []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := dialFake(t, "tls", fakeOpts{beforeSubAnswer: tt.before, afterPresence: tt.presence}, nil)
			h.run(t, context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := h.Subscribe(ctx, team); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			for _, m := range tt.after {
				h.fs.mustSend(m)
			}
			for i, want := range tt.replayed {
				u := h.nextUpdate(t)
				if u.Replayed != want {
					t.Errorf("update %d (requestId %s): Replayed = %v, want %v", i, u.RequestID, u.Replayed, want)
				}
				if want != strings.HasPrefix(u.RequestID, "stale") {
					t.Errorf("update %d: requestId %s out of order", i, u.RequestID)
				}
			}
		})
	}
}

func TestSubscriptions(t *testing.T) {
	h := dialFake(t, "tls", fakeOpts{extraSubs: []Subscription{
		{Node: "/finesse/api/User/1001", JID: "1001@finesse.test", State: "subscribed"},                          // Finesse's default, bare JID
		{Node: "/finesse/api/Team/9/Users", JID: "1001@finesse.test/desktop", State: "subscribed"},               // the desktop's
		{Node: "/finesse/api/Team/7/Users", JID: "1001@finesse.test/relay-1", SubID: "old", State: "subscribed"}, // stale, ours
	}}, nil)
	h.run(t, context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	team := finesse.TeamUsersNode("10")
	if err := h.Subscribe(ctx, team); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	h.fs.expect(`<subscribe`, `node="`+team+`"`, `jid="1001@finesse.test/relay-1"`)
	if err := h.Subscribe(ctx, team); err != nil { // a second time: nothing sent
		t.Fatalf("Subscribe again: %v", err)
	}
	subs, err := h.Subscriptions(ctx)
	if err != nil {
		t.Fatalf("Subscriptions: %v", err)
	}
	if len(subs) != 4 {
		t.Fatalf("Subscriptions = %+v, want 4", subs)
	}
	var mine *Subscription
	for i := range subs {
		if subs[i].Node == team {
			mine = &subs[i]
		}
	}
	if mine == nil || mine.JID != h.JID() || mine.SubID != "sid-"+team || mine.State != "subscribed" {
		t.Errorf("our subscription = %+v", mine)
	}

	removed, err := h.PruneSubscriptions(ctx, []string{team})
	if err != nil {
		t.Fatalf("PruneSubscriptions: %v", err)
	}
	if removed != 1 {
		t.Errorf("removed %d, want 1 (only the stale one of our full JID)", removed)
	}
	unsub := h.fs.expect(`<unsubscribe`)
	if !strings.Contains(unsub, `node="/finesse/api/Team/7/Users"`) || !strings.Contains(unsub, `subid="old"`) {
		t.Errorf("prune sent %s, want the stale Team/7 subscription with its subid", unsub)
	}

	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close unsubscribes what Subscribe made, then says unavailable.
	rest := strings.Join(h.fs.received(), "\n")
	iu, ip := strings.Index(rest, `node="`+team+`"`), strings.Index(rest, `type="unavailable"`)
	if iu < 0 || ip < 0 || iu > ip {
		t.Errorf("after Close the server got:\n%s\nwant the unsubscribe of %s before unavailable presence", rest, team)
	}
	if err := h.Subscribe(ctx, team); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

func TestSubscribeRefused(t *testing.T) {
	h := dialFake(t, "tls", fakeOpts{subsErr: &stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden}}, nil)
	h.run(t, context.Background())
	err := h.Subscribe(context.Background(), finesse.TeamUsersNode("99"))
	var se stanza.Error
	if !errors.As(err, &se) || se.Condition != stanza.Forbidden {
		t.Fatalf("Subscribe = %v, want a forbidden stanza error", err)
	}
	if err := h.Subscribe(context.Background(), ""); !errors.Is(err, ErrConfig) {
		t.Errorf("Subscribe(\"\") = %v, want ErrConfig", err)
	}
}

func TestCloseBeforeRun(t *testing.T) {
	h := dialFake(t, "tls", fakeOpts{}, nil)
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := h.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
	h.fs.expect("<presence", `type="unavailable"`)
}

func TestRunContextCancel(t *testing.T) {
	h := dialFake(t, "wss", fakeOpts{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	h.run(t, ctx)
	cancel()
	err := h.ended(t, 5*time.Second)
	if !errors.Is(err, ErrContext) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want ErrContext wrapping context.Canceled", err)
	}
	h.fs.expect("<presence", `type="unavailable"`)
	if err := h.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("second Run = %v, want ErrClosed", err)
	}
}

func TestCloseBounded(t *testing.T) {
	// The server answers nothing (not even the stream close): Close must
	// still return within CloseTimeout.
	h := dialFake(t, "tls", fakeOpts{silentAll: true}, func(c *Config) { c.CloseTimeout = 300 * time.Millisecond })
	h.run(t, context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = h.Subscribe(ctx, "/finesse/api/Team/1/Users") // unanswered
	start := time.Now()
	_ = h.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %s with CloseTimeout 300 ms", d)
	}
	if err := h.ended(t, time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Run = %v, want ErrClosed", err)
	}
}

func TestSessionErrorIs(t *testing.T) {
	for _, r := range []Reason{ReasonAuth, ReasonConflict, ReasonStream, ReasonPingTimeout, ReasonClosed, ReasonContext, ReasonLimit} {
		err := error(&SessionError{Reason: r, Err: context.Canceled})
		n := 0
		for _, s := range []error{ErrAuth, ErrConflict, ErrStream, ErrPingTimeout, ErrClosed, ErrContext, ErrLimit} {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s matches %d sentinels, want exactly 1", r, n)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s does not unwrap to its cause", r)
		}
	}
}

func TestPendingIQEndsWithSession(t *testing.T) {
	// The server never answers; a Subscribe waiting with a long context
	// returns as soon as the session is over, with the reason.
	h := dialFake(t, "tls", fakeOpts{silentAll: true}, func(c *Config) { c.CloseTimeout = 200 * time.Millisecond })
	h.run(t, context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.Subscribe(context.Background(), "/finesse/api/Team/1/Users") }()
	h.fs.expect("<subscribe")
	start := time.Now()
	_ = h.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Subscribe = %v, want ErrClosed", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Subscribe returned %s after Close", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe still waiting after the session ended")
	}
}
