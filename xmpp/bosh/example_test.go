package bosh_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"finesse-relay/server/sim/boshd"
	"finesse-relay/xmpp/bosh"
)

// ExampleDial logs in over BOSH with mellium. The connection manager here is
// the simulator's (boshd) with a mellium server behind it; against Finesse
// the URL is https://<fqdn>:7443/http-bind and TLSConfig trusts its
// certificate.
func ExampleDial() {
	cm := boshd.New(boshd.Config{Domain: "finesse.example"})
	hs := httptest.NewServer(cm)
	defer hs.Close()
	defer cm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		if conn, err := cm.Accept(); err == nil {
			_ = xmppServer(ctx, conn)
		}
	}()

	conn, err := bosh.Dial(ctx, bosh.Config{URL: hs.URL + "/http-bind", Domain: "finesse.example"})
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	defer conn.Close()
	agent := jid.MustParse("1001@finesse.example")
	// BOSH runs over HTTPS: the stream is already secure.
	s, err := xmpp.NewSession(ctx, agent.Domain(), agent, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{xmpp.SASL("", "secret", sasl.Plain), xmpp.BindResource()}}
		}))
	if err != nil {
		fmt.Println("login:", err)
		return
	}
	fmt.Println("bound", s.LocalAddr())
	p := conn.(*bosh.Conn).Params()
	fmt.Println("hold", p.Hold, "requests", p.Requests)
	_ = s.Close()
	// Output:
	// bound 1001@finesse.example/relay
	// hold 1 requests 2
}
