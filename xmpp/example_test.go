package xmpp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log"
	"time"

	"finesse-relay/xmpp"
	"finesse-relay/xmpp/finesse"
)

// ExampleDial shows one agent session: dial, serve, subscribe a
// supervisor's team, hand events to a queue, close. (It needs a Finesse
// Notification Service, so it is compiled but not run.)
func ExampleDial() {
	pool := x509.NewCertPool() // add the Finesse Tomcat certificate
	events := make(chan finesse.Update, 1024)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := xmpp.Dial(ctx, xmpp.Config{
		Transport: xmpp.TransportWebSocket,
		Address:   "wss://finesse-a.example.com:8445/ws",
		Domain:    "finesse-a.example.com", // SystemInfo xmppDomain
		TLSConfig: &tls.Config{RootCAs: pool},
		Username:  "1001",
		Password:  "IdS access token",
		Resource:  "relay-1",
		OnUpdate: func(u finesse.Update) {
			select { // never block the stream
			case events <- u:
			default:
				log.Printf("event queue full, dropping %s", u.Node)
			}
		},
		OnServicePresence: func(up bool) { log.Printf("finesse service available: %v", up) },
	})
	if errors.Is(err, xmpp.ErrAuth) {
		log.Fatal("token refused: refresh it before trying again")
	}
	if err != nil {
		log.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()

	if _, err := c.PruneSubscriptions(ctx, nil); err != nil {
		log.Print(err)
	}
	if err := c.Subscribe(ctx, finesse.TeamUsersNode("10")); err != nil {
		log.Print(err)
	}

	// ... consume events ...

	_ = c.Close() // unsubscribes Team/10/Users, unavailable presence, end of stream
	var se *xmpp.SessionError
	if err := <-done; errors.As(err, &se) {
		log.Printf("session ended: %s", se.Reason) // "closed"
	}
}
