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
	"slices"
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

// peerEnv reads the env file of a test peer: scripts/peer/start.sh
// (Prosody, FINESSE_PEER_ENV) or scripts/peer/ejabberd-start.sh (ejabberd,
// FINESSE_EJABBERD_ENV). Without it the test skips, except in CI, where
// the peer is required.
func peerEnv(t *testing.T, envVar, script string) map[string]string {
	t.Helper()
	path := os.Getenv(envVar)
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("peer required in CI: start %s and set %s", script, envVar)
		}
		t.Skipf("%s not set: start %s to run against it", envVar, script)
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

// adminSession logs in to the peer as its admin: the stand-in for what
// Finesse does server-side (creating nodes, publishing notifications).
func adminSession(t *testing.T, env map[string]string, roots *x509.CertPool) *mxmpp.Session {
	t.Helper()
	return peerSession(t, env, roots, "admin", env["FINESSE_ADMIN_PASS"])
}

// peerSession logs in to the peer over direct TLS as user.
func peerSession(t *testing.T, env map[string]string, roots *x509.CertPool, user, pass string) *mxmpp.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := tls.Dial("tcp", env["XMPP_TLS_ADDR"], &tls.Config{RootCAs: roots, ServerName: env["FINESSE_DOMAIN"]})
	if err != nil {
		t.Fatal(err)
	}
	origin := jid.MustParse(user + "@" + env["FINESSE_DOMAIN"])
	s, err := mxmpp.NewSession(ctx, origin.Domain(), origin, conn, mxmpp.Secure, mxmpp.NewNegotiator(
		func(*mxmpp.Session, *mxmpp.StreamConfig) mxmpp.StreamConfig {
			return mxmpp.StreamConfig{Features: []mxmpp.StreamFeature{mxmpp.SASL("", pass, sasl.Plain), mxmpp.BindResource()}}
		}))
	if err != nil {
		t.Fatalf("%s login: %v", user, err)
	}
	go func() { _ = s.Serve(nil) }()
	t.Cleanup(func() { _ = s.Close(); _ = conn.Close() })
	return s
}

// pubsubIQ sends one pubsub IQ to the pubsub service and waits for the
// answer; an error answer fails the test unless its condition is in ok.
func pubsubIQ(t *testing.T, s *mxmpp.Session, env map[string]string, op xml.StartElement, inner xml.TokenReader, ok ...stanza.Condition) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	payload := xmlstream.Wrap(xmlstream.Wrap(inner, op), xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "pubsub"}})
	resp, err := s.SendIQElement(ctx, payload, stanza.IQ{Type: stanza.SetIQ, To: jid.MustParse(env["FINESSE_PUBSUB"])})
	if err != nil {
		t.Fatalf("pubsub %s: %v", op.Name.Local, err)
	}
	defer resp.Close()
	var answer struct {
		Type string        `xml:"type,attr"`
		Err  *stanza.Error `xml:"error"`
	}
	if err := xml.NewTokenDecoder(resp).Decode(&answer); err != nil {
		t.Fatalf("pubsub %s answer: %v", op.Name.Local, err)
	}
	if answer.Type == "error" && (answer.Err == nil || !slices.Contains(ok, answer.Err.Condition)) {
		t.Fatalf("pubsub %s: error answer %+v", op.Name.Local, answer.Err)
	}
}

// TestRelayThroughXMPPServers runs the relay with Finesse REST from the
// simulator and the Notification Service played by a real XMPP server,
// Prosody and ejabberd in turn: the relay logs the agent in over direct
// TLS (SASL PLAIN checked by Dovecot or extauth), and an escaped <Update>
// published on the agent's node reaches the browser's WebSocket. An item
// published before the relay logged in, which ejabberd replays on the
// relay's presence, must never reach the browser as an event.
func TestRelayThroughXMPPServers(t *testing.T) {
	for _, srv := range []struct{ name, envVar, script string }{
		{"prosody", "FINESSE_PEER_ENV", "scripts/peer/start.sh"},
		{"ejabberd", "FINESSE_EJABBERD_ENV", "scripts/peer/ejabberd-start.sh"},
	} {
		t.Run(srv.name, func(t *testing.T) { testRelayThrough(t, peerEnv(t, srv.envVar, srv.script)) })
	}
}

func testRelayThrough(t *testing.T, env map[string]string) {
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

	// Finesse creates the agent's nodes and subscribes the agent's bare JID
	// server-side. The strict peer (ejabberd) lets a JID subscribe only
	// itself, so there a session of the agent makes that subscription.
	admin := adminSession(t, env, roots)
	node := finesse.UserNode(agent)
	pubsubIQ(t, admin, env, xml.StartElement{Name: xml.Name{Local: "create"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "node"}, Value: node}}}, nil, stanza.Conflict)
	subscriber := admin
	if env["PEER_STRICT_PUBSUB"] == "1" {
		subscriber = peerSession(t, env, roots, agent, password)
	}
	pubsubIQ(t, subscriber, env, xml.StartElement{Name: xml.Name{Local: "subscribe"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "node"}, Value: node}, {Name: xml.Name{Local: "jid"}, Value: agent + "@" + domain}}}, nil)
	publish := func(rid, state string) {
		update := finesse.EncodeUpdate(finesse.Update{Node: node, Event: finesse.EventPut, Source: node, RequestID: rid,
			Data: []byte("<user><loginId>" + agent + "</loginId><state>" + state + "</state><firstName>Tom &amp; Jerry</firstName></user>")})
		pubsubIQ(t, admin, env, xml.StartElement{Name: xml.Name{Local: "publish"}, Attr: []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}},
			xmlstream.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData(update)), // escaped, as Finesse sends it
				xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "notification"}}), xml.StartElement{Name: xml.Name{Local: "item"}}))
	}
	stale := fmt.Sprintf("stale-%d", time.Now().UnixNano())
	publish(stale, "NOT_READY") // the last item when the relay logs in

	body := fmt.Sprintf(`{"loginId":%q,"password":%q}`, agent, password)
	a := st.postSession(t, "/api/v1/sessions", body, "")
	c := st.open(t, a.Ticket, "")
	notStale := func(m wsMsg) {
		if m.Type == "event" && m.RequestID == stale {
			t.Errorf("the item replayed at login reached the browser as an event (requestId %s)", stale)
		}
	}
	up := next(t, c, func(m wsMsg) bool {
		notStale(m)
		return m.Type == "status" && (m.Upstream == "up" || m.Upstream == "reconnecting")
	})
	if up.Upstream != "up" {
		t.Fatalf("the relay could not log in to the XMPP server: %+v", up)
	}
	if sess, _ := st.app.manager.Get(agent); sess == nil {
		t.Fatal("no agent session")
	}

	rid := fmt.Sprintf("live-%d", time.Now().UnixNano())
	publish(rid, "READY")
	ev := next(t, c, func(m wsMsg) bool {
		notStale(m)
		return m.Type == "event" && m.RequestID == rid
	})
	var user struct{ State, FirstName string }
	if err := json.Unmarshal(ev.Data, &user); err != nil || user.State != "READY" || user.FirstName != "Tom & Jerry" {
		t.Fatalf("event data %s (%v): want READY and the name decoded once", ev.Data, err)
	}
}
