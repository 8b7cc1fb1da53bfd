package gadget

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// closeInfo says how a connection ends.
type closeInfo struct {
	code   int    // close code (sent, received, or 1006 for none)
	reason string // close reason sent with code
	flush  bool   // write the queued messages before the close frame
	frame  bool   // send a close frame (false: the peer closed, or the socket failed)
}

// conn is one browser connection: its reader goroutine (started by the Gateway after the upgrade) reads; a writer
// goroutine runs only while frames wait (started by the outbox's notify,
// gone once the queue is empty), and a timer sends the heartbeat pings. At
// rest a connection has one goroutine, the reader. Either side ends the
// connection through closeWith; a last writer flushes if asked, sends the
// close frame, waits (closeGrace) for the reader to see the peer's answer,
// and closes the socket.
type conn struct {
	g      *Gateway
	ws     *websocket.Conn
	stream *Stream
	m      *member

	closeOnce  sync.Once
	ci         closeInfo     // set once, before closing is closed
	closing    chan struct{} // closed by closeWith
	readerDone chan struct{} // closed when the reader returns
	writerDone chan struct{} // closed when the last writer has closed the socket

	wmu       sync.Mutex
	writing   bool        // a writer goroutine is running
	finished  bool        // the last writer is done: no more writers, no more pings
	heartbeat *time.Timer // sends a ping every Heartbeat
	pinging   sync.WaitGroup

	// Reader-only state.
	bad    []time.Time // recent refused messages
	tokens float64     // command token bucket
	last   time.Time   // last refill
}

func newConn(g *Gateway, ws *websocket.Conn, s *Stream) *conn {
	c := &conn{
		g:          g,
		ws:         ws,
		stream:     s,
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		tokens:     commandBurst,
		last:       time.Now(),
	}
	q := g.cfg.QueueSize
	if q <= 0 {
		q = s.queueSize
	}
	c.m = newMember(q, func(code int, reason string, flush bool) {
		c.closeWith(closeInfo{code: code, reason: reason, flush: flush, frame: true})
	})
	c.m.out.notify = c.wakeWriter
	return c
}

// closeWith starts closing the connection; the first call decides how.
// It never blocks.
func (c *conn) closeWith(ci closeInfo) {
	c.closeOnce.Do(func() {
		c.ci = ci
		c.m.out.close()
		close(c.closing)
	})
	c.wakeWriter() // the last writer closes
}

// serve runs the connection until it is closed and both goroutines are done.
func (c *conn) serve(rp resumePoint) {
	g := c.g
	if err := c.stream.attach(c.m, rp, g.cfg.Heartbeat.Seconds()); err != nil {
		_, code, reason := c.stream.endedCode()
		c.closeWith(closeInfo{code: code, reason: reason, frame: true})
	}
	g.cfg.Metrics.connections.Inc()
	c.wmu.Lock()
	c.heartbeat = time.AfterFunc(g.cfg.Heartbeat, c.ping)
	c.wmu.Unlock()
	c.readLoop()
	c.stream.detach(c.m)
	<-c.writerDone
	c.pinging.Wait()
	_ = c.ws.Close()
	g.cfg.Metrics.connections.Dec()

	ci := c.ci // closing is closed: readLoop returned through closeWith
	g.cfg.Metrics.closed(ci.code)
	if r := droppedReason(ci); r != "" {
		g.cfg.Metrics.dropped.WithLabelValues(r).Inc()
	}
	if ce := g.log.Check(zap.DebugLevel, "websocket closed"); ce != nil {
		ce.Write(zap.Int("code", ci.code), zap.String("reason", ci.reason))
	}
}

// droppedReason names the closes the relay made because of the client.
func droppedReason(ci closeInfo) string {
	switch ci.code {
	case CloseQueueOverflow, CloseHeartbeatTimeout, ClosePolicyViolation, CloseMessageTooBig, CloseInvalidPayload:
		return ci.reason
	case websocket.CloseAbnormalClosure:
		if ci.reason == "write_error" {
			return ci.reason
		}
	}
	return ""
}

// ---- writer ----

// wakeWriter starts a writer unless one is running or the last one is
// done. It never blocks.
func (c *conn) wakeWriter() {
	c.wmu.Lock()
	if c.writing || c.finished {
		c.wmu.Unlock()
		return
	}
	c.writing = true
	c.wmu.Unlock()
	go c.write() // owned: the last writer closes writerDone, which serve waits for
}

// write writes what waits until the queue is empty, then exits; once the
// connection is closing it finishes it.
func (c *conn) write() {
	var items []item
	for {
		select {
		case <-c.closing:
			c.finish(items)
			c.wmu.Lock()
			c.finished, c.writing = true, false
			if c.heartbeat != nil {
				c.heartbeat.Stop()
			}
			c.wmu.Unlock()
			close(c.writerDone)
			return
		default:
		}
		if items = c.m.out.take(items); len(items) > 0 {
			if err := c.writeItems(items, false); err != nil {
				c.writeFailed(err) // closing now: the next turn finishes
			}
			continue
		}
		c.wmu.Lock()
		select {
		case <-c.closing:
		default:
			if c.m.out.pending() == 0 {
				c.writing = false
				c.wmu.Unlock()
				clear(items)
				return
			}
		}
		c.wmu.Unlock()
	}
}

// ping is the heartbeat timer's function: one ping, then the next.
func (c *conn) ping() {
	c.wmu.Lock()
	if c.finished {
		c.wmu.Unlock()
		return
	}
	c.pinging.Add(1)
	c.wmu.Unlock()
	defer c.pinging.Done()
	// WriteControl may run concurrently with a writer's WriteMessage.
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.g.cfg.WriteTimeout)); err != nil {
		c.writeFailed(err)
		return
	}
	c.wmu.Lock()
	if !c.finished {
		c.heartbeat.Reset(c.g.cfg.Heartbeat)
	}
	c.wmu.Unlock()
}

// writeItems writes frames in order. Unless flushing, it stops early when a
// close without flush was requested.
func (c *conn) writeItems(items []item, flushing bool) error {
	written := 0
	defer func() { c.g.cfg.Metrics.messagesOut.Add(float64(written)) }()
	for _, it := range items {
		if !flushing {
			select {
			case <-c.closing:
				if !c.ci.flush {
					return nil
				}
			default:
			}
		}
		if err := c.ws.SetWriteDeadline(time.Now().Add(c.g.cfg.WriteTimeout)); err != nil {
			return err
		}
		if err := c.ws.WriteMessage(websocket.TextMessage, it.data); err != nil {
			return err
		}
		if !it.arrived.IsZero() {
			c.g.cfg.Metrics.latency.Observe(time.Since(it.arrived).Seconds())
		}
		written++
	}
	return nil
}

// finish sends the close frame (after the queue, when flushing), waits for
// the peer's close to reach the reader, and closes the socket.
func (c *conn) finish(items []item) {
	ci := c.ci
	if ci.flush {
		if err := c.writeItems(c.m.out.take(items), true); err != nil {
			_ = c.ws.Close()
			return
		}
	}
	if ci.frame {
		msg := websocket.FormatCloseMessage(ci.code, ci.reason)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.g.cfg.WriteTimeout))
	}
	t := time.NewTimer(closeGrace)
	select {
	case <-c.readerDone:
	case <-t.C:
	}
	t.Stop()
	_ = c.ws.Close()
}

// writeFailed ends a connection whose socket cannot be written.
func (c *conn) writeFailed(err error) {
	c.closeWith(closeInfo{code: websocket.CloseAbnormalClosure, reason: "write_error"})
	_ = c.ws.Close() // unblocks the reader
	if ce := c.g.log.Check(zap.DebugLevel, "websocket write failed"); ce != nil {
		ce.Write(zap.Error(err))
	}
}

// ---- reader ----

func (c *conn) readLoop() {
	defer close(c.readerDone)
	if c.readCommands() {
		c.drain()
	}
}

// extendRead pushes the read deadline 2.5×Heartbeat ahead, unless the
// connection is closing (the close handshake has its own deadline).
func (c *conn) extendRead() {
	select {
	case <-c.closing:
	default:
		_ = c.ws.SetReadDeadline(time.Now().Add(c.g.readWait))
	}
}

// readCommands reads and executes commands until the connection closes.
// It returns true when it started the close itself (too_large, policy
// violation): the caller then drains the socket until the peer's close.
func (c *conn) readCommands() bool {
	ws, g := c.ws, c.g
	c.extendRead()
	ws.SetPongHandler(func(string) error { c.extendRead(); return nil })
	ws.SetPingHandler(func(data string) error {
		c.extendRead()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(g.cfg.WriteTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	var buf bytes.Buffer
	for {
		mt, r, err := ws.NextReader()
		if err != nil {
			c.closeWith(readClose(err))
			return false
		}
		c.extendRead()
		buf.Reset()
		n, err := buf.ReadFrom(io.LimitReader(r, g.cfg.MaxMessageSize+1))
		if err != nil {
			c.closeWith(readClose(err))
			return false
		}
		if n > g.cfg.MaxMessageSize {
			c.refuse(&protoError{Code: CodeTooLarge, Message: "message larger than the limit"})
			c.closeWith(closeInfo{code: CloseMessageTooBig, reason: reasonTooLarge, flush: true, frame: true})
			return true
		}
		if mt != websocket.TextMessage {
			if !c.refuse(&protoError{Code: CodeBadRequest, Message: "messages must be JSON text frames"}) {
				return true
			}
			continue
		}
		if !utf8.Valid(buf.Bytes()) {
			// RFC 6455 section 8.1: a text frame must be UTF-8.
			c.closeWith(closeInfo{code: CloseInvalidPayload, reason: reasonInvalidPayload, frame: true})
			return true
		}
		if !c.allow(time.Now()) {
			if !c.refuse(&protoError{Code: CodeRateLimited, Message: "too many messages; slow down"}) {
				return true
			}
			continue
		}
		cmd, perr := decodeCommand(buf.Bytes())
		if perr == nil {
			perr = c.handle(cmd)
		}
		if perr != nil && !c.refuse(perr) {
			return true
		}
	}
}

// drain discards input until the peer's close frame (or closeGrace), so
// the socket is closed with nothing unread (no TCP reset that could destroy
// the close frame on its way).
func (c *conn) drain() {
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			return
		}
	}
}

// readClose maps a read error to how the connection ends.
func readClose(err error) closeInfo {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		// The peer closed; gorilla already echoed its close frame.
		return closeInfo{code: ce.Code, reason: ce.Text}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return closeInfo{code: CloseHeartbeatTimeout, reason: reasonHeartbeat, frame: true}
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return closeInfo{code: CloseHeartbeatTimeout, reason: reasonHeartbeat, frame: true}
		}
		return closeInfo{code: websocket.CloseAbnormalClosure, reason: "read_error"}
	}
}

// handle executes one command.
func (c *conn) handle(cmd command) *protoError {
	switch cmd.Type {
	case cmdPing:
		c.push(replyFrame(cmd.ID, false))
	case cmdSubscribe:
		return c.stream.subscribe(c.m, cmd.ID, cmd.Node)
	case cmdUnsubscribe:
		return c.stream.unsubscribe(c.m, cmd.ID, cmd.Node)
	case cmdResume:
		c.stream.resume(c.m, resumePoint{set: true, since: *cmd.Since, stream: cmd.Stream}, c.g.cfg.Heartbeat.Seconds())
	}
	return nil
}

// push queues a per-connection frame; a full queue closes with 4000.
func (c *conn) push(frame []byte) {
	if !c.m.out.push(frame, false) {
		c.closeWith(closeInfo{code: CloseQueueOverflow, reason: reasonQueueOverflow, frame: true})
	}
}

// refuse sends an error message and counts a bad message. It returns false
// when that was one too many: the connection is then closing with 4103.
func (c *conn) refuse(e *protoError) bool {
	c.g.cfg.Metrics.badMessages.Inc()
	c.push(errorFrame(e))
	now := time.Now()
	cut := now.Add(-badMessageWindow)
	kept := c.bad[:0]
	for _, t := range c.bad {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	c.bad = kept
	if len(c.bad) >= c.g.cfg.MaxBadMessages {
		c.closeWith(closeInfo{code: ClosePolicyViolation, reason: reasonPolicyViolation, flush: true, frame: true})
		return false
	}
	c.bad = append(c.bad, now)
	return true
}

// allow takes one token from the command bucket.
func (c *conn) allow(now time.Time) bool {
	c.tokens = min(commandBurst, c.tokens+now.Sub(c.last).Seconds()*commandRate)
	c.last = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}
