package xmppd

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"net"
	"strings"
	"testing"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	mellws "mellium.im/xmpp/websocket"
)

// melliumDial connects a mellium client session (the library the relay's
// client is built on) over transport, with password pass.
func melliumDial(t *testing.T, s *Server, transport, user, pass string) (*xmpp.Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, ctls := testTLS(t)
	origin := jid.MustParse(user + "@" + testDomain)
	features := []xmpp.StreamFeature{xmpp.SASL("", pass, sasl.Plain), xmpp.BindResource()}
	var (
		conn net.Conn
		sess *xmpp.Session
		err  error
	)
	switch transport {
	case "starttls":
		if conn, err = net.Dial("tcp", serve(t, s, ModeSTARTTLS)); err != nil {
			t.Fatal(err)
		}
		sess, err = xmpp.NewClientSession(ctx, origin, conn, append([]xmpp.StreamFeature{xmpp.StartTLS(ctls)}, features...)...)
	case "tls":
		if conn, err = tls.Dial("tcp", serve(t, s, ModeTLS), ctls); err != nil {
			t.Fatal(err)
		}
		sess, err = xmpp.NewSession(ctx, origin.Domain(), origin, conn, xmpp.Secure,
			xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
				return xmpp.StreamConfig{Features: features}
			}))
	case "websocket":
		url := serveWS(t, s, false)
		d := mellws.Dialer{Origin: "http://" + testDomain, InsecureNoTLS: true}
		if conn, err = d.DialDirect(ctx, url); err != nil {
			t.Fatal(err)
		}
		sess, err = xmpp.NewSession(ctx, origin.Domain(), origin, conn, xmpp.Secure,
			mellws.Negotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
				return xmpp.StreamConfig{Features: features}
			}))
	default:
		t.Fatalf("unknown transport %s", transport)
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	t.Cleanup(func() {
		_ = sess.Close()
		_ = conn.Close()
	})
	return sess, nil
}

// TestMelliumClient logs in with mellium's client on each transport, sends
// presence, and decodes a published event the way the relay will.
func TestMelliumClient(t *testing.T) {
	for _, tr := range []string{"starttls", "tls", "websocket"} {
		t.Run(tr, func(t *testing.T) {
			s := newTestServer(t, nil)
			sess, err := melliumDial(t, s, tr, "1001", "tok-1001")
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if got := sess.LocalAddr(); got.Bare().String() != "1001@"+testDomain || got.Resourcepart() == "" {
				t.Fatalf("bound %s", got)
			}
			type event struct{ from, node, text string }
			events := make(chan event, 4)
			served := make(chan error, 1)
			go func() {
				served <- sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
					if start.Name.Local != "message" {
						return nil
					}
					var msg struct {
						From  string `xml:"from,attr"`
						Items struct {
							Node         string `xml:"node,attr"`
							Notification string `xml:"item>notification"`
						} `xml:"http://jabber.org/protocol/pubsub#event event>items"`
					}
					if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&msg); err != nil {
						return err
					}
					events <- event{msg.From, msg.Items.Node, msg.Items.Notification}
					return nil
				}))
			}()
			prio := xmlstream.Wrap(xmlstream.Token(xml.CharData("0")), xml.StartElement{Name: xml.Name{Local: "priority"}})
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := sess.Send(ctx, stanza.Presence{Type: stanza.AvailablePresence}.Wrap(prio)); err != nil {
				t.Fatal(err)
			}
			eventually(t, "presence", func() bool { return s.Available("1001") })
			doc := updateDoc("1001", "NOT_READY")
			s.Publish("/finesse/api/User/1001/Dialogs", doc)
			select {
			case ev := <-events:
				if ev.from != testPubSub || ev.node != "/finesse/api/User/1001/Dialogs" || ev.text != string(doc) {
					t.Fatalf("event %+v", ev)
				}
			case err := <-served:
				t.Fatalf("Serve ended: %v", err)
			case <-ctx.Done():
				t.Fatal("no event")
			}
			// mellium v0.22.0 ends a WebSocket stream with </stream:stream>
			// instead of <close/>, which the server answers with
			// not-well-formed; either way Serve returns.
			_ = sess.Close()
			<-served
		})
	}
}

// TestMelliumBadPassword: a wrong password fails the mellium login with
// SASL not-authorized.
func TestMelliumBadPassword(t *testing.T) {
	s := newTestServer(t, nil)
	_, err := melliumDial(t, s, "starttls", "1001", "wrong")
	if err == nil || !strings.Contains(err.Error(), "not-authorized") {
		t.Fatalf("err = %v, want not-authorized", err)
	}
}
