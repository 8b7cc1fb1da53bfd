package bosh_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"finesse-relay/server/sim/boshd"
	"finesse-relay/xmpp/bosh"
)

// benchSession dials bosh → boshd on loopback and returns the client conn,
// already past the stream header, and the XMPP side.
func benchSession(b *testing.B) (net.Conn, net.Conn) {
	b.Helper()
	srv, url := newBoshd(b, boshd.Config{Wait: 30 * time.Second})
	accepted := make(chan net.Conn, 1)
	go func() {
		x, err := srv.Accept()
		if err != nil {
			close(accepted)
			return
		}
		buf := make([]byte, 1024)
		var got bytes.Buffer
		for !strings.Contains(got.String(), ">") {
			n, err := x.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				break
			}
		}
		_, _ = x.Write([]byte(strings.Replace(serverHead, "%s", "b", 1) + "<stream:features/>"))
		accepted <- x
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bosh.Dial(ctx, bosh.Config{URL: url, Domain: testDomain, Wait: 30 * time.Second})
	if err != nil {
		b.Fatalf("Dial: %v", err)
	}
	x := <-accepted
	if x == nil {
		b.Fatal("no XMPP side")
	}
	b.Cleanup(func() {
		x.Close()
		c.Close()
	})
	mustWrite(b, c, clientHead)
	readUntil(b, c, "<stream:features")
	return c, x
}

// BenchmarkRoundTrip measures one stanza client → boshd → XMPP side (which
// echoes it) → boshd → client, over loopback HTTP.
func BenchmarkRoundTrip(b *testing.B) {
	c, x := benchSession(b)
	go func() { _, _ = io.Copy(x, x) }() // echo
	buf := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("id='m%d'", i)
		if _, err := fmt.Fprintf(c, "<message %s to='a@b'><body>ping</body></message>", id); err != nil {
			b.Fatal(err)
		}
		var got []byte
		for !bytes.Contains(got, []byte(id)) {
			n, err := c.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			got = append(got, buf[:n]...)
		}
	}
}

// BenchmarkServerPush measures events pushed by the XMPP side and read by the
// client (the Finesse direction), 1 KiB each.
func BenchmarkServerPush(b *testing.B) {
	c, x := benchSession(b)
	event := "<message from='pubsub." + testDomain + "'><event xmlns='http://jabber.org/protocol/pubsub#event'><items><item><notification>" +
		strings.Repeat("x", 900) + "</notification></item></items></event></message>"
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := io.WriteString(x, event); err != nil {
				return
			}
		}
		_, _ = io.WriteString(x, "<message id='end'/>")
	}()
	b.SetBytes(int64(len(event)))
	b.ResetTimer()
	buf := make([]byte, 64<<10)
	var tail []byte
	for !bytes.Contains(tail, []byte("id='end'")) {
		n, err := c.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		tail = append(tail[max(0, len(tail)-32):], buf[:n]...)
	}
}
