package bosh_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"finesse-relay/server/sim/boshd"
	"finesse-relay/xmpp/bosh"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testDomain = "finesse.example"
	nsSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	clientHead = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='" + testDomain + "' from='1001@" + testDomain + "' xml:lang='en'>"
	serverHead = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='" + testDomain + "' id='sid-%s'>"
)

// newBoshd serves a boshd.Server on a loopback httptest server.
func newBoshd(t testing.TB, cfg boshd.Config) (*boshd.Server, string) {
	t.Helper()
	cfg.Domain = testDomain
	srv := boshd.New(cfg)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return srv, hs.URL + "/http-bind"
}

// acceptAsync accepts one conn in the background.
func acceptAsync(srv *boshd.Server) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := srv.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

// readUntil reads from c until the data read contains want.
func readUntil(t testing.TB, c net.Conn, want string) string {
	t.Helper()
	var b bytes.Buffer
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for !strings.Contains(b.String(), want) {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			t.Fatalf("reading for %q: %v (got %q)", want, err, b.String())
		}
	}
	return b.String()
}

func mustWrite(t testing.TB, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// TestClientAgainstBoshdBytes drives both ends by hand: the client conn from
// Dial and the XMPP side from Accept, bytes in and bytes out.
func TestClientAgainstBoshdBytes(t *testing.T) {
	srv, url := newBoshd(t, boshd.Config{Wait: 10 * time.Second})
	accepted := acceptAsync(srv)

	// boshd answers the creation only after the XMPP side's header, so the
	// XMPP side must run while Dial waits.
	xmppSide := make(chan net.Conn, 1)
	go func() {
		x, ok := <-accepted
		if !ok {
			close(xmppSide)
			return
		}
		var b bytes.Buffer
		buf := make([]byte, 1024)
		for !strings.Contains(b.String(), ">") {
			n, err := x.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		_, _ = x.Write([]byte(strings.Replace(serverHead, "%s", "1", 1) +
			"<stream:features><mechanisms xmlns='" + nsSASL + "'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"))
		xmppSide <- x
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bosh.Dial(ctx, bosh.Config{URL: url, Domain: testDomain, Wait: 10 * time.Second})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	x := <-xmppSide
	if x == nil {
		t.Fatal("no XMPP side")
	}
	defer x.Close()

	mustWrite(t, c, clientHead)
	got := readUntil(t, c, "</stream:features>")
	for _, want := range []string{"<stream:stream ", "from='" + testDomain + "'", "id='sid-1'", "version='1.0'", "<mechanism>PLAIN</mechanism>"} {
		if !strings.Contains(got, want) {
			t.Errorf("client read %q: lacks %s", got, want)
		}
	}

	mustWrite(t, c, "<auth xmlns='"+nsSASL+"' mechanism='PLAIN'>AHUAcA==</auth>")
	readUntil(t, x, "AHUAcA==</auth>")
	mustWrite(t, x, "<success xmlns='"+nsSASL+"'/>")
	readUntil(t, c, "<success")

	mustWrite(t, c, clientHead) // restart
	readUntil(t, x, "<stream:stream")
	mustWrite(t, x, strings.Replace(serverHead, "%s", "2", 1)+"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>")
	got = readUntil(t, c, "</stream:features>")
	// BOSH does not carry the new stream id (XEP-0206 has no authid after a
	// restart), so the synthesized header repeats the session's.
	if !strings.HasPrefix(got, "<stream:stream ") || !strings.Contains(got, "<bind ") {
		t.Errorf("after restart the client read %q, want a new header then the features", got)
	}

	// Stanzas both ways; the client's unqualified stanza gets jabber:client.
	mustWrite(t, c, "<message to='x@y'><body>hi &amp; bye</body></message>")
	got = readUntil(t, x, "</message>")
	if !strings.Contains(got, "<message xmlns='jabber:client' to='x@y'><body>hi &amp; bye</body></message>") {
		t.Errorf("XMPP side read %q", got)
	}
	mustWrite(t, x, "<message from='pubsub."+testDomain+"'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>")
	readUntil(t, c, "pubsub#event")

	// Whitespace keepalives are dropped, not sent.
	mustWrite(t, c, "\n \n")

	mustWrite(t, c, "</stream:stream>")
	readUntil(t, x, "</stream:stream>")
	got = readUntil(t, c, "</stream:stream>")
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
		t.Errorf("Read after the stream end: %v, want io.EOF (read %q)", err, got)
	}
	if _, err := c.Write([]byte("<presence/>")); !errors.Is(err, bosh.ErrStreamClosed) {
		t.Errorf("Write after </stream:stream>: %v, want ErrStreamClosed", err)
	}
}

// xmppServer runs a mellium server session on an accepted conn: SASL PLAIN
// (1001/secret), bind, then answers pings and echoes messages back.
func xmppServer(ctx context.Context, conn net.Conn) error {
	s, err := xmpp.ReceiveSession(ctx, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASLServer(func(n *sasl.Negotiator) bool {
				user, pass, _ := n.Credentials()
				return string(user) == "1001" && string(pass) == "secret"
			}, sasl.Plain),
			xmpp.BindCustom(func(jid.JID, string) (jid.JID, error) {
				return jid.New("1001", testDomain, "relay")
			}),
		}}
	}))
	if err != nil {
		conn.Close()
		return err
	}
	defer conn.Close()
	return s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		switch start.Name.Local {
		case "iq":
			iq, err := stanza.NewIQ(*start)
			if err != nil {
				return err
			}
			if iq.Type == stanza.GetIQ {
				_, err = xmlstream.Copy(r, iq.Result(nil))
			}
			return err
		case "message":
			msg, err := stanza.NewMessage(*start)
			if err != nil {
				return err
			}
			var body struct {
				Body string `xml:"body"`
			}
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&body); err != nil {
				return err
			}
			reply := stanza.Message{To: msg.From, Type: stanza.ChatMessage}
			_, err = xmlstream.Copy(r, reply.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData("echo: "+body.Body)), xml.StartElement{Name: xml.Name{Local: "body"}})))
			return err
		}
		return nil
	}))
}

// clientSession logs in over bosh.Dial with mellium.
func clientSession(ctx context.Context, url, pass string) (*xmpp.Session, error) {
	conn, err := bosh.Dial(ctx, bosh.Config{URL: url, Domain: testDomain, Wait: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	origin := jid.MustParse("1001@" + testDomain)
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

// TestMelliumOverBoshd runs a real mellium client session over bosh.Dial
// against a real mellium server session over boshd: the two halves
// interoperate with XMPP as mellium speaks it.
func TestMelliumOverBoshd(t *testing.T) {
	srv, url := newBoshd(t, boshd.Config{Wait: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	serverDone := make(chan error, 1)
	go func() {
		conn, err := srv.Accept()
		if err != nil {
			serverDone <- err
			return
		}
		serverDone <- xmppServer(ctx, conn)
	}()

	s, err := clientSession(ctx, url, "secret")
	if err != nil {
		t.Fatalf("client session: %v", err)
	}
	if got := s.LocalAddr().String(); got != "1001@"+testDomain+"/relay" {
		t.Errorf("bound %q, want 1001@%s/relay", got, testDomain)
	}
	msgs := make(chan string, 1)
	clientDone := make(chan error, 1)
	go func() {
		clientDone <- s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			var body struct {
				Body string `xml:"body"`
			}
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&body); err != nil {
				return err
			}
			msgs <- body.Body
			return nil
		}))
	}()

	resp, err := s.SendIQElement(ctx, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:ping", Local: "ping"}}),
		stanza.IQ{Type: stanza.GetIQ, To: jid.MustParse(testDomain)})
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	resp.Close()

	err = s.Send(ctx, stanza.Message{To: jid.MustParse("1001@" + testDomain + "/relay"), Type: stanza.ChatMessage}.
		Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData("hello <&>")), xml.StartElement{Name: xml.Name{Local: "body"}})))
	if err != nil {
		t.Fatalf("send message: %v", err)
	}
	select {
	case m := <-msgs:
		if m != "echo: hello <&>" {
			t.Errorf("echo %q, want %q", m, "echo: hello <&>")
		}
	case err := <-serverDone:
		t.Fatalf("no echo; the server session ended: %v", err)
	case <-ctx.Done():
		t.Fatal("no echo")
	}

	if err := s.Close(); err != nil {
		t.Errorf("client close: %v", err)
	}
	select {
	case err := <-clientDone:
		if err != nil {
			t.Errorf("client Serve: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("client Serve did not end after the stream closed")
	}
	if err := s.Conn().Close(); err != nil {
		t.Errorf("conn close: %v", err)
	}
	select {
	case err := <-serverDone:
		if err != nil {
			t.Errorf("server Serve: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("server session did not end")
	}
}

func TestMelliumOverBoshdWrongPassword(t *testing.T) {
	srv, url := newBoshd(t, boshd.Config{Wait: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	serverDone := make(chan error, 1)
	go func() {
		conn, err := srv.Accept()
		if err != nil {
			serverDone <- err
			return
		}
		serverDone <- xmppServer(ctx, conn)
	}()
	_, err := clientSession(ctx, url, "wrong")
	if err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if !strings.Contains(err.Error(), "not-authorized") {
		t.Errorf("error %v, want not-authorized", err)
	}
	srv.Close()
	<-serverDone
}
