package xmppd_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"

	"finesse-relay/server/sim/xmppd"
	"finesse-relay/xmpp/finesse"
)

// Example wires a Notification Service for one Finesse side: STARTTLS on
// one listener, WebSocket on an HTTPS mux, and an event for agent 1001.
func Example() {
	var cert tls.Certificate // the side's certificate
	srv := xmppd.New(xmppd.Config{
		Domain:    "finesse-a.demo.local",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		Authenticate: func(_ context.Context, user, password string) error {
			if password != "demo" {
				return errors.New("bad password")
			}
			return nil
		},
		AuthorizeSubscribe: func(user, node string) error {
			if user == "2001" && node == finesse.TeamUsersNode("10") {
				return nil // the supervisor of team 10
			}
			return xmppd.ErrForbidden
		},
		OnPresence: func(user string, available bool) {
			// start or stop the user's forced-logout timer
		},
	})
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return
	}
	go func() { _ = srv.Serve(ctx, ln, xmppd.ModeSTARTTLS) }()

	mux := http.NewServeMux()
	mux.Handle("/ws", srv.WebSocketHandler(ctx))
	mux.Handle("/ws/", srv.WebSocketHandler(ctx))

	update := []byte(`<Update><data><user><loginId>1001</loginId><state>READY</state></user></data>` +
		`<event>PUT</event><requestId></requestId><source>/finesse/api/User/1001</source></Update>`)
	srv.Publish(finesse.UserNode("1001"), update)
}
