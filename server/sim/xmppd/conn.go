package xmppd

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
	mellws "mellium.im/xmpp/websocket"
)

// closeTimeout bounds the final write (stream error and stream end) of a
// connection that is being closed.
const closeTimeout = time.Second

// maxBatch is how many bytes of queued stanzas the writer of a TCP or TLS
// stream combines into one write.
const maxBatch = 32 << 10

// conn is one client connection. Its run method (on the goroutine that
// Serve or the WebSocket handler starts) negotiates the stream and then
// reads and handles stanzas; a writer goroutine that run starts and waits
// for sends everything the server writes after the handshake.
type conn struct {
	s    *Server
	mode ListenMode
	log  *zap.Logger

	transport net.Conn // what was accepted (TCP, *tls.Conn, or *wsConn)
	raw       net.Conn // the connection under any TLS or WebSocket, for abrupt closes
	lim       *limitConn
	ws        bool
	xmlns     string // " xmlns='jabber:client'" where stanzas need it, else ""

	// Set on the run goroutine during the handshake; read-only after bind.
	sess             *xmpp.Session
	top              net.Conn // the session's connection after the handshake
	user             string   // JID localpart
	jid              jid.JID
	full             string // full JID
	bareAttr         []byte // bare JID escaped for attributes
	fullAttr         []byte // full JID escaped for attributes
	pubsubAttr       []byte // the pubsub domain escaped for attributes
	rng              *rand.PCG
	out              chan outItem
	quit, writerDone chan struct{}

	mu      sync.Mutex // guards the fields below
	stopped bool
	abrupt  bool
	trailer *streamError // stream error to send before the stream end
	ready   bool         // the handshake is over: the writer owns the output

	// Guarded by Server.mu.
	bound    bool
	online   bool
	priority int
}

// outItem is one queued outbound stanza: a publication addressed to the
// session's bare or full JID, or a complete stanza.
type outItem struct {
	pub  *publication
	full bool
	raw  []byte
}

// newConn wraps an accepted transport.
func (s *Server) newConn(transport net.Conn, mode ListenMode) *conn {
	c := &conn{
		s:          s,
		mode:       mode,
		transport:  transport,
		raw:        transport,
		log:        s.log.With(zap.Stringer("mode", mode), zap.Stringer("remote", transport.RemoteAddr())),
		out:        make(chan outItem, s.cfg.QueueSize),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	switch t := transport.(type) {
	case *wsConn:
		c.raw = t.netConn()
	case *tls.Conn:
		c.raw = t.NetConn()
	}
	c.ws = mode == modeWebSocket
	if mode != ModeSTARTTLS && mode != ModeTLS {
		// RFC 7395 and XEP-0206 want jabber:client on every stanza; on a
		// TCP stream it is the stream's default namespace.
		c.xmlns = " xmlns='" + nsClient + "'"
	}
	return c
}

// run serves the connection until it ends, then unregisters it.
func (c *conn) run(ctx context.Context) {
	defer c.s.forget(c)
	defer func() { _ = c.raw.Close() }()
	if err := c.handshake(ctx); err != nil {
		c.log.Debug("handshake failed", zap.String("user", c.user), zap.Error(err))
		return
	}
	c.log = c.log.With(zap.String("jid", c.full))
	go c.writeLoop()
	if !c.s.bind(c) {
		c.stop(&streamSystemShutdown, false)
		<-c.writerDone
		return
	}
	c.log.Debug("session bound")
	err := c.readLoop()
	if c.lim.err != nil { // the transport's reason beats the decoder's
		err = c.lim.err
	}
	c.log.Debug("session ended", zap.Error(err))
	c.stop(trailerFor(err), false)
	<-c.writerDone
}

// stop ends the connection once: the writer sends e (if any) and the
// stream end, then closes. abrupt closes the transport at once, without
// either. During the handshake, whose writes mellium owns, a graceful stop
// fails the handshake (the connection then closes without a stream error).
func (c *conn) stop(e *streamError, abrupt bool) {
	c.mu.Lock()
	if c.stopped {
		escalate := abrupt && !c.abrupt
		c.abrupt = c.abrupt || abrupt
		c.mu.Unlock()
		if escalate {
			_ = c.raw.Close()
		}
		return
	}
	c.stopped, c.abrupt, c.trailer = true, abrupt, e
	ready := c.ready
	c.mu.Unlock()
	close(c.quit)
	switch {
	case abrupt:
		_ = c.raw.Close()
	case !ready:
		// Interrupt the handshake's reads. If it has just finished (the
		// bind result is out), the writer still sends e and the end.
		_ = c.raw.SetReadDeadline(time.Unix(1, 0))
		_ = c.raw.SetWriteDeadline(time.Now().Add(closeTimeout))
	}
}

// enqueue adds it to the outbound queue without blocking; false means the
// queue is full. Items for a stopped connection are discarded.
func (c *conn) enqueue(it outItem) bool {
	select {
	case <-c.quit:
		return true
	default:
	}
	select {
	case c.out <- it:
		return true
	default:
		return false
	}
}

// handshake runs TLS (ModeTLS), then mellium's stream negotiation:
// STARTTLS (ModeSTARTTLS), SASL PLAIN and resource binding.
func (c *conn) handshake(ctx context.Context) error {
	// The owner ends a handshake early with stop (a graceful stop just as
	// the handshake succeeds must still reach the client), so hctx only
	// carries the time limit.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.s.cfg.HandshakeTimeout)
	defer cancel()
	// mellium honours hctx by setting a past deadline and resetting it
	// at once, which a blocked read can miss; closing the connection
	// cannot be missed.
	watchdog := context.AfterFunc(hctx, func() { _ = c.raw.Close() })
	cfg := &c.s.cfg
	state := xmpp.Secure
	var rw net.Conn
	switch tc, isTLS := c.transport.(*tls.Conn); {
	case c.mode == ModeTLS && isTLS: // from a tls.Listener
		if err := tc.HandshakeContext(hctx); err != nil {
			return err
		}
		c.lim = &limitConn{Conn: tc, max: cfg.MaxStanzaSize}
		rw = c.lim
	case c.mode == ModeTLS:
		c.lim = &limitConn{Conn: c.transport, max: cfg.MaxStanzaSize}
		tc := tls.Server(c.lim, cfg.TLSConfig)
		if err := tc.HandshakeContext(hctx); err != nil {
			return err
		}
		rw = tc
	case c.mode == ModeSTARTTLS:
		state = 0
		fallthrough
	default:
		c.lim = &limitConn{Conn: c.transport, max: cfg.MaxStanzaSize}
		rw = c.lim
	}

	features := []xmpp.StreamFeature{
		xmpp.SASLServer(func(n *sasl.Negotiator) bool { return c.authenticate(hctx, n) }, sasl.Plain),
		xmpp.BindCustom(c.bindJID),
		sessionFeature,
	}
	if c.mode == ModeSTARTTLS {
		features = append([]xmpp.StreamFeature{xmpp.StartTLS(cfg.TLSConfig)}, features...)
	}
	streamConfig := func(sess *xmpp.Session, _ *xmpp.StreamConfig) xmpp.StreamConfig {
		if sess != nil {
			if to := sess.LocalAddr(); !to.Equal(jid.JID{}) && !to.Equal(c.s.addr.domain) {
				return xmpp.StreamConfig{Features: []xmpp.StreamFeature{hostUnknownFeature(c.ws)}}
			}
		}
		return xmpp.StreamConfig{Features: features}
	}
	negotiate := xmpp.NewNegotiator(streamConfig)
	if c.ws {
		negotiate = mellws.Negotiator(streamConfig)
	}
	sess, err := xmpp.ReceiveSession(hctx, rw, state, negotiate)
	if err != nil {
		c.failHandshake(sess, rw, err)
		return err
	}
	if !watchdog() {
		return hctx.Err()
	}
	// mellium's deadline watcher may still fire when hctx is cancelled on
	// return; from now on the session sets its own deadlines.
	c.lim.freeze()
	c.sess, c.top = sess, sess.Conn()
	if c.full == "" {
		c.failHandshake(sess, rw, streamNotAuthorized)
		return errNotBound
	}
	c.bareAttr = appendAttr(nil, c.jid.Bare().String())
	c.fullAttr = appendAttr(nil, c.full)
	c.pubsubAttr = appendAttr(nil, c.s.addr.pubsub.String())
	c.rng = rand.NewPCG(rand.Uint64(), rand.Uint64()) // #nosec G404 -- simulated stanza ids, not security
	c.lim.idle = cfg.PingTimeout
	c.mu.Lock()
	c.ready = true
	c.mu.Unlock()
	return nil
}

// authenticate is the SASL PLAIN permission check. The authorization
// identity may be empty, the username, or the user's bare JID (Strophe
// sends the bare JID).
func (c *conn) authenticate(ctx context.Context, n *sasl.Negotiator) bool {
	user, pass, ident := n.Credentials()
	username := string(user)
	j, err := jid.New(username, c.s.addr.domain.Domainpart(), "")
	if err != nil || c.s.cfg.Authenticate == nil {
		c.log.Debug("authentication refused", zap.String("user", username))
		return false
	}
	if id := string(ident); id != "" && id != username {
		authz, err := jid.Parse(id)
		if err != nil || !authz.Equal(j) {
			c.log.Debug("authentication refused: authorization identity differs", zap.String("user", username))
			return false
		}
	}
	if err := c.s.cfg.Authenticate(ctx, username, string(pass)); err != nil {
		// The callback's error is not logged: it might quote the secret.
		c.log.Debug("authentication refused", zap.String("user", username))
		return false
	}
	c.user = j.Localpart()
	return true
}

// bindJID is the server side of resource binding: the client's resource
// if it asked for a valid one, else a random one.
func (c *conn) bindJID(_ jid.JID, resource string) (jid.JID, error) {
	if c.user == "" {
		return jid.JID{}, stanza.Error{Type: stanza.Auth, Condition: stanza.NotAuthorized}
	}
	j, err := jid.New(c.user, c.s.addr.domain.Domainpart(), resource)
	if resource == "" || err != nil {
		// RFC 6120 7.7.2.2 lets the server pick the resource. An invalid
		// one is replaced rather than refused: mellium v0.22.0 sends a
		// bind error as a result IQ with the error inside <bind/>.
		j, err = jid.New(c.user, c.s.addr.domain.Domainpart(), crand.Text())
		if err != nil {
			return jid.JID{}, stanza.Error{Type: stanza.Cancel, Condition: stanza.InternalServerError}
		}
	}
	c.jid, c.full = j, j.String()
	return j, nil
}

// failHandshake ends a stream whose negotiation failed: after a SASL
// failure (already sent) with the stream end; after a stream-level error
// with that error; after transport errors with nothing.
func (c *conn) failHandshake(sess *xmpp.Session, rw net.Conn, err error) {
	var (
		mine   streamError
		theirs stream.Error
		syntax *xml.SyntaxError
		e      *streamError
	)
	if c.lim.err != nil { // the transport failed, or the size limit
		err = c.lim.err
	}
	switch {
	case errors.Is(err, sasl.ErrAuthn):
	case errors.As(err, &mine):
		e = &mine
	case errors.Is(err, errStanzaTooLarge):
		e = &streamPolicyViolation
	case errors.As(err, &syntax):
		e = &streamNotWellFormed
	case errors.As(err, &theirs):
		if theirs.Err == "" {
			return // the client's own stream error, or a transport error
		}
		e = &streamError{cond: theirs.Err}
	default:
		return
	}
	w := rw
	if sess != nil {
		w = sess.Conn()
	}
	_ = w.SetWriteDeadline(time.Now().Add(closeTimeout))
	c.writeEnd(w, e)
}

// writeEnd writes the optional stream error and the stream end, one
// WebSocket message each.
func (c *conn) writeEnd(w io.Writer, e *streamError) {
	if e != nil {
		b := appendStreamError(nil, *e, c.ws)
		if !c.ws {
			b = append(b, closeTag(false)...)
			_, _ = w.Write(b)
			return
		}
		if _, err := w.Write(b); err != nil {
			return
		}
	}
	_, _ = w.Write(closeTag(c.ws))
}

// trailerFor maps the error that ended the read loop (or the handshake's
// read error) to the stream error the server sends before its stream end,
// if any.
func trailerFor(err error) *streamError {
	var (
		se     streamError
		syntax *xml.SyntaxError
	)
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return nil // the client closed its stream
	case errors.As(err, &se):
		return &se
	case errors.Is(err, errStanzaTooLarge), errors.Is(err, errTooDeep):
		return &streamPolicyViolation
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &streamTimeout
	case errors.As(err, &syntax):
		return &streamNotWellFormed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &streamTimeout
	}
	// The transport ended or failed (EOF, reset, closed, a WebSocket close
	// frame), or mellium's stream-level checks failed: end the stream
	// without an error.
	return nil
}

// writeLoop sends queued stanzas until the connection stops, then the
// trailer and stream end (unless abrupt), and closes the connection.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	var buf []byte
	for {
		select { // stopping wins over queued stanzas
		case <-c.quit:
			c.finish()
			return
		default:
		}
		select {
		case <-c.quit:
			c.finish()
			return
		case it := <-c.out:
			buf = c.appendItem(buf[:0], it)
			if !c.ws && c.mode != ModeSecure {
			batch:
				for len(buf) < maxBatch {
					select {
					case it := <-c.out:
						buf = c.appendItem(buf, it)
					default:
						break batch
					}
				}
			}
			_ = c.top.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
			if _, err := c.top.Write(buf); err != nil {
				c.log.Debug("write failed", zap.Error(err))
				c.stop(nil, true)
				c.finish()
				return
			}
			if cap(buf) > 4*maxBatch {
				buf = nil
			}
		}
	}
}

// finish writes the trailer and stream end (unless abrupt) and closes.
func (c *conn) finish() {
	c.mu.Lock()
	abrupt, e := c.abrupt, c.trailer
	c.mu.Unlock()
	if abrupt {
		_ = c.raw.Close()
		return
	}
	_ = c.top.SetWriteDeadline(time.Now().Add(closeTimeout))
	c.writeEnd(c.top, e)
	_ = c.top.Close()
}

// servicePresence is the finesse user's presence addressed to c.
func (c *conn) servicePresence(available bool) []byte {
	b := make([]byte, 0, 160)
	b = append(b, "<presence"...)
	b = append(b, c.xmlns...)
	b = append(b, " from='"...)
	b = appendAttr(b, c.s.addr.service.String())
	b = append(b, "' to='"...)
	b = append(b, c.fullAttr...)
	if !available {
		b = append(b, "' type='unavailable"...)
	}
	return append(b, "'/>"...)
}

// sessionFeature advertises the RFC 3921 session feature as optional, for
// old clients; the session IQ itself is answered after binding.
var sessionFeature = xmpp.StreamFeature{
	Name:       xml.Name{Space: nsSession, Local: "session"},
	Necessary:  xmpp.Authn,
	Prohibited: xmpp.Ready,
	List: func(_ context.Context, e xmlstream.TokenWriter, start xml.StartElement) (bool, error) {
		opt := xml.StartElement{Name: xml.Name{Local: "optional"}}
		for _, t := range []xml.Token{start, opt, opt.End(), start.End()} {
			if err := e.EncodeToken(t); err != nil {
				return false, err
			}
		}
		return false, nil
	},
	Parse: func(_ context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
		return false, nil, d.Skip()
	},
}

// hostUnknownFeature is the only feature offered to a stream addressed to
// another domain. Listing it ends the (empty) features element, which
// mellium has already started, and fails the negotiation with
// host-unknown, which failHandshake then sends.
func hostUnknownFeature(ws bool) xmpp.StreamFeature {
	features := xml.Name{Local: "stream:features"}
	if ws {
		features = xml.Name{Space: nsStream, Local: "features"}
	}
	return xmpp.StreamFeature{
		Name: xml.Name{Space: "urn:xmppd:host-unknown", Local: "host-unknown"},
		List: func(_ context.Context, e xmlstream.TokenWriter, _ xml.StartElement) (bool, error) {
			if err := e.EncodeToken(xml.EndElement{Name: features}); err != nil {
				return false, err
			}
			return false, streamHostUnknown
		},
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return false, nil, d.Skip()
		},
	}
}
