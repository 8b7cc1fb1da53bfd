package xmpp

// A scripted fake Notification Service for unit tests: mellium's server
// side (ReceiveSession with STARTTLS, SASL PLAIN and bind) behind a
// loopback TCP listener, a direct TLS listener or an httptest WebSocket
// server. After negotiation it answers pings and pubsub IQs the way
// Openfire/Prosody do, records what the client sent, and lets a test
// write any stanza or raw bytes to the client.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	mxmpp "mellium.im/xmpp"
	"mellium.im/xmpp/stanza"
	mws "mellium.im/xmpp/websocket"
)

const fakeDomain = "finesse.test"

var (
	certOnce sync.Once
	certPair tls.Certificate
	certPool *x509.CertPool
)

// testCert returns a self-signed certificate for fakeDomain, localhost and
// 127.0.0.1, and a pool trusting it.
func testCert(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: fakeDomain},
			DNSNames:              []string{fakeDomain, "pubsub." + fakeDomain, "localhost"},
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		certPair = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		certPool = x509.NewCertPool()
		certPool.AddCert(leaf)
	})
	return certPair, certPool
}

// fakeOpts changes how the fake server behaves.
type fakeOpts struct {
	users        map[string]string // loginId -> password; default 1001:secret
	bindConflict bool              // answer bind with a conflict error
	silentPings  bool              // never answer the client's pings
	silentAll    bool              // answer nothing after negotiation
	subsErr      *stanza.Error     // answer subscribe with this error
	extraSubs    []Subscription    // listed by "retrieve subscriptions" besides those made
	// beforeSubAnswer is sent before the answer to a subscribe (with %s
	// replaced by the node), as ejabberd sends a node's last item.
	beforeSubAnswer string
	// afterPresence is sent on the client's available presence, as
	// ejabberd re-sends the last item of every subscribed node.
	afterPresence string
}

type fakeServer struct {
	t         *testing.T
	transport Transport
	addr      string
	opts      fakeOpts
	srvTLS    *tls.Config
	ln        net.Listener
	http      *httptest.Server
	wg        sync.WaitGroup
	sessions  chan *fakeSession
	closed    atomic.Bool
	connsMu   sync.Mutex
	conns     []io.Closer
	wsFrames  chan string   // every WebSocket message the client sent
	stop      chan struct{} // closed by close: unblocks frozen handlers
	negotiate chan error    // outcome of each server-side negotiation
}

// newFake starts a fake server for transport ("tcp", "tls", "ws", "wss").
func newFake(t *testing.T, transport string, opts fakeOpts) *fakeServer {
	t.Helper()
	if opts.users == nil {
		opts.users = map[string]string{"1001": "secret"}
	}
	cert, _ := testCert(t)
	f := &fakeServer{
		t:         t,
		opts:      opts,
		srvTLS:    &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		sessions:  make(chan *fakeSession, 16),
		wsFrames:  make(chan string, 1024),
		negotiate: make(chan error, 16),
		stop:      make(chan struct{}),
	}
	switch transport {
	case "tcp", "tls":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if transport == "tls" {
			ln = tls.NewListener(ln, f.srvTLS)
			f.transport = TransportTLS
		} else {
			f.transport = TransportTCP
		}
		f.ln, f.addr = ln, ln.Addr().String()
		f.wg.Add(1)
		go f.accept()
	case "ws", "wss":
		f.transport = TransportWebSocket
		up := websocket.Upgrader{Subprotocols: []string{wsProtocol}, CheckOrigin: func(*http.Request) bool { return true }}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/ws" && r.URL.Path != "/ws/" {
				http.NotFound(w, r)
				return
			}
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			wc := &wsConn{c: c, ls: &linkState{}, wsc: xmlScanner{maxSize: 1 << 30, maxDepth: 1 << 20}}
			f.track(wc)
			f.wg.Add(1)
			f.serve(&recordingConn{wsConn: wc, frames: f.wsFrames}, mxmpp.Secure, true)
		})
		if transport == "wss" {
			f.http = httptest.NewUnstartedServer(h)
			f.http.TLS = f.srvTLS
			f.http.StartTLS()
			f.addr = "wss" + strings.TrimPrefix(f.http.URL, "https") + "/ws"
		} else {
			f.http = httptest.NewServer(h)
			f.addr = "ws" + strings.TrimPrefix(f.http.URL, "http") + "/ws"
		}
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	t.Cleanup(f.close)
	return f
}

// recordingConn copies every WebSocket message the client sends to frames
// (the server side reads whole messages through wsConn).
type recordingConn struct {
	*wsConn
	frames chan string
}

func (r *recordingConn) Read(p []byte) (int, error) {
	if r.r == nil {
		typ, rd, err := r.c.NextReader()
		if err != nil {
			return 0, r.readErr(err)
		}
		if typ != websocket.TextMessage {
			return 0, errors.New("binary message")
		}
		msg, err := io.ReadAll(rd)
		if err != nil {
			return 0, err
		}
		select {
		case r.frames <- string(msg):
		default:
		}
		r.r = bytes.NewReader(msg)
	}
	n, err := r.r.Read(p)
	if err == io.EOF {
		r.r = nil
		err = nil
	}
	return n, err
}

func (f *fakeServer) track(c io.Closer) {
	f.connsMu.Lock()
	defer f.connsMu.Unlock()
	f.conns = append(f.conns, c)
}

func (f *fakeServer) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.track(c)
		var state mxmpp.SessionState
		if f.transport == TransportTLS {
			state = mxmpp.Secure
		}
		f.wg.Add(1)
		go f.serve(c, state, false)
	}
}

func (f *fakeServer) close() {
	if f.closed.Swap(true) {
		return
	}
	close(f.stop)
	if f.ln != nil {
		_ = f.ln.Close()
	}
	f.connsMu.Lock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.connsMu.Unlock()
	if f.http != nil {
		f.http.CloseClientConnections()
		f.http.Close()
	}
	f.wg.Wait()
}

// config returns a client Config for this server and login 1001.
func (f *fakeServer) config() Config {
	_, pool := testCert(f.t)
	return Config{
		Transport:     f.transport,
		Address:       f.addr,
		Domain:        fakeDomain,
		TLSConfig:     &tls.Config{RootCAs: pool, ServerName: fakeDomain},
		Username:      "1001",
		Password:      "secret",
		Resource:      "relay-1",
		AllowInsecure: true,
		CloseTimeout:  time.Second,
	}
}

// next returns the next negotiated server-side session.
func (f *fakeServer) next() *fakeSession {
	f.t.Helper()
	select {
	case s := <-f.sessions:
		return s
	case err := <-f.negotiate:
		f.t.Fatalf("server negotiation failed: %v", err)
	case <-time.After(5 * time.Second):
		f.t.Fatal("no session within 5 s")
	}
	return nil
}

// fakeSession is the server side of one client session.
type fakeSession struct {
	f        *fakeServer
	s        *mxmpp.Session
	user     string
	resource string
	recv     chan string // every stanza the client sent, serialised
	done     chan error  // Serve's result

	mu   sync.Mutex
	subs map[string]Subscription // node|jid -> subscription
}

func (f *fakeServer) serve(conn net.Conn, state mxmpp.SessionState, ws bool) {
	defer f.wg.Done()
	fs := &fakeSession{f: f, recv: make(chan string, 1024), done: make(chan error, 1), subs: map[string]Subscription{}}
	for _, x := range f.opts.extraSubs {
		fs.subs[x.Node+"|"+x.JID] = x
	}
	features := []mxmpp.StreamFeature{
		mxmpp.SASLServer(func(n *sasl.Negotiator) bool {
			user, pass, _ := n.Credentials()
			want, ok := f.opts.users[string(user)]
			if ok && want == string(pass) {
				fs.user = string(user)
				return true
			}
			return false
		}, sasl.Plain),
		fakeBind(fs),
	}
	if state&mxmpp.Secure == 0 {
		features = append([]mxmpp.StreamFeature{mxmpp.StartTLS(f.srvTLS)}, features...)
	}
	cfgFn := func(*mxmpp.Session, *mxmpp.StreamConfig) mxmpp.StreamConfig {
		return mxmpp.StreamConfig{Features: features}
	}
	neg := mxmpp.NewNegotiator(cfgFn)
	if ws {
		neg = mws.Negotiator(cfgFn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s, err := mxmpp.ReceiveSession(ctx, conn, state, neg)
	cancel()
	if err != nil {
		f.negotiate <- err
		_ = conn.Close()
		return
	}
	fs.s = s
	f.sessions <- fs
	fs.done <- s.Serve(mxmpp.HandlerFunc(fs.handle))
	_ = conn.Close()
}

// handle records the stanza and answers pings and pubsub IQs.
func (fs *fakeSession) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(enc, xmlstream.MultiReader(xmlstream.Token(*start), t)); err != nil {
		return err
	}
	if err := enc.Flush(); err != nil {
		return err
	}
	raw := buf.String()
	select {
	case fs.recv <- raw:
	default:
	}
	if start.Name.Local == "presence" && attrValue(*start, "type") == "" && fs.f.opts.afterPresence != "" {
		return rawTokens(t, fs.f.opts.afterPresence)
	}
	if start.Name.Local != "iq" {
		return nil
	}
	if fs.f.opts.silentAll && !strings.HasPrefix(attrValue(*start, "id"), "replay-barrier-") {
		<-fs.f.stop // frozen: read nothing more, answer nothing
		return nil
	}
	id, from := attrValue(*start, "id"), attrValue(*start, "from")
	var q struct {
		Type string    `xml:"type,attr"`
		Ping *struct{} `xml:"urn:xmpp:ping ping"`
		Sub  *struct {
			Sub   *subscriptionXML `xml:"subscribe"`
			Unsub *subscriptionXML `xml:"unsubscribe"`
			List  *struct{}        `xml:"subscriptions"`
		} `xml:"http://jabber.org/protocol/pubsub pubsub"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &q); err != nil {
		return err
	}
	result := func(payload string) error {
		attrs := fmt.Sprintf(`type='result' id='%s'`, id)
		if from != "" {
			attrs += fmt.Sprintf(` to='%s'`, from)
		}
		return rawTokens(t, fmt.Sprintf(`<iq xmlns='jabber:client' %s>%s</iq>`, attrs, payload))
	}
	switch {
	case q.Ping != nil:
		if fs.f.opts.silentPings {
			<-fs.f.stop // frozen (mellium would answer an unanswered IQ)
			return nil
		}
		return result("")
	case q.Sub != nil && q.Sub.Sub != nil:
		if e := fs.f.opts.subsErr; e != nil {
			return rawTokens(t, fmt.Sprintf(`<iq xmlns='jabber:client' type='error' id='%s'><error type='%s'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, id, e.Type, e.Condition))
		}
		s := Subscription{Node: q.Sub.Sub.Node, JID: q.Sub.Sub.JID, SubID: "sid-" + q.Sub.Sub.Node, State: "subscribed"}
		if m := fs.f.opts.beforeSubAnswer; m != "" {
			if err := rawTokens(t, strings.ReplaceAll(m, "%s", s.Node)); err != nil {
				return err
			}
		}
		fs.mu.Lock()
		fs.subs[s.Node+"|"+s.JID] = s
		fs.mu.Unlock()
		return result(fmt.Sprintf(`<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscription node='%s' jid='%s' subid='%s' subscription='subscribed'/></pubsub>`, s.Node, s.JID, s.SubID))
	case q.Sub != nil && q.Sub.Unsub != nil:
		key := q.Sub.Unsub.Node + "|" + q.Sub.Unsub.JID
		fs.mu.Lock()
		_, ok := fs.subs[key]
		delete(fs.subs, key)
		fs.mu.Unlock()
		if !ok {
			return rawTokens(t, fmt.Sprintf(`<iq xmlns='jabber:client' type='error' id='%s'><error type='cancel'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><not-subscribed xmlns='http://jabber.org/protocol/pubsub#errors'/></error></iq>`, id))
		}
		return result("")
	case q.Sub != nil && q.Sub.List != nil:
		var b strings.Builder
		fs.mu.Lock()
		var list []Subscription
		for _, s := range fs.subs {
			list = append(list, s)
		}
		fs.mu.Unlock()
		for _, s := range list {
			fmt.Fprintf(&b, `<subscription node='%s' jid='%s' subid='%s' subscription='%s'/>`, s.Node, s.JID, s.SubID, s.State)
		}
		return result(`<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions>` + b.String() + `</subscriptions></pubsub>`)
	}
	return nil
}

// rawTokens writes an XML fragment through a token writer.
func rawTokens(w xmlstream.TokenWriter, s string) error {
	_, err := xmlstream.Copy(w, xml.NewDecoder(strings.NewReader(s)))
	return err
}

// sendRaw writes raw bytes to the client, between stanzas the session
// writes. Errors are returned, not fatal: the client may have gone.
func (fs *fakeSession) sendRaw(s string) error {
	w := fs.s.TokenWriter()
	defer w.Close()
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(fs.s.Conn(), s)
	return err
}

// mustSend writes raw bytes and fails the test on error.
func (fs *fakeSession) mustSend(s string) {
	fs.f.t.Helper()
	if err := fs.sendRaw(s); err != nil {
		fs.f.t.Fatalf("send to client: %v", err)
	}
}

// expect waits for a stanza from the client containing all of parts.
func (fs *fakeSession) expect(parts ...string) string {
	fs.f.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case raw := <-fs.recv:
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(raw, p)
			}
			if ok {
				return raw
			}
		case <-timeout:
			fs.f.t.Fatalf("client sent no stanza containing %q within 5 s", parts)
			return ""
		}
	}
}

// received returns the stanzas received so far, in order, without waiting.
func (fs *fakeSession) received() []string {
	var out []string
	for {
		select {
		case raw := <-fs.recv:
			out = append(out, raw)
		default:
			return out
		}
	}
}

// fakeBind is the server side of resource binding. (mellium v0.22.0's
// server side answers a refused bind with type='result'.)
func fakeBind(fs *fakeSession) mxmpp.StreamFeature {
	return mxmpp.StreamFeature{
		Name:       xml.Name{Space: nsBind, Local: "bind"},
		Necessary:  mxmpp.Authn,
		Prohibited: mxmpp.Ready,
		List: func(ctx context.Context, e xmlstream.TokenWriter, start xml.StartElement) (bool, error) {
			if err := e.EncodeToken(start); err != nil {
				return true, err
			}
			return true, e.EncodeToken(start.End())
		},
		Parse: func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, s *mxmpp.Session, data any) (mxmpp.SessionState, io.ReadWriter, error) {
			r := s.TokenReader()
			d := xml.NewTokenDecoder(r)
			var req struct {
				ID       string `xml:"id,attr"`
				Resource string `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>resource"`
			}
			start, err := nextStart(d)
			if err == nil {
				err = d.DecodeElement(&req, &start)
			}
			r.Close()
			if err != nil {
				return 0, nil, err
			}
			fs.resource = req.Resource
			var answer string
			if fs.f.opts.bindConflict {
				answer = fmt.Sprintf(`<iq xmlns='jabber:client' type='error' id='%s'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, req.ID)
			} else {
				answer = fmt.Sprintf(`<iq xmlns='jabber:client' type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>%s@%s/%s</jid></bind></iq>`, req.ID, fs.user, fakeDomain, req.Resource)
			}
			w := s.TokenWriter()
			defer w.Close()
			if err := rawTokens(w, answer); err != nil {
				return 0, nil, err
			}
			if err := w.Flush(); err != nil {
				return 0, nil, err
			}
			if fs.f.opts.bindConflict {
				return 0, nil, errors.New("bind refused")
			}
			return mxmpp.Ready, nil, nil
		},
	}
}
