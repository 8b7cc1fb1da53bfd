package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	mxmpp "mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"finesse-relay/server/sim"
	"finesse-relay/xmpp/finesse"
)

// peerEnv reads the env file of scripts/peer/start.sh (FINESSE_PEER_ENV).
// Without it the test skips, except in CI, where the peer is required.
func peerEnv(t *testing.T) map[string]string {
	t.Helper()
	path := os.Getenv("FINESSE_PEER_ENV")
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("peer required in CI: start scripts/peer/start.sh and set FINESSE_PEER_ENV")
		}
		t.Skip("FINESSE_PEER_ENV not set: start scripts/peer/start.sh to run against Prosody")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			env[k] = strings.Trim(v, `"'`)
		}
	}
	return env
}

const nsPubSub = "http://jabber.org/protocol/pubsub"

// adminSession logs in to Prosody as its admin: the stand-in for what Finesse
// does server-side (default subscriptions, publishing notifications).
func adminSession(t *testing.T, env map[string]string, roots *x509.CertPool) *mxmpp.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := tls.Dial("tcp", env["XMPP_TLS_ADDR"], &tls.Config{RootCAs: roots, ServerName: env["FINESSE_DOMAIN"]})
	if err != nil {
		t.Fatal(err)
	}
	origin := jid.MustParse("admin@" + env["FINESSE_DOMAIN"])
	s, err := mxmpp.NewSession(ctx, origin.Domain(), origin, conn, mxmpp.Secure, mxmpp.NewNegotiator(
		func(*mxmpp.Session, *mxmpp.StreamConfig) mxmpp.StreamConfig {
			return mxmpp.StreamConfig{Features: []mxmpp.StreamFeature{mxmpp.SASL("", env["FINESSE_ADMIN_PASS"], sasl.Plain), mxmpp.BindResource()}}
		}))
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	go func() { _ = s.Serve(nil) }()
	t.Cleanup(func() { _ = s.Close(); _ = conn.Close() })
	return s
}

// pubsubIQ sends one pubsub IQ to the pubsub service and waits for the answer.
func pubsubIQ(t *testing.T, s *mxmpp.Session, env map[string]string, op xml.StartElement, inner xml.TokenReader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	payload := xmlstream.Wrap(xmlstream.Wrap(inner, op), xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "pubsub"}})
	resp, err := s.SendIQElement(ctx, payload, stanza.IQ{Type: stanza.SetIQ, To: jid.MustParse(env["FINESSE_PUBSUB"])})
	if err != nil {
		t.Fatalf("pubsub %s: %v", op.Name.Local, err)
	}
	resp.Close()
}

// TestRelayThroughProsody runs the relay with Finesse REST from the simulator
// and the Notification Service played by real Prosody: the relay logs the
// agent in over direct TLS (SASL PLAIN checked by Dovecot), and an escaped
// <Update> published on the agent's node reaches the browser's WebSocket.
func TestRelayThroughProsody(t *testing.T) {
	env := peerEnv(t)
	domain := env["FINESSE_DOMAIN"]
	var agent, password string
	for _, u := range strings.Fields(env["PEER_USERS"]) {
		agent, password, _ = strings.Cut(u, ":")
		break
	}
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(env["FINESSE_CA_CERT"])
	if err != nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("peer CA %s: %v", env["FINESSE_CA_CERT"], err)
	}

	// Finesse REST from the simulator, with the peer's password for every
	// user; side A's Notification Service replaced by Prosody.
	host, xport, _ := net.SplitHostPort(env["XMPP_TLS_ADDR"])
	st := startStack(t, stackOptions{
		sim: func(c *sim.Config) { c.Password = password },
		relay: func(c *Config) {
			c.Sides = c.Sides[:1]
			c.Sides[0].XMPPTransport, c.Sides[0].XMPPHost, c.Sides[0].XMPPDomain = "tls", host, domain
			fmt.Sscan(xport, &c.Sides[0].XMPPPort)
			c.RootCAs.AppendCertsFromPEM(caPEM)
		},
	})

	// Finesse subscribes every agent to its own nodes server-side.
	admin := adminSession(t, env, roots)
	node := finesse.UserNode(agent)
	pubsubIQ(t, admin, env, xml.StartElement{Name: xml.Name{Local: "subscribe"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "node"}, Value: node}, {Name: xml.Name{Local: "jid"}, Value: agent + "@" + domain}}}, nil)

	body := fmt.Sprintf(`{"loginId":%q,"password":%q}`, agent, password)
	a := st.postSession(t, "/api/v1/sessions", body, "")
	c := st.open(t, a.Ticket, "")
	up := next(t, c, func(m wsMsg) bool { return m.Type == "status" && (m.Upstream == "up" || m.Upstream == "reconnecting") })
	if up.Upstream != "up" {
		t.Fatalf("the relay could not log in to Prosody: %+v", up)
	}
	if sess, _ := st.app.manager.Get(agent); sess == nil {
		t.Fatal("no agent session")
	}

	rid := fmt.Sprintf("prosody-%d", time.Now().UnixNano())
	update := finesse.EncodeUpdate(finesse.Update{Node: node, Event: finesse.EventPut, Source: node, RequestID: rid,
		Data: []byte("<user><loginId>" + agent + "</loginId><state>READY</state><firstName>Tom &amp; Jerry</firstName></user>")})
	pubsubIQ(t, admin, env, xml.StartElement{Name: xml.Name{Local: "publish"}, Attr: []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}},
		xmlstream.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData(update)), // escaped, as Finesse sends it
			xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "notification"}}), xml.StartElement{Name: xml.Name{Local: "item"}}))
	ev := next(t, c, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid })
	var user struct{ State, FirstName string }
	if err := json.Unmarshal(ev.Data, &user); err != nil || user.State != "READY" || user.FirstName != "Tom & Jerry" {
		t.Fatalf("event data %s (%v): want READY and the name decoded once", ev.Data, err)
	}
}
