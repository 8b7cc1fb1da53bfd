package xmppd

import (
	"crypto/tls"
	"net"
	"regexp"
	"strings"
	"testing"
)

// transports names the ways a raw client can reach the server.
var transports = []string{"starttls", "tls", "tls-listener", "secure", "websocket", "wss"}

// connect starts the transport on s and returns a raw client for it.
func connect(t *testing.T, s *Server, transport string) *rawClient {
	t.Helper()
	switch transport {
	case "starttls":
		return dialRaw(t, serve(t, s, ModeSTARTTLS), false)
	case "tls":
		return dialRaw(t, serve(t, s, ModeTLS), true)
	case "tls-listener":
		stls, _ := testTLS(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return dialRaw(t, serveOn(t, s, tls.NewListener(ln, stls), ModeTLS).Addr().String(), true)
	case "secure":
		return dialRaw(t, serve(t, s, ModeSecure), false)
	case "websocket":
		return dialWS(t, serveWS(t, s, false))
	case "wss":
		return dialWS(t, serveWS(t, s, true))
	}
	t.Fatalf("unknown transport %s", transport)
	return nil
}

// TestEventEnvelope checks, on every transport, the whole path: TLS as the
// transport needs, SASL PLAIN, bind, presence, the finesse user's presence,
// and a published Update arriving escaped in exactly Finesse's envelope.
func TestEventEnvelope(t *testing.T) {
	idRE := regexp.MustCompile(`^/finesse/api/User/1001__1001@` + regexp.QuoteMeta(testDomain) + `__[A-Za-z0-9]{5}$`)
	for _, tr := range transports {
		for _, headline := range []bool{false, true} {
			name := tr
			if headline {
				name += "/headline"
			}
			t.Run(name, func(t *testing.T) {
				s := newTestServer(t, func(c *Config) { c.Headline = headline })
				c := connect(t, s, tr)
				if full := c.login("1001", "relay-1"); full != "1001@"+testDomain+"/relay-1" {
					t.Fatalf("bound %q", full)
				}
				c.presence(0)
				c.expectServicePresence(true)
				doc := updateDoc("1001", "READY")
				s.Publish("/finesse/api/User/1001", doc)
				n, raw, err := c.next()
				if err != nil {
					t.Fatal(err)
				}
				if n.XMLName.Local != "message" || n.XMLName.Space != nsClient {
					t.Fatalf("got %s", raw)
				}
				if got := n.get("from"); got != testPubSub {
					t.Errorf("from=%q, want %q", got, testPubSub)
				}
				if got := n.get("to"); got != "1001@"+testDomain {
					t.Errorf("to=%q, want the bare JID", got)
				}
				if got := n.get("id"); !idRE.MatchString(got) {
					t.Errorf("id=%q, want <node>__<jid>__<5 chars>", got)
				}
				typ, hasType := n.attr("type")
				if headline && typ != "headline" || !headline && hasType {
					t.Errorf("type=%q (present %v), headline=%v", typ, hasType, headline)
				}
				items := n.path("event", "items")
				if items == nil || n.child("event").XMLName.Space != nsPubSubEvent || items.get("node") != "/finesse/api/User/1001" {
					t.Fatalf("event/items wrong: %s", raw)
				}
				item := items.child("item")
				if item == nil || len(item.get("id")) < 36 {
					t.Fatalf("item wrong: %s", raw)
				}
				nt := item.child("notification")
				if nt == nil || nt.XMLName.Space != nsPubSub || len(nt.Nodes) != 0 {
					t.Fatalf("notification wrong: %s", raw)
				}
				if nt.Text != string(doc) {
					t.Errorf("notification text\n got %s\nwant %s", nt.Text, doc)
				}
				// Escaped text, Cisco style, and the stanza namespace where
				// the framing needs it.
				if !strings.Contains(raw, "<notification xmlns='http://jabber.org/protocol/pubsub'>&lt;Update&gt;&lt;data&gt;") ||
					!strings.Contains(raw, "Ana &amp;amp; Bo") {
					t.Errorf("not escaped like Finesse: %s", raw)
				}
				wantNS := tr == "websocket" || tr == "wss" || tr == "secure"
				if got := strings.HasPrefix(raw, "<message xmlns='jabber:client' "); got != wantNS {
					t.Errorf("xmlns on <message>: %v, want %v: %s", got, wantNS, raw)
				}
				// Closing our stream gets the server's stream end and a close.
				if c.ws {
					c.send(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`)
				} else {
					c.send(`</stream:stream>`)
				}
				c.expectEnd()
			})
		}
	}
}
