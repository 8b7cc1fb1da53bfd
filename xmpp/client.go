package xmpp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"mellium.im/xmlstream"
	mxmpp "mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
	"mellium.im/xmpp/websocket"
)

// Client is one Notification Service session: connected, authenticated,
// bound to a named resource and available (presence priority 0). Create it
// with Dial, serve it with Run, end it with Close. It never reconnects.
type Client struct {
	cfg     Config
	log     *zap.Logger
	sess    *mxmpp.Session
	ls      *linkState
	jid     jid.JID // our full JID, as bound
	domain  jid.JID
	pubsub  jid.JID
	service jid.JID // bare JID of the Finesse service user

	closeReq  chan struct{} // closed by the first Close
	closeOnce sync.Once
	done      chan struct{} // closed when the session is over and torn down
	served    chan struct{} // closed when Serve returned (Run)
	tornDown  chan struct{} // closed when the graceful close requested by Close or ctx is over
	endOnce   sync.Once     // the first of Close, ctx and the pinger decides how the session ends
	endReq    *SessionError // set by endOnce: nil while the stream ends on its own
	// heardAt is when the last stanza was read (Unix ns); the pinger pings
	// only after a PingInterval without one.
	heardAt atomic.Int64
	// life ends, with the *SessionError as cause, when the session is over:
	// IQ calls waiting for an answer then return at once.
	life    context.Context
	endLife context.CancelCauseFunc

	mu       sync.Mutex
	state    clientState
	subs     map[string]string // node -> subid of subscriptions this Client made
	replay   replayTracker     // recognises replayed pubsub items
	closeErr error             // result of the graceful close, returned by Close

	updates   atomic.Uint64
	malformed atomic.Uint64
	ignored   atomic.Uint64
	pings     atomic.Uint64
	pingRTT   atomic.Int64

	// Used only by the goroutine that runs Serve.
	svcRes   map[string]struct{}
	svcKnown bool
	svcAvail bool
}

type clientState uint8

const (
	stateNew clientState = iota
	stateRunning
	stateDone
)

// Stats counts what the Client received.
type Stats struct {
	Updates   uint64 // Updates decoded and handed to OnUpdate
	Malformed uint64 // pubsub notifications that could not be decoded (logged, skipped)
	Ignored   uint64 // event messages from a sender other than the pubsub service
	Pings     uint64 // pings of ours the server answered
	// LastPingRTT is the round trip of the last answered ping.
	LastPingRTT time.Duration
}

// Dial connects to the Notification Service, secures the link (STARTTLS,
// direct TLS, wss or https), authenticates with SASL PLAIN, binds
// cfg.Resource and sends the initial presence with priority 0. ctx (and
// cfg.DialTimeout) bound only the dial; once Dial returns, ctx has no
// effect on the session.
//
// Configuration errors wrap ErrConfig or ErrInsecure. Other failures are a
// *SessionError: ReasonAuth when SASL refused the credentials (do not retry
// them), ReasonConflict when the resource could not be bound because it is
// in use, ReasonContext when ctx ended, ReasonLimit, or ReasonStream for
// network, TLS and protocol failures.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	domain, err := jid.Parse(cfg.Domain)
	if err != nil || domain.Localpart() != "" || domain.Resourcepart() != "" {
		return nil, fmt.Errorf("%w: Domain %q is not an XMPP domain", ErrConfig, cfg.Domain)
	}
	pubsub, err := jid.Parse(cfg.PubSubDomain)
	if err != nil {
		return nil, fmt.Errorf("%w: PubSubDomain %q: %v", ErrConfig, cfg.PubSubDomain, err)
	}
	origin, err := jid.New(cfg.Username, domain.Domainpart(), cfg.Resource)
	if err != nil {
		return nil, fmt.Errorf("%w: Username or Resource: %v", ErrConfig, err)
	}
	service, err := jid.New(cfg.ServiceUser, domain.Domainpart(), "")
	if err != nil {
		return nil, fmt.Errorf("%w: ServiceUser %q: %v", ErrConfig, cfg.ServiceUser, err)
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	ls := &linkState{}
	start := time.Now()
	lk, err := dialLink(dctx, cfg, ls)
	if err != nil {
		return nil, dialError(ctx, dctx, err, ls)
	}
	features := append(lk.features, saslPlain(cfg.Username, cfg.Password), bindNamed(cfg.Resource), sessionInfo())
	streamCfg := func(*mxmpp.Session, *mxmpp.StreamConfig) mxmpp.StreamConfig {
		return mxmpp.StreamConfig{Features: features}
	}
	neg := mxmpp.NewNegotiator(streamCfg)
	if lk.ws {
		neg = websocket.Negotiator(streamCfg)
	}
	// mellium's own context handling sets a past deadline and clears it at
	// once, which can leave a read blocked: close the connection instead.
	stop := context.AfterFunc(dctx, func() { _ = lk.conn.Close() })
	sess, err := mxmpp.NewSession(dctx, domain, origin, lk.conn, lk.state, neg)
	if err != nil {
		stop()
		_ = lk.conn.Close()
		return nil, dialError(ctx, dctx, err, ls)
	}
	c := &Client{
		cfg:      cfg,
		sess:     sess,
		ls:       ls,
		jid:      sess.LocalAddr(),
		domain:   domain,
		pubsub:   pubsub,
		service:  service,
		closeReq: make(chan struct{}),
		done:     make(chan struct{}),
		served:   make(chan struct{}),
		tornDown: make(chan struct{}),
		subs:     make(map[string]string),
		svcRes:   make(map[string]struct{}),
	}
	c.life, c.endLife = context.WithCancelCause(context.Background())
	c.log = cfg.Logger.Named("xmpp").WithLazy(zap.String("jid", c.jid.String()), zap.String("transport", string(cfg.Transport))) // cloned at the first log line
	if c.jid.Resourcepart() != cfg.Resource {
		c.log.Warn("server bound another resource than the one requested", zap.String("requested", cfg.Resource))
	}
	err = c.sendPresence(dctx, true)
	if err == nil {
		err = c.sendBarrier(dctx) // see replayTracker
	}
	if !stop() && err == nil {
		err = fmt.Errorf("xmpp: dial: %w", dctx.Err())
	}
	if err != nil {
		c.endLife(nil)
		_ = lk.conn.Close()
		return nil, dialError(ctx, dctx, fmt.Errorf("xmpp: initial presence: %w", err), ls)
	}
	c.log.Debug("session up", zap.Duration("took", time.Since(start)))
	return c, nil
}

// link is a connected transport, ready for stream negotiation.
type link struct {
	conn     net.Conn
	state    mxmpp.SessionState // Secure when the link is already encrypted
	ws       bool               // RFC 7395 framing
	features []mxmpp.StreamFeature
}

func dialLink(ctx context.Context, cfg Config, ls *linkState) (link, error) {
	switch cfg.Transport {
	case TransportTCP:
		raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", cfg.Address)
		if err != nil {
			return link{}, fmt.Errorf("xmpp: dial %s: %w", cfg.Address, err)
		}
		lc := newLimitConn(&deadlineConn{Conn: raw, timeout: cfg.WriteTimeout}, cfg.MaxStanzaSize, cfg.MaxDepth, ls)
		return link{conn: lc, features: []mxmpp.StreamFeature{
			startTLS(cfg.TLSConfig, lc, cfg.MaxStanzaSize, cfg.MaxDepth, ls),
		}}, nil
	case TransportTLS:
		raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", cfg.Address)
		if err != nil {
			return link{}, fmt.Errorf("xmpp: dial %s: %w", cfg.Address, err)
		}
		tc := tls.Client(&deadlineConn{Conn: raw, timeout: cfg.WriteTimeout}, cfg.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return link{}, fmt.Errorf("xmpp: tls handshake with %s: %w", cfg.Address, err)
		}
		return link{conn: newLimitConn(tc, cfg.MaxStanzaSize, cfg.MaxDepth, ls), state: mxmpp.Secure}, nil
	case TransportWebSocket:
		wc, err := dialWebSocket(ctx, cfg, ls)
		if err != nil {
			return link{}, err
		}
		// normalize accepted only wss, or ws on loopback with AllowInsecure.
		return link{conn: newLimitConn(wc, cfg.MaxStanzaSize, cfg.MaxDepth, ls), state: mxmpp.Secure, ws: true}, nil
	case TransportBOSH:
		bc, err := dialBOSH(ctx, cfg)
		if err != nil {
			return link{}, err
		}
		return link{conn: newLimitConn(bc, cfg.MaxStanzaSize, cfg.MaxDepth, ls), state: mxmpp.Secure}, nil
	}
	return link{}, fmt.Errorf("%w: unknown Transport %q", ErrConfig, cfg.Transport)
}

// dialError turns a failure during Dial into a *SessionError.
func dialError(parent, dctx context.Context, err error, ls *linkState) error {
	var se *SessionError
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, ErrInsecure) || errors.Is(err, ErrConfig) {
		return err
	}
	var fail *saslError
	if errors.As(err, &fail) {
		if fail.temporary() {
			return &SessionError{Reason: ReasonStream, Err: err}
		}
		return &SessionError{Reason: ReasonAuth, Err: err}
	}
	if _, limitErr := ls.get(); limitErr != nil {
		return &SessionError{Reason: ReasonLimit, Err: limitErr}
	}
	if errors.Is(err, stream.Conflict) {
		return &SessionError{Reason: ReasonConflict, Err: err}
	}
	if parent.Err() != nil {
		return &SessionError{Reason: ReasonContext, Err: fmt.Errorf("%w (%w)", parent.Err(), err)}
	}
	if dctx.Err() != nil {
		return &SessionError{Reason: ReasonStream, Err: fmt.Errorf("xmpp: dial timed out: %w", err)}
	}
	return &SessionError{Reason: ReasonStream, Err: err}
}

// JID returns the full JID the session is bound to
// ("loginId@domain/resource").
func (c *Client) JID() string { return c.jid.String() }

// Stats returns counters of what the Client received so far.
func (c *Client) Stats() Stats {
	return Stats{
		Updates:     c.updates.Load(),
		Malformed:   c.malformed.Load(),
		Ignored:     c.ignored.Load(),
		Pings:       c.pings.Load(),
		LastPingRTT: time.Duration(c.pingRTT.Load()),
	}
}

// Run serves the session until it ends: it reads the stream (calling
// OnUpdate and OnServicePresence) on the caller's goroutine, answers
// server pings, and pings the server after every PingInterval in which
// nothing arrived (a timer, not a goroutine: a busy link is never pinged).
// It blocks and always returns a *SessionError:
//
//   - ReasonClosed after Close, ReasonContext when ctx is done: both end the
//     session gracefully, as Close describes;
//   - ReasonPingTimeout after PingMisses unanswered pings in a row;
//   - ReasonConflict when another session bound our resource;
//   - ReasonLimit when the server broke MaxStanzaSize or MaxDepth;
//   - ReasonStream for everything else (stream error, end of stream,
//     network error, malformed XML).
//
// Run may be called once; calls after the first, or after Close, return
// ReasonClosed at once.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.state != stateNew {
		c.mu.Unlock()
		return &SessionError{Reason: ReasonClosed, Err: ErrClosed}
	}
	c.state = stateRunning
	c.mu.Unlock()
	defer close(c.done)

	p := c.startPinger()
	// ctx ends the session gracefully, from a goroutine of its own that
	// exists only then (the teardown needs this one reading the stream).
	stopCtx := context.AfterFunc(ctx, func() {
		c.requestEnd(&SessionError{Reason: ReasonContext, Err: ctx.Err()}, true)
	})
	// Serve also runs when Close came first: its teardown needs a reader.
	serveErr := c.sess.Serve(mxmpp.HandlerFunc(c.handle))
	close(c.served)
	stopCtx()
	p.stop()
	first := c.requestEnd(nil, false)
	end := c.endReq
	switch {
	case first: // the stream ended on its own
		_ = c.sess.Conn().Close()
		end = c.classify(serveErr)
	case end.Reason == ReasonPingTimeout:
		_ = c.sess.Conn().Close()
	default: // Close or ctx: wait for their teardown
		<-c.tornDown
	}
	return c.finish(end)
}

// requestEnd records why the session ends, once: the first caller wins
// and, when graceful, tears the session down (waiting for Serve to
// return). It reports whether this call was the first. A nil end claims
// the end for the stream itself (Serve returned on its own).
func (c *Client) requestEnd(end *SessionError, graceful bool) (first bool) {
	c.endOnce.Do(func() {
		first = true
		c.endReq = end
		if end == nil {
			return
		}
		if !graceful {
			_ = c.sess.Conn().Close()
			return
		}
		err := c.teardown(c.served)
		c.mu.Lock()
		c.closeErr = err
		c.mu.Unlock()
		close(c.tornDown)
	})
	return first
}

// finish marks the session over and logs why.
func (c *Client) finish(end *SessionError) error {
	c.mu.Lock()
	c.state = stateDone
	c.mu.Unlock()
	c.endLife(end)
	if end.Reason == ReasonClosed || end.Reason == ReasonContext {
		c.log.Debug("session closed", zap.String("reason", string(end.Reason)))
	} else {
		c.log.Info("session ended", zap.String("reason", string(end.Reason)), zap.Error(end.Err))
	}
	return end
}

// classify says why Serve returned err on its own.
func (c *Client) classify(err error) *SessionError {
	streamCond, limitErr := c.ls.get()
	select {
	case <-c.closeReq:
		return &SessionError{Reason: ReasonClosed, Err: ErrClosed}
	default:
	}
	switch {
	case limitErr != nil:
		return &SessionError{Reason: ReasonLimit, Err: limitErr}
	case errors.Is(err, stream.Conflict) || streamCond == "conflict":
		return &SessionError{Reason: ReasonConflict, Err: fmt.Errorf("xmpp: stream error: conflict: %w", orEOF(err))}
	case streamCond != "":
		return &SessionError{Reason: ReasonStream, Err: fmt.Errorf("xmpp: stream error: %s: %w", streamCond, orEOF(err))}
	case err == nil:
		return &SessionError{Reason: ReasonStream, Err: fmt.Errorf("xmpp: server closed the stream: %w", io.EOF)}
	}
	return &SessionError{Reason: ReasonStream, Err: err}
}

func orEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

// Close ends the session gracefully: it unsubscribes the subscriptions
// this Client made with Subscribe, sends unavailable presence, closes the
// stream and waits for the server to close its side, all within
// CloseTimeout (default 3 s), then closes the connection. Run returns
// ReasonClosed. Close is idempotent and safe to call from any goroutine
// (but not from OnUpdate or OnServicePresence); it returns an error only
// when unsubscribing failed (the subscriptions then remain on the server,
// and PruneSubscriptions removes them next time).
func (c *Client) Close() error {
	c.closeOnce.Do(func() { close(c.closeReq) })
	c.mu.Lock()
	switch c.state {
	case stateNew:
		// Run never started: nobody reads the stream, so no IQ can be
		// answered; send unavailable presence and close.
		c.state = stateDone
		c.mu.Unlock()
		err := c.teardown(nil)
		c.mu.Lock()
		c.closeErr = err
		c.mu.Unlock()
		c.endLife(&SessionError{Reason: ReasonClosed, Err: ErrClosed})
		close(c.done)
		return err
	case stateRunning:
		c.mu.Unlock()
		c.requestEnd(&SessionError{Reason: ReasonClosed, Err: ErrClosed}, true)
	default:
		c.mu.Unlock()
	}
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// teardown is the graceful end of the session, bounded by CloseTimeout.
// serveDone is nil when Serve is not running.
func (c *Client) teardown(serveDone <-chan struct{}) error {
	deadline := time.Now().Add(c.cfg.CloseTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	conn := c.sess.Conn()
	// Whatever blocks (a write to a peer that does not read), the
	// connection is closed at the deadline.
	watchdog := time.AfterFunc(time.Until(deadline), func() { _ = conn.Close() })
	defer watchdog.Stop()

	var errs []error
	if serveDone != nil {
		c.mu.Lock()
		subs := c.subs
		c.subs = make(map[string]string)
		c.mu.Unlock()
		for node, subid := range subs {
			if err := c.unsubscribe(ctx, node, subid); err != nil {
				errs = append(errs, fmt.Errorf("xmpp: unsubscribe %q: %w", node, err))
			}
		}
	}
	_ = c.sendPresence(ctx, false)
	_ = c.sess.Close() // </stream:stream>
	if serveDone != nil {
		select {
		case <-serveDone: // the server closed its stream too
			serveDone = nil
		case <-ctx.Done():
		}
	}
	_ = conn.Close()
	if serveDone != nil {
		<-serveDone
	}
	return errors.Join(errs...)
}

// closing reports whether Close was called.
func (c *Client) closing() bool {
	select {
	case <-c.closeReq:
		return true
	default:
		return false
	}
}

// sendPresence sends available presence with priority 0, or unavailable
// presence.
func (c *Client) sendPresence(ctx context.Context, available bool) error {
	start := xml.StartElement{Name: xml.Name{Local: "presence"}}
	var payload xml.TokenReader
	if available {
		payload = xmlstream.Wrap(xmlstream.Token(xml.CharData("0")), xml.StartElement{Name: xml.Name{Local: "priority"}})
	} else {
		start.Attr = []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "unavailable"}}
	}
	return c.sess.Send(ctx, xmlstream.Wrap(payload, start))
}

// Namespace of XEP-0199 pings.
const nsPing = "urn:xmpp:ping"

// pinger pings the server once a PingInterval has passed without a stanza;
// each ping waits PingInterval/PingMisses for its answer, and a missed ping
// is followed at once by the next. After PingMisses misses in a row it
// closes the connection (Run then returns ReasonPingTimeout): a link that
// went silent (black-holed, no FIN) is declared dead within 2 ×
// PingInterval of its last stanza. It is a timer: a tick runs on a
// goroutine of its own only while it pings.
type pinger struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	misses int // used by one tick at a time

	mu      sync.Mutex
	stopped bool
	t       *time.Timer
	wg      sync.WaitGroup // the running tick
}

func (c *Client) startPinger() *pinger {
	p := &pinger{c: c}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	c.heardAt.Store(time.Now().UnixNano())
	p.mu.Lock()
	p.t = time.AfterFunc(c.cfg.PingInterval, p.tick)
	p.mu.Unlock()
	return p
}

// stop cancels a running ping, stops the timer and waits for the tick.
func (p *pinger) stop() {
	p.mu.Lock()
	p.stopped = true
	p.t.Stop()
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

func (p *pinger) tick() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	c := p.c
	interval := c.cfg.PingInterval
	next := interval
	if silence := time.Since(time.Unix(0, c.heardAt.Load())); silence < interval {
		p.misses = 0 // traffic proves the link alive
		next = interval - silence
	} else {
		pctx, cancel := context.WithTimeout(p.ctx, interval/time.Duration(c.cfg.PingMisses))
		sent := time.Now()
		err := c.ping(pctx)
		cancel()
		if p.ctx.Err() != nil {
			return
		}
		if err == nil {
			c.pings.Add(1)
			c.pingRTT.Store(int64(time.Since(sent)))
			if p.misses > 0 {
				c.log.Debug("ping answered again", zap.Int("missed", p.misses))
			}
			p.misses = 0
			c.heardAt.Store(time.Now().UnixNano())
		} else {
			p.misses++
			c.log.Debug("ping not answered", zap.Int("misses", p.misses), zap.Duration("waited", time.Since(sent)), zap.Error(err))
			if p.misses >= c.cfg.PingMisses {
				c.requestEnd(&SessionError{Reason: ReasonPingTimeout,
					Err: fmt.Errorf("%w: %d in a row, after %s of silence", ErrPingTimeout, p.misses, interval)}, false)
				return
			}
			next = 0 // the next ping at once: dead within 2 × interval
		}
	}
	p.mu.Lock()
	if !p.stopped {
		p.t.Reset(next)
	}
	p.mu.Unlock()
}

// ping sends one XEP-0199 ping to the domain. Any answer, even an error,
// proves the link alive.
func (c *Client) ping(ctx context.Context) error {
	resp, err := c.sess.SendIQElement(ctx,
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsPing, Local: "ping"}}),
		stanza.IQ{Type: stanza.GetIQ, To: c.domain})
	if err != nil {
		return err
	}
	return resp.Close()
}

// randomID returns a random stanza id.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
