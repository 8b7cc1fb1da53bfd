package bosh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"finesse-relay/xmpp/bosh/wire"
)

// Retransmission policy for network errors (XEP-0124 §14).
const (
	maxAttempts   = 4                      // first try plus three retransmissions
	retryBackoff  = 250 * time.Millisecond // doubled after each failure
	requestMargin = 10 * time.Second       // a request may take wait + this long
)

// Request ordering against a strict connection manager (XEP-0124 §14: the
// server processes requests in rid order, and some, like ejabberd, stall
// for good when rid N+1 arrives before rid N). Two requests in flight use
// two HTTP connections, and nothing orders two connections on the way to
// the server, so the client orders what it can:
//   - a request is not written before the request with the previous rid
//     has been written (httptrace WroteRequest);
//   - while that previous request is unanswered, the next one also waits
//     until orderGap after it was written, so that the server has read it
//     first unless it lags by more than orderGap;
//   - after a response with payload the next empty long-poll waits up to
//     pollDelay, so that what the application writes in reaction (the
//     <auth/> after the features, the bind after <success/>) goes as the
//     only request in flight instead of racing a fresh long-poll;
//   - never more than 'requests' in flight, the terminate included: with
//     hold='1' the held request is answered once the server has read the
//     next one, so a third request (the terminate after the unavailable
//     presence) starts only after the server has read the second.
const (
	orderGap  = 50 * time.Millisecond
	pollDelay = 10 * time.Millisecond
)

// Params are the session parameters in force, as negotiated with the
// connection manager in the session creation response.
type Params struct {
	Wait       time.Duration // longest time a request is held
	Inactivity time.Duration // longest time the server tolerates no request in flight
	Polling    time.Duration // shortest interval between two empty polls
	MaxPause   time.Duration // longest pause the server allows (this package never pauses)
	Hold       int           // requests the server may hold
	Requests   int           // requests in flight at most
	Ver        string        // BOSH version of the server
	From       string        // domain that answered
	StreamID   string        // XMPP stream id (authid)
}

// Conn is the net.Conn returned by Dial: an XMPP byte stream carried over
// BOSH. It is safe for one reader and one writer at a time, as a TCP
// connection is; Close and the deadline setters may be called from any
// goroutine.
type Conn struct {
	cfg     Config
	url     string
	client  *http.Client
	ownTr   *http.Transport // closed on Close when we built it
	log     *zap.Logger
	remote  addr
	readDL  *deadline
	writeDL *deadline

	// ctx is the lifetime of the session's HTTP requests; cancel ends them
	// (on Close, or when the session is over).
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per request goroutine

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	params  Params
	sid     string

	nextRID    uint64           // rid of the next request
	deliverRID uint64           // rid whose response is due next in the read stream
	responses  map[uint64]*Body // answered, not yet delivered (out of order)
	inflight   int

	out      []outItem // waiting to be sent, in order
	outBytes int

	scanBuf []byte            // written bytes not yet forming a complete item
	header  wire.StreamHeader // last stream header written by the client
	headers int               // stream headers written so far

	readBuf bytes.Buffer
	readErr error // returned once readBuf is drained
	err     error // fatal: Write returns it

	written     uint64    // highest rid whose request has been written, in rid order
	writtenAt   time.Time // when written was written
	lastPayload time.Time // when the last response with payload arrived

	lastEmptyRID  uint64 // rid of the last empty request sent
	lastEmptySent time.Time
	lastEmptyIdle bool // its response carried no payload
	lastWasEmpty  bool // the last request sent was empty
	pollTimer     *time.Timer

	termQueued   bool   // a terminate request is queued or sent
	termRID      uint64 // rid of the terminate request once sent
	termAnswered bool   // the terminate got an answer (maybe before lower rids)
	done         bool   // the session is over (terminate delivered or fatal error)
	closed       bool   // Close was called
	stopped      bool   // no request may start any more
}

type outKind int

const (
	outPayload outKind = iota
	outRestart
	outTerminate
)

type outItem struct {
	kind outKind
	data []byte
}

var _ net.Conn = (*Conn)(nil)

// Dial creates a BOSH session with the connection manager at cfg.URL and
// returns it as a net.Conn carrying an ordinary XMPP client stream (see the
// package documentation). ctx bounds the session creation request only.
//
// Errors wrap ErrConfig, ErrProtocol, ErrNetwork or ErrBodyTooLarge, or are a
// *TerminateError (e.g. host-unknown).
func Dial(ctx context.Context, cfg Config) (net.Conn, error) {
	c, err := dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func dial(ctx context.Context, cfg Config) (*Conn, error) {
	cfg, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL)
	c := &Conn{
		cfg:       cfg,
		url:       cfg.URL,
		client:    cfg.HTTPClient,
		log:       cfg.Logger.Named("bosh"),
		remote:    addr(u.Host),
		readDL:    newDeadline(),
		writeDL:   newDeadline(),
		changed:   make(chan struct{}),
		responses: make(map[uint64]*Body),
		nextRID:   initialRID(),
	}
	if c.client == nil {
		c.client, c.ownTr = newHTTPClient(cfg.TLSConfig, cfg.Hold+2)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	var w bodyWriter
	w.open(c.nextRID, "")
	w.attr("content", "text/xml; charset=utf-8")
	w.attr("hold", strconv.Itoa(cfg.Hold))
	w.attr("to", cfg.Domain)
	w.attr("ver", "1.6")
	w.attr("wait", strconv.Itoa(int(cfg.Wait/time.Second)))
	w.attr("xml:lang", cfg.Lang)
	w.attr("xmpp:version", "1.0")
	w.attr("xmlns:xmpp", wire.NSXBOSH)
	req := w.close(nil)
	rid := c.nextRID
	c.nextRID++

	dctx, cancel := context.WithTimeout(ctx, cfg.Wait+requestMargin)
	defer cancel()
	b, err := c.post(dctx, req)
	if err != nil {
		c.shutdown()
		return nil, err
	}
	if b.Type == "terminate" {
		c.shutdown()
		return nil, &TerminateError{Condition: conditionOr(b.Condition)}
	}
	if b.SID == "" {
		c.shutdown()
		return nil, fmt.Errorf("%w: session creation response has no sid", ErrProtocol)
	}
	c.sid = b.SID
	c.params = Params{
		Wait: b.Wait, Inactivity: b.Inactivity, Polling: b.Polling, MaxPause: b.MaxPause,
		Hold: b.Hold, Requests: b.Requests, Ver: b.Ver, From: b.From, StreamID: b.AuthID,
	}
	if c.params.Wait <= 0 || c.params.Wait > cfg.Wait {
		c.params.Wait = cfg.Wait
	}
	if c.params.Hold <= 0 || c.params.Hold > cfg.Hold {
		// A server that omits hold (or answers more) gets what we asked for.
		// hold='0' (polling) is treated as 1: one empty request at a time,
		// spaced by the polling interval when they come back empty.
		c.params.Hold = cfg.Hold
	}
	if c.params.Requests <= 0 {
		c.params.Requests = c.params.Hold + 1
	}
	if cfg.Requests > 0 && cfg.Requests < c.params.Requests {
		c.params.Requests = cfg.Requests
	}
	if c.params.From == "" {
		c.params.From = cfg.Domain
	}
	if c.params.StreamID == "" {
		c.params.StreamID = b.SID
	}
	c.log.Debug("session created", zap.Stringer("params", c.params))

	c.mu.Lock()
	defer c.mu.Unlock()
	c.deliverRID = rid
	c.written = rid
	if len(b.Payload) > 0 {
		c.lastPayload = time.Now()
	}
	c.writeHeaderLocked()
	c.responses[rid] = b
	c.deliverLocked()
	c.pumpLocked()
	return c, nil
}

func conditionOr(c string) string {
	if c == "" {
		return ConditionUndefinedCondition
	}
	return c
}

// initialRID returns a random first rid, far enough below 2^53 that a
// session never reaches it (XEP-0124 §7).
func initialRID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return 1<<20 + binary.BigEndian.Uint64(b[:])%(1<<40)
}

// String formats the parameters for logs.
func (p Params) String() string {
	return fmt.Sprintf("wait=%s hold=%d requests=%d inactivity=%s polling=%s maxpause=%s ver=%s",
		p.Wait, p.Hold, p.Requests, p.Inactivity, p.Polling, p.MaxPause, p.Ver)
}

// Params returns the session parameters negotiated with the server.
func (c *Conn) Params() Params {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.params
}

// writeHeaderLocked appends the synthesized server stream header to the read
// stream.
func (c *Conn) writeHeaderLocked() {
	c.readBuf.WriteString("<stream:stream xmlns='" + wire.NSClient + "' xmlns:stream='" + wire.NSStream + "' version='1.0'")
	c.readBuf.WriteString(" from='" + wire.EscapeAttr(c.params.From) + "' id='" + wire.EscapeAttr(c.params.StreamID) + "'")
	c.readBuf.WriteString(" xml:lang='" + wire.EscapeAttr(c.cfg.Lang) + "'>")
}

// broadcastLocked wakes every goroutine waiting for a state change.
func (c *Conn) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// failLocked ends the session with a fatal error.
func (c *Conn) failLocked(err error) {
	if c.done {
		return
	}
	c.log.Debug("session failed", zap.Error(err))
	c.done = true
	c.err = err
	if c.readErr == nil {
		c.readErr = err
	}
	c.cancel()
	c.broadcastLocked()
}

// Read reads the synthesized XMPP stream from the server: a stream header,
// the payloads of the response bodies in rid order, and </stream:stream>
// (then io.EOF) when the session ends normally. A session ended with a
// condition yields a *TerminateError after the data before it.
func (c *Conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch {
		case c.closed:
			return 0, net.ErrClosed
		case c.readBuf.Len() > 0:
			full := c.readBuf.Len() >= c.cfg.MaxReadBuffer
			n, _ := c.readBuf.Read(p)
			if full && c.readBuf.Len() < c.cfg.MaxReadBuffer {
				c.pumpLocked()
			}
			return n, nil
		case c.readErr != nil:
			return 0, c.readErr
		case isClosed(c.readDL.wait()):
			return 0, os.ErrDeadlineExceeded
		}
		if len(p) == 0 {
			return 0, nil
		}
		ch, dl := c.changed, c.readDL.wait()
		c.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
		}
		c.mu.Lock()
	}
}

// Write accepts the XMPP byte stream written by the client: the first stream
// header (the session already exists), stanzas (sent in <body/> payloads,
// batched while requests are in flight), a new stream header after SASL
// success (sent as xmpp:restart='true') and </stream:stream> (sent as
// type='terminate'). Whitespace keepalives are dropped: long-polls keep the
// session alive. Write blocks while MaxBodySize bytes wait to be sent.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch {
		case c.closed:
			return 0, net.ErrClosed
		case c.err != nil:
			return 0, c.err
		case c.termQueued || c.done:
			return 0, ErrStreamClosed
		case isClosed(c.writeDL.wait()):
			return 0, os.ErrDeadlineExceeded
		}
		if int64(c.outBytes) < c.cfg.MaxBodySize {
			break
		}
		ch, dl := c.changed, c.writeDL.wait()
		c.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
		}
		c.mu.Lock()
	}
	c.scanBuf = append(c.scanBuf, p...)
	if err := c.scanLocked(); err != nil {
		c.failLocked(err)
		return 0, err
	}
	c.pumpLocked()
	return len(p), nil
}

// scanLocked moves every complete item of scanBuf to the output queue.
func (c *Conn) scanLocked() error {
	for len(c.scanBuf) > 0 {
		kind, n, err := wire.ScanItem(c.scanBuf)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		if kind == wire.ItemNeedMore {
			if int64(len(c.scanBuf)) > c.cfg.MaxBodySize {
				return fmt.Errorf("%w: element of more than %d bytes written", ErrBodyTooLarge, c.cfg.MaxBodySize)
			}
			return nil
		}
		item := c.scanBuf[:n]
		switch kind {
		case wire.ItemStreamStart:
			h, err := wire.ParseStreamHeader(item)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			c.header = h
			c.headers++
			if c.headers > 1 {
				// Stream restart after SASL (XEP-0206 §5). The server says
				// nothing between <success/> and the restart, so the new
				// header belongs here in the read stream.
				c.out = append(c.out, outItem{kind: outRestart})
				c.writeHeaderLocked()
				c.broadcastLocked()
			}
		case wire.ItemStreamEnd:
			c.out = append(c.out, outItem{kind: outTerminate})
			c.termQueued = true
		case wire.ItemElement:
			if c.headers == 0 {
				return fmt.Errorf("%w: element written before the stream header", ErrProtocol)
			}
			ns := c.header.DefaultNS
			if ns == "" {
				ns = wire.NSClient
			}
			el := wire.WithNamespaces(bytes.Clone(item), ns, c.header.Prefixes)
			c.out = append(c.out, outItem{kind: outPayload, data: el})
			c.outBytes += len(el)
		}
		c.scanBuf = c.scanBuf[n:]
	}
	c.scanBuf = nil
	return nil
}

// pumpLocked starts as many requests as the session allows: queued output
// first, then an empty long-poll while fewer than hold requests are in
// flight.
func (c *Conn) pumpLocked() {
	for !c.stopped && !c.done && c.sid != "" {
		// No extra request for the terminate (XEP-0124 §11 allows one):
		// with hold='1' a slot frees as soon as the server has read the
		// request before it, so waiting for it keeps the terminate behind
		// what precedes it at any server load.
		limit := c.params.Requests
		if c.inflight >= limit {
			return
		}
		if len(c.out) > 0 {
			c.sendOutLocked()
			continue
		}
		if c.termQueued || c.closed {
			return
		}
		if c.inflight >= max(c.params.Hold, 1) || c.readBuf.Len() >= c.cfg.MaxReadBuffer {
			return
		}
		// XEP-0124 §12: no two consecutive empty requests closer than
		// 'polling' when the first one came back empty.
		var wait time.Duration
		if c.lastWasEmpty && c.lastEmptyIdle && c.params.Polling > 0 {
			wait = time.Until(c.lastEmptySent.Add(c.params.Polling))
		}
		// Give the application a moment to answer what it just got, so
		// that its answer is not sent beside a fresh long-poll (see
		// pollDelay).
		wait = max(wait, time.Until(c.lastPayload.Add(pollDelay)))
		if wait > 0 {
			if c.pollTimer == nil {
				c.pollTimer = time.AfterFunc(wait, c.pollTimerFired)
			}
			return
		}
		var w bodyWriter
		rid := c.nextRID
		w.open(rid, c.sid)
		c.lastEmptyRID, c.lastEmptySent, c.lastEmptyIdle, c.lastWasEmpty = rid, time.Now(), false, true
		c.startLocked(rid, w.close(nil))
	}
}

func (c *Conn) pollTimerFired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pollTimer = nil
	c.pumpLocked()
}

// sendOutLocked sends the head of the output queue as one request: a
// restart, or payloads up to MaxBodySize (with a terminate that follows them
// folded in).
func (c *Conn) sendOutLocked() {
	rid := c.nextRID
	var w bodyWriter
	w.open(rid, c.sid)
	c.lastWasEmpty = false
	head := c.out[0]
	if head.kind == outRestart {
		c.out = c.out[1:]
		w.attr("to", c.cfg.Domain)
		w.attr("xml:lang", c.cfg.Lang)
		w.attr("xmpp:restart", "true")
		w.attr("xmlns:xmpp", wire.NSXBOSH)
		c.startLocked(rid, w.close(nil))
		return
	}
	var payload [][]byte
	size := 0
	for len(c.out) > 0 && c.out[0].kind == outPayload {
		el := c.out[0].data
		if len(payload) > 0 && int64(size+len(el)) > c.cfg.MaxBodySize {
			break
		}
		payload = append(payload, el)
		size += len(el)
		c.out = c.out[1:]
	}
	c.outBytes -= size
	if len(c.out) > 0 && c.out[0].kind == outTerminate {
		c.out = c.out[1:]
		w.attr("type", "terminate")
		c.termRID = rid
	}
	c.startLocked(rid, w.close(payload))
	c.broadcastLocked() // writers blocked on a full queue
}

// startLocked sends one request on its own goroutine.
func (c *Conn) startLocked(rid uint64, body []byte) {
	c.nextRID++
	c.inflight++
	c.wg.Add(1)
	go c.exchange(rid, body)
}

// exchange sends one request (retransmitting it on network errors) and hands
// the response to the read side in rid order.
func (c *Conn) exchange(rid uint64, body []byte) {
	defer c.wg.Done()
	b, err := c.postRetry(rid, body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	if rid == c.termRID {
		c.termAnswered = true
		c.broadcastLocked()
	}
	switch {
	case c.done:
	case err != nil:
		c.failLocked(err)
	default:
		if rid == c.lastEmptyRID {
			c.lastEmptyIdle = len(b.Payload) == 0
		}
		if len(b.Payload) > 0 {
			c.lastPayload = time.Now()
		}
		c.markWrittenLocked(rid) // for transports that do not report WroteRequest
		c.responses[rid] = b
		c.deliverLocked()
		c.broadcastLocked()
	}
	c.pumpLocked()
}

// deliverLocked moves the responses that are due, in rid order, into the
// read stream.
func (c *Conn) deliverLocked() {
	for !c.done {
		b, ok := c.responses[c.deliverRID]
		if !ok {
			return
		}
		delete(c.responses, c.deliverRID)
		c.deliverRID++
		for _, p := range b.Payload {
			c.readBuf.Write(p)
		}
		if b.Type != "terminate" {
			continue
		}
		c.done = true
		if b.Condition == "" {
			c.readBuf.WriteString("</stream:stream>")
			c.readErr = io.EOF
			c.err = ErrStreamClosed
		} else {
			c.readErr = &TerminateError{Condition: b.Condition}
			c.err = c.readErr
		}
		c.log.Debug("session terminated", zap.String("condition", b.Condition))
		c.cancel()
		clear(c.responses)
	}
}

// postRetry posts body, retransmitting it with the same rid while the
// failure is a network error (XEP-0124 §14).
func (c *Conn) postRetry(rid uint64, body []byte) (*Body, error) {
	backoff := retryBackoff
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if err := c.waitTurn(rid); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.params.Wait+requestMargin)
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(info httptrace.WroteRequestInfo) {
				if info.Err == nil {
					c.markWritten(rid)
				}
			},
		})
		var b *Body
		b, err = c.post(ctx, body)
		cancel()
		if err == nil || !errors.Is(err, ErrNetwork) || c.ctx.Err() != nil {
			return b, err
		}
		if attempt == maxAttempts {
			break
		}
		c.log.Debug("retransmitting request", zap.Uint64("rid", rid), zap.Int("attempt", attempt+1), zap.Error(err))
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return nil, err
		}
		backoff *= 2
	}
	return nil, err
}

// waitTurn blocks until request rid may be written: the request before it
// has been written, and either answered or written orderGap ago. A
// retransmission (rid already written once) never waits.
func (c *Conn) waitTurn(rid uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := c.ctx.Err(); err != nil {
			return fmt.Errorf("%w: session ended before request %d was sent: %w", ErrNetwork, rid, err)
		}
		var wake <-chan time.Time
		if c.written+1 >= rid {
			prev := rid - 1
			if c.written >= rid || c.answeredLocked(prev) {
				return nil
			}
			gap := orderGap - time.Since(c.writtenAt)
			if gap <= 0 {
				return nil
			}
			if timer == nil {
				timer = time.NewTimer(gap)
			} else {
				timer.Reset(gap)
			}
			wake = timer.C
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-wake:
		case <-c.ctx.Done():
		}
		c.mu.Lock()
	}
}

// answeredLocked reports whether the response to rid has arrived.
func (c *Conn) answeredLocked(rid uint64) bool {
	if rid < c.deliverRID {
		return true
	}
	_, ok := c.responses[rid]
	return ok
}

// markWritten records that request rid has been written.
func (c *Conn) markWritten(rid uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.markWrittenLocked(rid)
}

func (c *Conn) markWrittenLocked(rid uint64) {
	if rid > c.written {
		c.written, c.writtenAt = rid, time.Now()
		c.broadcastLocked()
	}
}

// post sends one HTTP request and parses the answer. Network-level failures
// wrap ErrNetwork.
func (c *Conn) post(ctx context.Context, body []byte) (*Body, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNetwork, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading response: %w", ErrNetwork, err)
	}
	if int64(len(data)) > c.cfg.MaxBodySize {
		return nil, fmt.Errorf("%w: response of more than %d bytes", ErrBodyTooLarge, c.cfg.MaxBodySize)
	}
	if resp.StatusCode != http.StatusOK {
		if retryable(resp.StatusCode) {
			return nil, fmt.Errorf("%w: HTTP %d", ErrNetwork, resp.StatusCode)
		}
		cond := conditionForStatus(resp.StatusCode)
		if b, err := ParseBody(data); err == nil && b.Condition != "" {
			cond = b.Condition
		}
		return nil, &TerminateError{Condition: cond, HTTPStatus: resp.StatusCode}
	}
	b, err := ParseBody(data)
	if err != nil {
		return nil, err
	}
	if b.Type == "error" {
		// Recoverable binding error (XEP-0124 §17.3): this client does not
		// resend the whole window; it ends the session instead.
		return nil, &TerminateError{Condition: conditionOr(b.Condition)}
	}
	return b, nil
}

// Close ends the session: it sends type='terminate' (unless the stream or
// session already ended), waits for the answer at most CloseTimeout, then
// cancels every request and waits for their goroutines. Pending Read and
// Write calls return net.ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.broadcastLocked()
	if !c.done && !c.termQueued {
		c.out = append(c.out, outItem{kind: outTerminate})
		c.termQueued = true
		c.pumpLocked()
	}
	if !c.done {
		t := time.NewTimer(c.cfg.CloseTimeout)
		for timedOut := false; !c.done && !c.termAnswered && !timedOut; {
			ch := c.changed
			c.mu.Unlock()
			select {
			case <-ch:
			case <-t.C:
				timedOut = true
			}
			c.mu.Lock()
		}
		t.Stop()
	}
	c.stopped = true
	if c.pollTimer != nil {
		c.pollTimer.Stop()
		c.pollTimer = nil
	}
	c.mu.Unlock()
	c.shutdown()
	return nil
}

// shutdown cancels the requests, waits for their goroutines and releases
// timers and idle connections.
func (c *Conn) shutdown() {
	c.cancel()
	c.wg.Wait()
	c.readDL.stop()
	c.writeDL.stop()
	if c.ownTr != nil {
		c.ownTr.CloseIdleConnections()
	}
}

// LocalAddr returns a placeholder address (network "bosh").
func (c *Conn) LocalAddr() net.Addr { return addr("local") }

// RemoteAddr returns the host:port of the connection manager (network "bosh").
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.readDL.set(t)
	c.writeDL.set(t)
	return nil
}

// SetReadDeadline sets the deadline for Read; a passed deadline makes Read
// return os.ErrDeadlineExceeded (a net.Error whose Timeout is true).
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.readDL.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for Write (which blocks only while the
// output queue is full).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.writeDL.set(t)
	return nil
}

// addr is the net.Addr of a BOSH conn.
type addr string

func (a addr) Network() string { return "bosh" }
func (a addr) String() string  { return string(a) }
