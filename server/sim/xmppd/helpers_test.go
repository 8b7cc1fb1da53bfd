package xmppd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testDomain = "finesse-a.demo.local"
	testPubSub = "pubsub." + testDomain
	// testTimeout bounds every wait of a test.
	testTimeout = 5 * time.Second
)

// testAuth accepts password "pw-<user>" (and token "tok-<user>").
func testAuth(_ context.Context, user, pass string) error {
	if pass == "pw-"+user || pass == "tok-"+user {
		return nil
	}
	return errors.New("bad credentials")
}

var (
	certOnce  sync.Once
	serverTLS *tls.Config
	clientTLS *tls.Config
	certErr   error
)

// testTLS returns a server config with a fresh self-signed certificate for
// testDomain and 127.0.0.1, and a client config trusting it.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
		if err != nil {
			certErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: testDomain},
			DNSNames:              []string{testDomain, testPubSub, "localhost"},
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			certErr = err
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			certErr = err
			return
		}
		pool := x509.NewCertPool()
		pool.AddCert(leaf)
		serverTLS = &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
			MinVersion:   tls.VersionTLS12,
		}
		clientTLS = &tls.Config{RootCAs: pool, ServerName: testDomain, MinVersion: tls.VersionTLS12}
	})
	if certErr != nil {
		t.Fatal(certErr)
	}
	return serverTLS, clientTLS.Clone()
}

// newTestServer returns a Server with test defaults, edited by edit, and
// closes it when the test ends.
func newTestServer(t testing.TB, edit func(*Config)) *Server {
	t.Helper()
	stls, _ := testTLS(t)
	cfg := Config{Domain: testDomain, TLSConfig: stls, Authenticate: testAuth}
	if edit != nil {
		edit(&cfg)
	}
	s := New(cfg)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// serve runs s.Serve on a loopback listener in mode and returns the
// address; the Serve call is stopped and awaited when the test ends.
func serve(t testing.TB, s *Server, mode ListenMode) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, s, ln, mode).Addr().String()
}

func serveOn(t testing.TB, s *Server, ln net.Listener, mode ListenMode) net.Listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, mode) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln
}

// serveWS mounts the WebSocket handler on an httptest server (TLS when
// secure) and returns its ws:// or wss:// URL.
func serveWS(t testing.TB, s *Server, secure bool) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	mux := http.NewServeMux()
	h := s.WebSocketHandler(ctx)
	mux.Handle("/ws", h)
	mux.Handle("/ws/", h)
	var hs *httptest.Server
	if secure {
		stls, _ := testTLS(t)
		hs = httptest.NewUnstartedServer(mux)
		hs.TLS = stls.Clone()
		hs.StartTLS()
	} else {
		hs = httptest.NewServer(mux)
	}
	t.Cleanup(func() {
		cancel()
		_ = s.Close() // ends the hijacked connections the handler runs
		hs.Close()
	})
	u := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
	return u
}

// pipeListener is an in-memory net.Listener over net.Pipe.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial() (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// xnode is an element as the test client decodes it (encoding/xml, not
// the server's decoder).
type xnode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []xnode    `xml:",any"`
}

// attr returns an unqualified attribute and whether it is present.
func (n *xnode) attr(local string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value, true
		}
	}
	return "", false
}

func (n *xnode) get(local string) string { v, _ := n.attr(local); return v }

// child returns the first child with this local name (any namespace).
func (n *xnode) child(local string) *xnode {
	if n == nil {
		return nil
	}
	for i := range n.Nodes {
		if n.Nodes[i].XMLName.Local == local {
			return &n.Nodes[i]
		}
	}
	return nil
}

// path follows child names.
func (n *xnode) path(locals ...string) *xnode {
	for _, l := range locals {
		n = n.child(l)
	}
	return n
}

// errStreamEnd is what rawClient.next returns at the server's stream end.
var errStreamEnd = errors.New("stream end")

// recorder keeps every byte the client's decoder reads.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// rawClient is a hand-written XMPP client over a net.Conn (TCP stream or
// WebSocket framing), for exact checks of what the server sends.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	ws   bool
	rec  *recorder
	dec  *xml.Decoder
	full string
}

func newRawClient(t testing.TB, conn net.Conn, ws bool) *rawClient {
	t.Helper()
	c := &rawClient{t: t, conn: conn, ws: ws}
	c.reset()
	t.Cleanup(func() { _ = c.conn.Close() })
	return c
}

// dialRaw connects to a TCP or TLS listener.
func dialRaw(t testing.TB, addr string, direct bool) *rawClient {
	t.Helper()
	var (
		conn net.Conn
		err  error
	)
	if direct {
		_, ctls := testTLS(t)
		conn, err = tls.Dial("tcp", addr, ctls)
	} else {
		conn, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return newRawClient(t, conn, false)
}

// dialWS connects to the WebSocket endpoint with the xmpp subprotocol.
func dialWS(t testing.TB, url string) *rawClient {
	t.Helper()
	_, ctls := testTLS(t)
	d := websocket.Dialer{Subprotocols: []string{"xmpp"}, TLSClientConfig: ctls, HandshakeTimeout: testTimeout}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if ws.Subprotocol() != "xmpp" {
		t.Fatalf("subprotocol %q, want xmpp", ws.Subprotocol())
	}
	return newRawClient(t, &wsConn{ws: ws}, true)
}

// reset starts a new decoder (after a stream restart).
func (c *rawClient) reset() {
	c.rec = &recorder{r: c.conn}
	c.dec = xml.NewDecoder(c.rec)
}

func (c *rawClient) send(format string, args ...any) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := fmt.Fprintf(c.conn, format, args...); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next top-level element and its raw bytes.
func (c *rawClient) next() (*xnode, string, error) {
	return c.nextWithin(testTimeout)
}

func (c *rawClient) nextWithin(d time.Duration) (*xnode, string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		off := c.dec.InputOffset()
		tok, err := c.dec.Token()
		if err != nil {
			return nil, "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var n xnode
			if err := c.dec.DecodeElement(&n, &t); err != nil {
				return nil, "", err
			}
			return &n, strings.TrimSpace(string(c.rec.buf[off:c.dec.InputOffset()])), nil
		case xml.EndElement:
			return nil, "", errStreamEnd
		}
	}
}

// must returns the next element or fails the test.
func (c *rawClient) must() *xnode {
	c.t.Helper()
	n, _, err := c.next()
	if err != nil {
		c.t.Fatalf("reading: %v", err)
	}
	return n
}

// open sends a stream header to domain and returns the server's features.
func (c *rawClient) open(to string) *xnode {
	c.t.Helper()
	c.reset()
	if c.ws {
		c.send(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='%s' version='1.0'/>`, to)
	} else {
		c.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>`, to)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			c.t.Fatalf("reading stream header: %v", err)
		}
		if st, ok := tok.(xml.StartElement); ok {
			if c.ws && st.Name.Local != "open" || !c.ws && st.Name.Local != "stream" {
				c.t.Fatalf("stream header is <%s>", st.Name.Local)
			}
			if from := attrOf(st, "from"); from != to {
				c.t.Fatalf("stream from=%q, want %q", from, to)
			}
			if c.ws { // <open/> is a whole element
				if _, err := c.dec.Token(); err != nil {
					c.t.Fatalf("reading </open>: %v", err)
				}
			}
			break
		}
	}
	n := c.must()
	if n.XMLName.Local != "features" {
		c.t.Fatalf("got <%s>, want features", n.XMLName.Local)
	}
	return n
}

func attrOf(st xml.StartElement, local string) string {
	for _, a := range st.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// starttls negotiates STARTTLS and restarts the stream.
func (c *rawClient) starttls() *xnode {
	c.t.Helper()
	c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	if n := c.must(); n.XMLName.Local != "proceed" {
		c.t.Fatalf("got <%s>, want proceed", n.XMLName.Local)
	}
	_, ctls := testTLS(c.t)
	tc := tls.Client(c.conn, ctls)
	_ = tc.SetDeadline(time.Now().Add(testTimeout))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	c.conn = tc
	return c.open(testDomain)
}

// auth sends SASL PLAIN and returns the server's answer element.
func (c *rawClient) auth(authz, user, pass string) *xnode {
	c.t.Helper()
	payload := base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
	c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, payload)
	return c.must()
}

// bind binds resource (empty: the server picks) and returns the full JID.
func (c *rawClient) bind(resource string) string {
	c.t.Helper()
	if resource == "" {
		c.send(`<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`)
	} else {
		c.send(`<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>`, resource)
	}
	n := c.must()
	if n.get("type") != "result" || n.get("id") != "bind1" {
		c.t.Fatalf("bind answer type=%q id=%q", n.get("type"), n.get("id"))
	}
	c.full = strings.TrimSpace(n.path("bind", "jid").Text)
	return c.full
}

// login runs the whole handshake for user (password pw-<user>).
func (c *rawClient) login(user, resource string) string {
	c.t.Helper()
	f := c.open(testDomain)
	if f.child("starttls") != nil {
		c.starttls()
	}
	if n := c.auth("", user, "pw-"+user); n.XMLName.Local != "success" {
		c.t.Fatalf("auth: got <%s>", n.XMLName.Local)
	}
	c.open(testDomain)
	return c.bind(resource)
}

// presence sends available presence with a priority.
func (c *rawClient) presence(priority int) {
	c.t.Helper()
	c.send(`<presence xmlns='jabber:client'><priority>%d</priority></presence>`, priority)
}

// expectServicePresence reads the finesse user's presence.
func (c *rawClient) expectServicePresence(available bool) {
	c.t.Helper()
	n := c.must()
	typ, hasType := n.attr("type")
	if n.XMLName.Local != "presence" || n.get("from") != "finesse@"+testDomain+"/server" || n.get("to") != c.full ||
		available == hasType || !available && typ != "unavailable" {
		c.t.Fatalf("want service presence available=%v, got <%s from=%q to=%q type=%q>",
			available, n.XMLName.Local, n.get("from"), n.get("to"), typ)
	}
}

// ping sends an XEP-0199 ping to the domain and returns the next element,
// which must be its answer: anything queued before it arrives first.
func (c *rawClient) pingBarrier() {
	c.t.Helper()
	c.send(`<iq xmlns='jabber:client' type='get' id='barrier' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>`, testDomain)
	n, raw, err := c.next()
	if err != nil {
		c.t.Fatalf("waiting for ping answer: %v", err)
	}
	if n.XMLName.Local != "iq" || n.get("id") != "barrier" || n.get("type") != "result" {
		c.t.Fatalf("got %s before the ping answer", raw)
	}
}

// subscribeIQ sends a pubsub subscribe (or unsubscribe) and returns the
// answer.
func (c *rawClient) pubsubIQ(typ, id, payload string) *xnode {
	c.t.Helper()
	c.send(`<iq xmlns='jabber:client' type='%s' id='%s' to='%s'><pubsub xmlns='http://jabber.org/protocol/pubsub'>%s</pubsub></iq>`,
		typ, id, testPubSub, payload)
	n := c.must()
	if n.XMLName.Local != "iq" || n.get("id") != id {
		c.t.Fatalf("want iq %s answer, got <%s id=%q>", id, n.XMLName.Local, n.get("id"))
	}
	return n
}

// stanzaError returns the condition of an error IQ, or "".
func stanzaError(n *xnode) string {
	if n.get("type") != "error" {
		return ""
	}
	e := n.child("error")
	if e == nil {
		return "?"
	}
	var conds []string
	for _, c := range e.Nodes {
		if c.XMLName.Local != "text" {
			conds = append(conds, c.XMLName.Local)
		}
	}
	return strings.Join(conds, "+")
}

// expectStreamError reads a stream error with cond, then the stream end
// and the close.
func (c *rawClient) expectStreamError(cond string) {
	c.t.Helper()
	n, raw, err := c.next()
	if err != nil {
		c.t.Fatalf("want stream error %s, got %v", cond, err)
	}
	if n.XMLName.Local != "error" || n.XMLName.Space != nsStream || n.child(cond) == nil {
		c.t.Fatalf("want stream error %s, got %s", cond, raw)
	}
	c.expectEnd()
}

// expectEnd reads the server's stream end and then the closed connection.
func (c *rawClient) expectEnd() {
	c.t.Helper()
	n, raw, err := c.next()
	switch {
	case c.ws && err == nil && n.XMLName.Local == "close" && n.XMLName.Space == nsFraming:
	case !c.ws && errors.Is(err, errStreamEnd):
	default:
		c.t.Fatalf("want stream end, got %s %v", raw, err)
	}
	c.expectClosed()
}

// expectClosed reads until the connection fails (not a timeout).
func (c *rawClient) expectClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, 512)
	for {
		_, err := c.conn.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection still open: %v", err)
		}
		return
	}
}

// updateDoc is a complete <Update> like F.1's.
func updateDoc(user, state string) []byte {
	return []byte(`<Update><data><user><loginId>` + user + `</loginId><firstName>Ana &amp; Bo</firstName><state>` + state +
		`</state><uri>/finesse/api/User/` + user + `</uri></user></data><event>PUT</event><requestId>r-1</requestId><source>/finesse/api/User/` +
		user + `</source></Update>`)
}

// presenceLog records OnPresence calls.
type presenceLog struct {
	ch chan string
}

func newPresenceLog() *presenceLog { return &presenceLog{ch: make(chan string, 64)} }

func (p *presenceLog) record(user string, available bool) {
	p.ch <- fmt.Sprintf("%s=%v", user, available)
}

// expect waits for the next call.
func (p *presenceLog) expect(t testing.TB, want string) {
	t.Helper()
	select {
	case got := <-p.ch:
		if got != want {
			t.Fatalf("OnPresence %s, want %s", got, want)
		}
	case <-time.After(testTimeout):
		t.Fatalf("no OnPresence call, want %s", want)
	}
}

// none checks that no call is pending.
func (p *presenceLog) none(t testing.TB) {
	t.Helper()
	select {
	case got := <-p.ch:
		t.Fatalf("unexpected OnPresence %s", got)
	default:
	}
}

// eventually polls cond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
