package boshd

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"finesse-relay/xmpp/bosh/wire"
)

// session is one BOSH session: the rid window, the held requests, and the
// two queues between the HTTP side and the XMPP server's pipe.
type session struct {
	srv        *Server
	log        *zap.Logger
	sid        string
	hold       int
	requests   int
	wait       time.Duration
	inactivity time.Duration
	lang       string
	maxQueue   int

	conn       *Conn    // the XMPP server's side, handed out by Accept
	pipe       net.Conn // our side
	readerDone chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change

	lastRID uint64            // highest rid processed
	held    []*pending        // held requests, oldest (lowest rid) first
	cache   map[uint64][]byte // recent responses by rid, for retransmissions

	out      [][]byte // server → client elements not yet sent
	outBytes int
	in       [][]byte // client → server chunks not yet written to the pipe
	inBytes  int
	inClosed bool // the client terminated: the writer drains in, then ends

	headerSeen bool   // the XMPP server sent its stream header
	streamFrom string // its from
	streamID   string // its id (authid)
	prefixes   map[string]string

	ended   bool   // the XMPP server's stream is over; terminate is due
	endCond string // condition for the terminate body
	gone    bool   // the session is over; requests get item-not-found
	idleGen int    // generation of the inactivity timer
	idle    *time.Timer
}

// pending is one held HTTP request.
type pending struct {
	rid      uint64
	creation bool
	ch       chan []byte // receives the response body (buffered)
}

func newSession(srv *Server, sid string, hold, requests int, wait time.Duration, lang, remote string, rid uint64) *session {
	ours, theirs := net.Pipe()
	s := &session{
		srv:        srv,
		log:        srv.log,
		sid:        sid,
		hold:       hold,
		requests:   requests,
		wait:       wait,
		inactivity: srv.cfg.Inactivity,
		lang:       lang,
		maxQueue:   queueFactor * int(srv.cfg.MaxBodySize),
		conn:       &Conn{Conn: theirs, sid: sid, remote: addr(remote)},
		pipe:       ours,
		readerDone: make(chan struct{}),
		changed:    make(chan struct{}),
		lastRID:    rid,
		cache:      make(map[uint64][]byte),
	}
	s.enqueueLocked([]byte(s.streamHeader()))
	return s
}

// streamHeader is the client stream header written to the XMPP server at
// session creation and at each restart.
func (s *session) streamHeader() string {
	return "<?xml version='1.0'?><stream:stream xmlns='" + wire.NSClient + "' xmlns:stream='" + wire.NSStream +
		"' version='1.0'" + attr("to", s.srv.cfg.Domain) + attr("xml:lang", s.lang) + ">"
}

func (s *session) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// enqueueLocked queues a chunk for the XMPP server; false if the queue is
// full.
func (s *session) enqueueLocked(b []byte) bool {
	if s.inBytes+len(b) > s.maxQueue && s.inBytes > 0 {
		return false
	}
	s.in = append(s.in, b)
	s.inBytes += len(b)
	s.broadcastLocked()
	return true
}

// handle processes a request of this session: rid window, then payload,
// restart or terminate, then holds the request.
func (s *session) handle(w http.ResponseWriter, r *http.Request, req *request) {
	s.mu.Lock()
	var wait *time.Timer
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	for {
		if s.gone {
			b, ok := s.cache[req.rid]
			s.mu.Unlock()
			if !ok {
				b = terminateBody(conditionItemNotFound, nil)
			}
			writeBody(w, http.StatusOK, b)
			return
		}
		if req.rid <= s.lastRID {
			if b, ok := s.cache[req.rid]; ok {
				s.mu.Unlock()
				writeBody(w, http.StatusOK, b)
				return
			}
			if p := s.supersedeLocked(req.rid); p != nil {
				s.mu.Unlock()
				s.await(w, r, p)
				return
			}
			s.killLocked(conditionItemNotFound, "rid already answered and no longer cached", req.rid)
			s.mu.Unlock()
			writeBody(w, http.StatusOK, terminateBody(conditionItemNotFound, nil))
			return
		}
		if req.rid > s.lastRID+uint64(s.requests) { // #nosec G115 -- requests is the negotiated BOSH requests value (1..2)
			s.killLocked(conditionItemNotFound, "rid beyond the window", req.rid)
			s.mu.Unlock()
			writeBody(w, http.StatusOK, terminateBody(conditionItemNotFound, nil))
			return
		}
		if req.rid == s.lastRID+1 {
			break
		}
		// Within the window but ahead of a missing request: wait for it.
		if wait == nil {
			wait = time.NewTimer(s.wait)
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		case <-wait.C:
			s.mu.Lock()
			s.killLocked(conditionItemNotFound, "missing rid never arrived", req.rid)
			s.mu.Unlock()
			writeBody(w, http.StatusOK, terminateBody(conditionItemNotFound, nil))
			return
		}
		s.mu.Lock()
	}

	s.lastRID = req.rid
	s.idleGen++
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
	s.broadcastLocked() // requests waiting for this rid

	if req.typ == "terminate" {
		s.clientTerminateLocked(req)
		b := terminateBody("", nil)
		s.cache[req.rid] = b
		s.mu.Unlock()
		writeBody(w, http.StatusOK, b)
		return
	}
	var chunk []byte
	if req.restart {
		chunk = []byte(s.streamHeader())
	} else if len(req.payload) > 0 {
		chunk = bytes.Join(req.payload, nil)
	}
	if chunk != nil && !s.enqueueLocked(chunk) {
		s.killLocked(conditionPolicyViolation, "client outpaces the XMPP server", req.rid)
		s.mu.Unlock()
		writeBody(w, http.StatusOK, terminateBody(conditionPolicyViolation, nil))
		return
	}
	p := s.holdLocked(req.rid, false)
	s.mu.Unlock()
	s.await(w, r, p)
}

// holdLocked holds the request with rid (the highest processed so far) and
// lets the dispatcher answer what it can.
func (s *session) holdLocked(rid uint64, creation bool) *pending {
	p := &pending{rid: rid, creation: creation, ch: make(chan []byte, 1)}
	s.held = append(s.held, p)
	s.dispatchLocked()
	return p
}

// await waits until the dispatcher answers p, or wait passes, and writes the
// answer.
func (s *session) await(w http.ResponseWriter, r *http.Request, p *pending) {
	t := time.NewTimer(s.wait)
	defer t.Stop()
	var b []byte
	select {
	case b = <-p.ch:
	case <-t.C:
		s.mu.Lock()
		if s.removeHeldLocked(p) {
			if p.creation && !s.headerSeen {
				s.killLocked(conditionRemoteConnectionFailed, "the XMPP server sent no stream header", p.rid)
				b = terminateBody(conditionRemoteConnectionFailed, nil)
			} else {
				b = s.bodyLocked(p, nil)
			}
			s.cache[p.rid] = b
			s.armIdleLocked()
		} else {
			b = <-p.ch
		}
		s.mu.Unlock()
	case <-r.Context().Done():
		// The client went away. Keep an empty answer for a retransmission;
		// no payload was given to this request.
		s.mu.Lock()
		if s.removeHeldLocked(p) {
			s.cache[p.rid] = s.bodyLocked(p, nil)
			s.armIdleLocked()
		}
		s.mu.Unlock()
		return
	}
	writeBody(w, http.StatusOK, b)
}

// supersedeLocked handles a retransmitted rid that is still held: the new
// request takes the old one's place and the old one is answered empty.
func (s *session) supersedeLocked(rid uint64) *pending {
	for i, old := range s.held {
		if old.rid == rid {
			p := &pending{rid: rid, creation: old.creation, ch: make(chan []byte, 1)}
			s.held[i] = p
			old.ch <- responseBody("", nil)
			return p
		}
	}
	return nil
}

func (s *session) removeHeldLocked(p *pending) bool {
	for i, h := range s.held {
		if h == p {
			s.held = append(s.held[:i], s.held[i+1:]...)
			return true
		}
	}
	return false
}

// bodyLocked builds the response for p with payload; the session creation
// response carries the session attributes.
func (s *session) bodyLocked(p *pending, payload [][]byte) []byte {
	if !p.creation {
		return responseBody("", payload)
	}
	from := s.streamFrom
	if from == "" {
		from = s.srv.cfg.Domain
	}
	attrs := attr("sid", s.sid) +
		attr("wait", strconv.Itoa(int(s.wait/time.Second))) +
		attr("requests", strconv.Itoa(s.requests)) +
		attr("hold", strconv.Itoa(s.hold)) +
		attr("inactivity", strconv.Itoa(int(s.inactivity/time.Second))) +
		attr("polling", strconv.Itoa(polling)) +
		attr("ver", "1.6") + attr("from", from) + attr("authid", s.streamID) + attr("secure", "true") +
		attr("xmpp:version", "1.0") + attr("xmpp:restartlogic", "true") + attr("xmlns:xmpp", wire.NSXBOSH)
	return responseBody(attrs, payload)
}

// respondLocked answers the oldest held request with body.
func (s *session) respondLocked(body []byte) {
	p := s.held[0]
	s.held = s.held[1:]
	s.cache[p.rid] = body
	for rid := range s.cache {
		if rid+uint64(2*s.requests) < s.lastRID { // #nosec G115 -- requests is the negotiated BOSH requests value (1..2)
			delete(s.cache, rid)
		}
	}
	p.ch <- body
	s.armIdleLocked()
}

// takeOutLocked removes up to MaxBodySize of queued output (at least one
// element).
func (s *session) takeOutLocked() [][]byte {
	var payload [][]byte
	size := 0
	for len(s.out) > 0 {
		el := s.out[0]
		if len(payload) > 0 && int64(size+len(el)) > s.srv.cfg.MaxBodySize {
			break
		}
		payload = append(payload, el)
		size += len(el)
		s.out = s.out[1:]
	}
	s.outBytes -= size
	s.broadcastLocked() // the reader may be waiting for room
	return payload
}

// dispatchLocked answers held requests: with queued output, with the
// terminate when the XMPP stream is over, or empty when more than hold
// requests are held.
func (s *session) dispatchLocked() {
	for len(s.held) > 0 {
		p := s.held[0]
		switch {
		case s.gone:
			s.respondLocked(terminateBody(s.endCond, nil))
		case p.creation && !s.headerSeen && !s.ended:
			return
		case s.ended:
			payload := s.takeOutLocked()
			if len(s.out) > 0 {
				s.respondLocked(s.bodyLocked(p, payload))
				continue
			}
			var b []byte
			if p.creation {
				b = terminateBody(conditionRemoteConnectionFailed, payload)
			} else {
				b = terminateBody(s.endCond, payload)
			}
			s.respondLocked(b)
			s.closeLocked()
		case len(s.out) > 0:
			s.respondLocked(s.bodyLocked(p, s.takeOutLocked()))
		case len(s.held) > s.hold:
			s.respondLocked(s.bodyLocked(p, nil))
		default:
			return
		}
	}
}

// armIdleLocked starts the inactivity timer when no request is held.
func (s *session) armIdleLocked() {
	if len(s.held) > 0 || s.gone || s.idle != nil {
		return
	}
	s.idleGen++
	gen := s.idleGen
	s.idle = time.AfterFunc(s.inactivity, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if gen != s.idleGen || len(s.held) > 0 || s.gone {
			return
		}
		s.log.Debug("session expired", zap.Duration("inactivity", s.inactivity))
		s.endCond = ""
		s.closeLocked()
	})
}

// killLocked ends the session because of a client error.
func (s *session) killLocked(cond, why string, rid uint64) {
	s.log.Debug("terminating session", zap.String("condition", cond), zap.String("why", why), zap.Uint64("rid", rid))
	s.endCond = cond
	s.closeLocked()
}

// closeLocked ends the session at once: held requests get the terminate,
// the XMPP server's conn is closed, the session is forgotten.
func (s *session) closeLocked() {
	if s.gone {
		return
	}
	s.gone = true
	s.ended = true
	s.dispatchLocked()
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
	s.pipe.Close() // #nosec G104 -- closing the session's pipe while ending it; nothing to do on error
	s.srv.remove(s.sid)
	s.broadcastLocked()
}

// clientTerminateLocked handles type='terminate' from the client: the
// payload and </stream:stream> go to the XMPP server, which gets closeGrace
// to close its side; held requests get the terminate.
func (s *session) clientTerminateLocked(req *request) {
	chunk := bytes.Join(append(req.payload, []byte("</stream:stream>")), nil)
	s.in = append(s.in, chunk)
	s.inBytes += len(chunk)
	s.inClosed = true
	s.gone = true
	s.ended = true
	s.endCond = ""
	s.dispatchLocked()
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
	s.srv.remove(s.sid)
	s.broadcastLocked()
}

// shutdown ends the session with cond (server shutdown, Accept timeout).
func (s *session) shutdown(cond string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.gone {
		s.endCond = cond
		s.closeLocked()
	}
	s.pipe.Close() // #nosec G104 -- closing the session's pipe while ending it; nothing to do on error
}

// writeLoop writes the client's chunks to the XMPP server in order. It ends
// when the pipe is closed, or after the client's terminate has been written
// and the XMPP server closed its side (or closeGrace passed).
func (s *session) writeLoop() {
	defer s.srv.wg.Done()
	for {
		s.mu.Lock()
		for len(s.in) == 0 && !s.inClosed && !s.gone {
			ch := s.changed
			s.mu.Unlock()
			<-ch
			s.mu.Lock()
		}
		if len(s.in) == 0 {
			draining := s.inClosed
			s.mu.Unlock()
			if draining {
				t := time.NewTimer(closeGrace)
				select {
				case <-s.readerDone:
				case <-t.C:
				}
				t.Stop()
				s.pipe.Close() // #nosec G104 -- closing the session's pipe while ending it; nothing to do on error
			}
			return
		}
		chunk := s.in[0]
		s.in = s.in[1:]
		s.inBytes -= len(chunk)
		draining := s.inClosed
		s.mu.Unlock()
		if draining {
			// The session is over: an XMPP server that stops reading must
			// not keep this goroutine.
			_ = s.pipe.SetWriteDeadline(time.Now().Add(closeGrace))
		}
		if _, err := s.pipe.Write(chunk); err != nil {
			s.serverGone(err)
			return
		}
	}
}

// readLoop reads the XMPP server's stream, splits it into top-level elements
// and queues them for the client. It ends when the pipe is closed.
func (s *session) readLoop() {
	defer s.srv.wg.Done()
	defer close(s.readerDone)
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 4096)
	for {
		n, err := s.pipe.Read(tmp)
		buf = append(buf, tmp[:n]...)
		consumed, ok := s.consume(buf)
		buf = append(buf[:0], buf[consumed:]...)
		if !ok {
			s.pipe.Close() // #nosec G104 -- closing the session's pipe while ending it; nothing to do on error
			return
		}
		if int64(len(buf)) > s.srv.cfg.MaxBodySize {
			s.log.Warn("XMPP server wrote an element larger than MaxBodySize")
			s.serverGone(errProtocol)
			s.pipe.Close() // #nosec G104 -- closing the session's pipe while ending it; nothing to do on error
			return
		}
		if err != nil {
			s.serverGone(err)
			return
		}
	}
}

// consume queues every complete item of buf and returns the bytes used; ok
// is false when reading should stop.
func (s *session) consume(buf []byte) (used int, ok bool) {
	for used < len(buf) {
		kind, n, err := wire.ScanItem(buf[used:])
		if err != nil {
			s.log.Warn("malformed XMPP server output", zap.Error(err))
			s.serverGone(err)
			return used, false
		}
		if kind == wire.ItemNeedMore {
			return used, true
		}
		item := buf[used : used+n]
		used += n
		switch kind {
		case wire.ItemStreamStart:
			h, err := wire.ParseStreamHeader(item)
			if err != nil {
				s.serverGone(err)
				return used, false
			}
			s.mu.Lock()
			s.headerSeen, s.streamFrom, s.streamID, s.prefixes = true, h.From, h.ID, h.Prefixes
			s.dispatchLocked()
			s.mu.Unlock()
		case wire.ItemStreamEnd:
			s.mu.Lock()
			s.ended = true
			s.dispatchLocked()
			s.mu.Unlock()
		case wire.ItemElement:
			s.mu.Lock()
			el := wire.WithNamespaces(bytes.Clone(item), wire.NSClient, s.prefixes)
			for s.outBytes > 0 && s.outBytes+len(el) > s.maxQueue && !s.gone {
				ch := s.changed
				s.mu.Unlock()
				<-ch
				s.mu.Lock()
			}
			if s.gone {
				// Nobody will read it (the client terminated); keep
				// draining so the XMPP server can finish.
				s.mu.Unlock()
				continue
			}
			s.out = append(s.out, el)
			s.outBytes += len(el)
			if name := string(wire.TagName(el)); name == "stream:error" {
				s.ended = true
				s.endCond = conditionRemoteStreamError
			}
			s.dispatchLocked()
			s.mu.Unlock()
		}
	}
	return used, true
}

// serverGone records that the XMPP server's side ended (closed, or failed):
// after </stream:stream> that is a normal end, else remote-connection-failed.
func (s *session) serverGone(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return
	}
	if !s.ended {
		s.log.Debug("XMPP server side ended", zap.Error(err))
		s.ended = true
		s.endCond = conditionRemoteConnectionFailed
	}
	s.dispatchLocked()
	if !s.gone && len(s.held) == 0 {
		// Nobody to tell now; the next request gets the terminate, or the
		// session expires.
		s.armIdleLocked()
	}
}
