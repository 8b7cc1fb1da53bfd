package bosh_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"finesse-relay/xmpp/bosh"
)

// peerEnv reads the env file written by scripts/peer/start.sh (or the
// reference Prosody recipe) named by $FINESSE_PEER_ENV. Without it the test
// is skipped, unless $CI is set, where a missing peer is a failure.
func peerEnv(t *testing.T) map[string]string {
	t.Helper()
	path := os.Getenv("FINESSE_PEER_ENV")
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("FINESSE_PEER_ENV is not set (CI needs the Prosody peer: scripts/peer/start.sh)")
		}
		t.Skip("FINESSE_PEER_ENV not set; start the Prosody peer (scripts/peer/start.sh) to run this test")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("peer env: %v", err)
	}
	defer f.Close()
	env := make(map[string]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = strings.Trim(v, `"'`)
		}
	}
	for _, k := range []string{"BOSH_URL", "FINESSE_DOMAIN"} {
		if env[k] == "" {
			t.Fatalf("peer env %s has no %s", path, k)
		}
	}
	return env
}

// peerTLS trusts the peer's self-signed certificate.
func peerTLS(t *testing.T, env map[string]string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(env["FINESSE_CA_CERT"])
	if err != nil {
		t.Fatalf("CA cert: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CA cert: no certificate found")
	}
	return &tls.Config{RootCAs: pool, ServerName: env["FINESSE_DOMAIN"], MinVersion: tls.VersionTLS12}
}

// loginOverBOSH dials url and logs in with SASL PLAIN and resource binding.
func loginOverBOSH(ctx context.Context, t *testing.T, cfg bosh.Config, user, pass string) (*xmpp.Session, error) {
	t.Helper()
	origin := jid.MustParse(user + "@" + cfg.Domain)
	conn, err := bosh.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s, err := xmpp.NewSession(ctx, origin.Domain(), origin, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{xmpp.SASL("", pass, sasl.Plain), xmpp.BindResource()}}
		}))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func TestProsodyBOSH(t *testing.T) {
	env := peerEnv(t)
	urls := map[string]string{"http": env["BOSH_URL"], "https": env["BOSH_TLS_URL"]}
	for name, url := range urls {
		if url == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := bosh.Config{URL: url, Domain: env["FINESSE_DOMAIN"], Wait: 5 * time.Second}
			if strings.HasPrefix(url, "https") {
				cfg.TLSConfig = peerTLS(t, env)
			}
			user, pass := peerUser(env)
			loginStart := time.Now()
			s, err := loginOverBOSH(ctx, t, cfg, user, pass)
			if err != nil {
				t.Fatalf("login over BOSH: %v", err)
			}
			t.Logf("session creation + SASL PLAIN + restart + bind over BOSH %s: %v", name, time.Since(loginStart))
			if got := s.LocalAddr().Bare().String(); got != user+"@"+env["FINESSE_DOMAIN"] {
				t.Errorf("bound JID %q, want %s@%s", got, user, env["FINESSE_DOMAIN"])
			}
			p := s.Conn().(*bosh.Conn).Params()
			if p.Requests < 1 || p.Wait <= 0 || p.Wait > 5*time.Second {
				t.Errorf("params %v: want requests ≥ 1 and 0 < wait ≤ 5s", p)
			}

			served := make(chan error, 1)
			go func() { served <- s.Serve(nil) }()

			// A ping IQ to the server must come back as a result (round trip
			// through the long-poll).
			start := time.Now()
			resp, err := s.SendIQElement(ctx, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:ping", Local: "ping"}}),
				stanza.IQ{Type: stanza.GetIQ, To: jid.MustParse(env["FINESSE_DOMAIN"])})
			if err != nil {
				t.Fatalf("ping: %v", err)
			}
			resp.Close()
			t.Logf("ping round trip over BOSH %s: %v", name, time.Since(start))

			// Wait longer than the long-poll 'wait' so an empty response and a
			// new poll happen, then check the session still answers.
			time.Sleep(6 * time.Second)
			resp, err = s.SendIQElement(ctx, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:ping", Local: "ping"}}),
				stanza.IQ{Type: stanza.GetIQ, To: jid.MustParse(env["FINESSE_DOMAIN"])})
			if err != nil {
				t.Fatalf("ping after an idle wait: %v", err)
			}
			resp.Close()

			if err := s.Close(); err != nil {
				t.Errorf("session close: %v", err)
			}
			select {
			case err := <-served:
				if err != nil {
					t.Errorf("Serve after close: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Serve did not return after the stream was closed")
			}
			if err := s.Conn().Close(); err != nil {
				t.Errorf("conn close: %v", err)
			}
		})
	}
}

func TestProsodyBOSHWrongPassword(t *testing.T) {
	env := peerEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	user, _ := peerUser(env)
	_, err := loginOverBOSH(ctx, t, bosh.Config{URL: env["BOSH_URL"], Domain: env["FINESSE_DOMAIN"], Wait: 5 * time.Second}, user, "wrong")
	if err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if !strings.Contains(err.Error(), "not-authorized") {
		t.Errorf("error %q, want a SASL not-authorized failure", err)
	}
}

func TestProsodyBOSHUnknownHost(t *testing.T) {
	env := peerEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := bosh.Dial(ctx, bosh.Config{URL: env["BOSH_URL"], Domain: "no-such-domain.example", Wait: 5 * time.Second})
	// XEP-0124 says host-unknown; Prosody 0.12 answers improper-addressing.
	var te *bosh.TerminateError
	if !errors.As(err, &te) || (te.Condition != bosh.ConditionHostUnknown && te.Condition != bosh.ConditionImproperAddressing) {
		t.Fatalf("Dial to an unknown domain: %v, want *TerminateError host-unknown or improper-addressing", err)
	}
}

// peerUser returns a static login of the peer (PEER_USERS, else 1001/pass1001).
func peerUser(env map[string]string) (user, pass string) {
	for _, up := range strings.Fields(env["PEER_USERS"]) {
		if u, p, ok := strings.Cut(up, ":"); ok {
			return u, p
		}
	}
	return "1001", "pass1001"
}

// TestProsodyBOSHEvent subscribes over BOSH and checks that a pubsub event
// published by the peer's admin (over a second BOSH session) reaches the
// agent's long-poll, with the Update escaped as Finesse sends it.
func TestProsodyBOSHEvent(t *testing.T) {
	env := peerEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	domain := env["FINESSE_DOMAIN"]
	cfg := bosh.Config{URL: env["BOSH_URL"], Domain: domain, Wait: 10 * time.Second}
	user, pass := peerUser(env)
	s, err := loginOverBOSH(ctx, t, cfg, user, pass)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer s.Conn().Close()
	defer s.Close()

	events := make(chan string, 4)
	handler := xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local != "message" {
			return nil
		}
		var b strings.Builder
		for {
			tok, err := r.Token()
			if err != nil {
				break
			}
			if cd, ok := tok.(xml.CharData); ok {
				b.Write(cd)
			}
		}
		events <- b.String()
		return nil
	})
	served := make(chan error, 1)
	go func() { served <- s.Serve(handler) }()

	prio := xmlstream.Wrap(xmlstream.Token(xml.CharData("0")), xml.StartElement{Name: xml.Name{Local: "priority"}})
	if err := s.Send(ctx, stanza.Presence{Type: stanza.AvailablePresence}.Wrap(prio)); err != nil {
		t.Fatalf("presence: %v", err)
	}
	node := "/finesse/api/User/" + user
	sub := xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "subscribe"}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "node"}, Value: node}, {Name: xml.Name{Local: "jid"}, Value: user + "@" + domain}}}),
		xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "pubsub"}})
	resp, err := s.SendIQElement(ctx, sub, stanza.IQ{Type: stanza.SetIQ, To: jid.MustParse("pubsub." + domain)})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	resp.Close()

	adminJID, adminPass := env["FINESSE_ADMIN_JID"], env["FINESSE_ADMIN_PASS"]
	if adminJID == "" || adminPass == "" {
		t.Skip("peer env has no FINESSE_ADMIN_JID / FINESSE_ADMIN_PASS to publish with")
	}
	admin, err := loginOverBOSH(ctx, t, cfg, jid.MustParse(adminJID).Localpart(), adminPass)
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	defer admin.Conn().Close()
	defer admin.Close()
	go func() { _ = admin.Serve(nil) }()

	update := "<Update><data><user><loginId>" + user + "</loginId><state>READY</state></user></data><event>PUT</event>" +
		"<requestId></requestId><source>" + node + "</source></Update>"
	publish := xmlstream.Wrap(
		xmlstream.Wrap(
			xmlstream.Wrap(
				xmlstream.Wrap(xmlstream.Token(xml.CharData(update)), xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "notification"}}),
				xml.StartElement{Name: xml.Name{Local: "item"}}),
			xml.StartElement{Name: xml.Name{Local: "publish"}, Attr: []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}}),
		xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "pubsub"}})
	start := time.Now()
	resp, err = admin.SendIQElement(ctx, publish, stanza.IQ{Type: stanza.SetIQ, To: jid.MustParse("pubsub." + domain)})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	resp.Close()
	select {
	case ev := <-events:
		if !strings.Contains(ev, "<loginId>"+user+"</loginId>") {
			t.Errorf("event text %q does not carry the escaped Update for %s", ev, user)
		}
		t.Logf("publish over BOSH → event over BOSH: %v", time.Since(start))
	case err := <-served:
		t.Fatalf("Serve ended before the event: %v", err)
	case <-ctx.Done():
		t.Fatal("no event arrived over BOSH")
	}
}

const nsPubSub = "http://jabber.org/protocol/pubsub"
