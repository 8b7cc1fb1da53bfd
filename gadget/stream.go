package gadget

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Stream defaults.
const (
	// DefaultRingSize is the number of messages a Stream keeps for resume.
	DefaultRingSize = 1024
	// DefaultQueueSize is the number of live messages a connection may have
	// waiting before it is closed with 4000 (queue_overflow).
	DefaultQueueSize = 256
)

// StreamConfig configures a Stream. Zero values take the defaults.
type StreamConfig struct {
	// RingSize is how many broadcast messages are kept for resume
	// (0: DefaultRingSize).
	RingSize int
	// QueueSize bounds each attached connection's live queue
	// (0: DefaultQueueSize).
	QueueSize int
	// OnSubscribers, if set, is called with the number of attached
	// connections each time it changes. Calls are serialized, never made
	// under the Stream's lock, and carry the count at the time of the call
	// (a quick attach/detach pair may be reported once). It must not block
	// for long and must not attach or detach connections itself.
	OnSubscribers func(n int)
	// Metrics receives the resume counters (nil: unregistered metrics).
	Metrics *Metrics
	// Logger (nil: no logging).
	Logger *zap.Logger
	// OnMessage, if set, is called for every numbered broadcast message
	// (event, reconciled event, state, status) with the frame the Stream
	// just made and the node's state after it, in seq order, under the
	// Stream's lock: it must not block and must not call the Stream. The
	// Message's byte slices are shared with the Stream and must not be
	// modified. When OnMessage is set, the state passed to Event is
	// marshalled at once (instead of lazily) so that Message.State is
	// filled. End calls it once with Kind MessageEnd, Seq = last seq + 1
	// (a seq never given to a frame) and the End reason. Apply never calls
	// it.
	OnMessage func(Message)
	// Continue, if set, makes the new Stream continue another one (an owner
	// that went away, or a replica taking over): same ID, seq going on from
	// Continue.Snapshot.Seq, its identity, node states and status, and a
	// resume ring filled from Continue.Ring.
	Continue *Continue
}

// Stream is one agent Session's outbound channel to its browsers. It
// numbers every broadcast message (seq starts at 0 and grows by one per
// event, state or status message), keeps the last RingSize messages for
// resume and the current state of every node for snapshots, and fans every
// message out to the bounded queues of the attached connections without
// ever blocking the caller.
//
// Every message is JSON-encoded once; the same bytes go to every
// connection. The data of an event is marshalled when Event is called; the
// node state passed to Event is marshalled lazily, the first time a
// snapshot needs it, and cached until the node changes again (State's data
// is marshalled at once since it is broadcast). Values passed as data or
// state must not be modified after the call.
//
// A Stream is safe for concurrent use.
type Stream struct {
	ringSize  int
	queueSize int
	onSubs    func(int)
	metrics   *Metrics
	log       *zap.Logger
	onMessage func(Message)
	id        string // random (or continued); lets a client tell this Stream from a later one
	encoders  sync.Pool

	cbMu     sync.Mutex // serializes OnSubscribers calls
	reported int        // last count reported (guarded by cbMu)

	mu        sync.Mutex
	agent     string
	roles     []string
	allowed   map[string]struct{} // extra nodes a connection must subscribe to
	seq       int64               // last seq assigned; -1 before the first message
	ring      ring
	states    map[string]*nodeState
	order     []string // nodes with state, in the order they first got one
	status    Status
	hasStatus bool
	members   []*member
	ended     bool
	endCode   int
	endReason string // close text
	endArg    string // the reason End was called with
	// identPending: the identity changed since the last OnMessage call (or
	// none was made yet); the next Message carries it.
	identPending bool
}

// nodeState is the current state of one node.
type nodeState struct {
	value any
	enc   []byte // value's JSON; nil until a snapshot needs it
}

// member is the Stream's view of one attached connection.
type member struct {
	out  *outbox
	subs map[string]struct{} // subscribed extra nodes; guarded by Stream.mu
	// kick asks for the connection to be closed; it never blocks and may be
	// called under the Stream lock.
	kick func(code int, reason string, flush bool)
}

func newMember(queueSize int, kick func(code int, reason string, flush bool)) *member {
	return &member{out: newOutbox(queueSize), subs: make(map[string]struct{}), kick: kick}
}

// NewStream returns an empty Stream (seq -1, no state, no status), or,
// with cfg.Continue, a Stream that continues another (see Continue).
func NewStream(cfg StreamConfig) *Stream {
	if cfg.RingSize <= 0 {
		cfg.RingSize = DefaultRingSize
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand, Go 1.24+)
	s := &Stream{
		ringSize:     cfg.RingSize,
		queueSize:    cfg.QueueSize,
		onSubs:       cfg.OnSubscribers,
		metrics:      cfg.Metrics,
		log:          cfg.Logger,
		onMessage:    cfg.OnMessage,
		id:           hex.EncodeToString(id[:]),
		seq:          -1,
		ring:         ring{max: cfg.RingSize},
		states:       make(map[string]*nodeState),
		identPending: true,
	}
	s.encoders.New = func() any { return newEncoder() }
	if cfg.Continue != nil {
		s.continueFrom(cfg.Continue)
	}
	return s
}

// SetIdentity sets the agent and roles announced in welcome messages.
func (s *Stream) SetIdentity(loginID string, roles []string) {
	s.mu.Lock()
	s.setIdentityLocked(loginID, roles)
	s.mu.Unlock()
}

func (s *Stream) setIdentityLocked(loginID string, roles []string) {
	if s.agent == loginID && slices.Equal(s.roles, roles) {
		return
	}
	s.agent = loginID
	s.roles = slices.Clone(roles)
	s.identPending = true
}

// SetAllowedNodes sets the extra nodes (Team/{id}/Users, Queue/{id}) that
// connections of this Stream may subscribe to. Messages of these nodes go
// only to connections subscribed to them; every other node is a default
// node, delivered to every connection. Nodes that leave the set lose their
// subscriptions and their snapshot state.
func (s *Stream) SetAllowedNodes(nodes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setAllowedLocked(nodes)
}

func (s *Stream) setAllowedLocked(nodes []string) {
	next := make(map[string]struct{}, len(nodes))
	for _, n := range nodes {
		next[n] = struct{}{}
	}
	changed := len(next) != len(s.allowed)
	for old := range s.allowed {
		if _, ok := next[old]; ok {
			continue
		}
		changed = true
		for _, m := range s.members {
			delete(m.subs, old)
		}
		s.dropStateLocked(old)
	}
	s.allowed = next
	if changed {
		s.identPending = true
	}
}

// Event broadcasts one Finesse notification:
// {"type":"event","seq":N,"node","event","source","requestId","data"}.
// state is the node's full state after the notification (nil: unchanged);
// it becomes the node's snapshot state. If data cannot be marshalled the
// event is still sent, with "data":null, and the failure is logged.
func (s *Stream) Event(node, event, source, requestID string, data any, state any) {
	s.EventAt(time.Time{}, node, event, source, requestID, data, state)
}

// EventAt is Event for a notification that reached the relay at arrived:
// each connection's writer observes finesse_relay_event_relay_latency_seconds
// (arrived → written to the WebSocket) when it writes the frame. A zero
// arrived observes nothing.
func (s *Stream) EventAt(arrived time.Time, node, event, source, requestID string, data any, state any) {
	e := s.encoders.Get().(*encoder)
	e.buf.Reset()
	e.buf.Write(appendEventTail(e.buf.AvailableBuffer(), node, event, source, requestID))
	if err := e.appendData(data); err != nil {
		s.log.Error("event data cannot be marshalled; sending null", zap.String("node", node), zap.Error(err))
	}
	e.buf.WriteByte('}')
	var stateEnc []byte
	if s.onMessage != nil && state != nil {
		// OnMessage needs the state's JSON now: encode it here, outside
		// the lock, with the same encoder (after the frame's tail).
		n := e.buf.Len()
		if err := e.appendData(state); err != nil {
			s.log.Error("state cannot be marshalled; sending null", zap.String("node", node), zap.Error(err))
		}
		stateEnc = slices.Clone(e.buf.Bytes()[n:])
		e.buf.Truncate(n)
	}
	s.broadcastEvent(arrived, node, e.buf.Bytes(), state, stateEnc)
	s.putEncoder(e)
}

// broadcastEvent numbers an event frame whose tail (everything after the
// seq) is encoded, keeps it in the ring, makes state (when not nil) the
// node's snapshot state (stateEnc: its JSON, nil to marshal it lazily), and
// offers it to every connection.
func (s *Stream) broadcastEvent(arrived time.Time, node string, tail []byte, state any, stateEnc []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.seq++
	frame := make([]byte, 0, len(eventHead)+20+len(tail))
	frame = append(frame, eventHead...)
	frame = strconv.AppendInt(frame, s.seq, 10)
	frame = append(frame, tail...)
	s.ring.add(ringEntry{seq: s.seq, node: node, data: frame})
	if state != nil {
		s.setStateLocked(node, state, stateEnc)
	}
	s.fanoutLocked(node, frame, arrived)
	if s.onMessage != nil {
		s.onMessage(Message{Seq: s.seq, Kind: MessageEvent, Node: node, Frame: frame, State: stateEnc, Identity: s.identityMessageLocked()})
	}
}

// State broadcasts a fresh full state of node ({"type":"state"}) and makes
// it the node's snapshot state. A nil data (or one that marshals to null)
// removes the node from snapshots (the broadcast carries "data":null,
// which tells a browser the node no longer has a state).
func (s *Stream) State(node string, data any) {
	e := s.encoders.Get().(*encoder)
	e.buf.Reset()
	if err := e.appendData(data); err != nil {
		s.log.Error("state data cannot be marshalled; sending null", zap.String("node", node), zap.Error(err))
	}
	enc := slices.Clone(e.buf.Bytes())
	s.putEncoder(e)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.seq++
	frame := stateFrame(s.seq, node, enc)
	s.ring.add(ringEntry{seq: s.seq, node: node, data: frame})
	if data == nil || string(enc) == "null" {
		s.dropStateLocked(node)
	} else {
		s.setStateLocked(node, data, enc)
	}
	s.fanoutLocked(node, frame, time.Time{})
	if s.onMessage != nil {
		s.onMessage(Message{Seq: s.seq, Kind: MessageState, Node: node, Frame: frame, State: enc, Identity: s.identityMessageLocked()})
	}
}

// Status broadcasts the upstream status
// ({"type":"status","upstream","side","host"}) and remembers it: every new
// connection that is not resumed gets the latest status after its snapshot.
func (s *Stream) Status(upstream, side, host string) {
	st := Status{Upstream: upstream, Side: side, Host: host}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.seq++
	frame := statusFrame(s.seq, st)
	s.ring.add(ringEntry{seq: s.seq, data: frame})
	s.status, s.hasStatus = st, true
	s.fanoutLocked("", frame, time.Time{})
	if s.onMessage != nil {
		s.onMessage(Message{Seq: s.seq, Kind: MessageStatus, Frame: frame, Status: st, Identity: s.identityMessageLocked()})
	}
}

// End closes every attached connection and refuses new ones. The close
// code follows reason: "signed_out" → 4100, "session_expired" → 4101,
// "shutdown" (and any other reason) → 4102. Messages already queued are
// flushed before the close frame. Only the first call has an effect.
func (s *Stream) End(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.endLocked(reason)
	if s.onMessage != nil {
		s.onMessage(Message{Seq: s.seq + 1, Kind: MessageEnd, Reason: reason, Identity: s.identityMessageLocked()})
	}
}

func (s *Stream) endLocked(reason string) {
	code, text := endClose(reason)
	s.ended, s.endCode, s.endReason, s.endArg = true, code, text, reason
	for _, m := range s.members {
		m.kick(code, text, true)
	}
	// Nothing will read these again; let them go.
	s.ring = ring{}
	s.states, s.order = nil, nil
}

// Subscribers returns the number of attached connections.
func (s *Stream) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.members)
}

// ---- used by the Gateway ----

// endedCode reports whether the Stream ended and with which close code.
func (s *Stream) endedCode() (bool, int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended, s.endCode, s.endReason
}

// resumePoint is what a connection asks to resume from.
type resumePoint struct {
	set    bool   // false: a fresh connection (snapshot)
	since  int64  // last seq the client has
	stream string // welcome.stream the client saw ("" = not checked)
}

// attach registers m and queues its first batch: welcome, then either the
// replay of the ring after rp.since or a snapshot of every node m may see
// and the latest status. It fails with ErrStreamEnded after End.
func (s *Stream) attach(m *member, rp resumePoint, heartbeat float64) error {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return ErrStreamEnded
	}
	m.out.pushBatch(s.batchLocked(m, rp, heartbeat))
	s.members = append(s.members, m)
	s.mu.Unlock()
	s.notifySubscribers()
	return nil
}

// detach unregisters m (idempotent).
func (s *Stream) detach(m *member) {
	s.mu.Lock()
	i := slices.Index(s.members, m)
	if i >= 0 {
		last := len(s.members) - 1
		s.members[i] = s.members[last]
		s.members[last] = nil
		s.members = s.members[:last]
	}
	s.mu.Unlock()
	if i >= 0 {
		s.notifySubscribers()
	}
}

// resume answers a resume command: queued broadcast messages and any
// unwritten earlier batch are dropped (the new batch covers them) and the
// batch is queued.
func (s *Stream) resume(m *member, rp resumePoint, heartbeat float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	m.out.replaceBatch(s.batchLocked(m, rp, heartbeat))
}

// subscribe adds node to m's subscriptions and queues the reply, then the
// node's current state (with the current seq) if there is one.
func (s *Stream) subscribe(m *member, id, node string) *protoError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.allowed[node]; !ok {
		return &protoError{Code: CodeForbidden, Message: "node is not available to this session", ID: id}
	}
	m.subs[node] = struct{}{}
	ok := m.out.push(replyFrame(id, true), false)
	if st := s.states[node]; st != nil && ok && !s.ended {
		ok = m.out.push(stateFrame(s.seq, node, s.encodedLocked(node, st)), false)
	}
	if !ok {
		m.kick(CloseQueueOverflow, reasonQueueOverflow, false)
	}
	return nil
}

// unsubscribe removes node from m's subscriptions (idempotent) and queues
// the reply.
func (s *Stream) unsubscribe(m *member, id, node string) *protoError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.allowed[node]; !ok {
		return &protoError{Code: CodeForbidden, Message: "node is not available to this session", ID: id}
	}
	delete(m.subs, node)
	if !m.out.push(replyFrame(id, true), false) {
		m.kick(CloseQueueOverflow, reasonQueueOverflow, false)
	}
	return nil
}

// ---- internals (s.mu held) ----

// batchLocked builds the welcome and what follows it for m.
func (s *Stream) batchLocked(m *member, rp resumePoint, heartbeat float64) [][]byte {
	cur := s.seq
	resumed := rp.set && (rp.stream == "" || rp.stream == s.id) && rp.since <= cur &&
		(rp.since == cur || s.ring.holds(rp.since+1))
	frames := [][]byte{welcomeFrame(s.agent, s.roles, cur, resumed, heartbeat, s.id)}
	if resumed {
		s.ring.from(rp.since+1, func(e *ringEntry) {
			if s.visibleLocked(m, e.node) {
				frames = append(frames, e.data)
			}
		})
		s.metrics.resume("replayed")
		return frames
	}
	for _, node := range s.order {
		if s.visibleLocked(m, node) {
			frames = append(frames, stateFrame(cur, node, s.encodedLocked(node, s.states[node])))
		}
	}
	if s.hasStatus {
		frames = append(frames, statusFrame(cur, s.status))
	}
	if rp.set {
		s.metrics.resume("state")
	}
	return frames
}

// visibleLocked: status messages ("" node) and default nodes go to every
// connection; allowed extra nodes only to subscribed ones.
func (s *Stream) visibleLocked(m *member, node string) bool {
	if node == "" {
		return true
	}
	if _, restricted := s.allowed[node]; !restricted {
		return true
	}
	_, ok := m.subs[node]
	return ok
}

// fanoutLocked offers frame to every connection that may see node.
func (s *Stream) fanoutLocked(node string, frame []byte, arrived time.Time) {
	restricted := false
	if node != "" && len(s.allowed) > 0 {
		_, restricted = s.allowed[node]
	}
	for _, m := range s.members {
		if restricted {
			if _, ok := m.subs[node]; !ok {
				continue
			}
		}
		if !m.out.pushEvent(frame, arrived) {
			m.kick(CloseQueueOverflow, reasonQueueOverflow, false)
		}
	}
}

func (s *Stream) setStateLocked(node string, v any, enc []byte) {
	st := s.states[node]
	if st == nil {
		st = &nodeState{}
		s.states[node] = st
		s.order = append(s.order, node)
	}
	st.value, st.enc = v, enc
}

func (s *Stream) dropStateLocked(node string) {
	if _, ok := s.states[node]; !ok {
		return
	}
	delete(s.states, node)
	if i := slices.Index(s.order, node); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

// encodedLocked returns st's JSON, marshalling it on first use.
func (s *Stream) encodedLocked(node string, st *nodeState) []byte {
	if st.enc != nil {
		return st.enc
	}
	e := s.encoders.Get().(*encoder)
	e.buf.Reset()
	if err := e.appendData(st.value); err != nil {
		s.log.Error("state cannot be marshalled; sending null", zap.String("node", node), zap.Error(err))
	}
	st.enc = slices.Clone(e.buf.Bytes())
	s.putEncoder(e)
	return st.enc
}

func (s *Stream) putEncoder(e *encoder) {
	if e.buf.Cap() <= maxPooledBuffer {
		s.encoders.Put(e)
	}
}

// notifySubscribers reports the current count to OnSubscribers if it
// changed since the last report. Serialized by cbMu so reports arrive in
// order and the last one is always the current count.
func (s *Stream) notifySubscribers() {
	if s.onSubs == nil {
		return
	}
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	s.mu.Lock()
	n := len(s.members)
	s.mu.Unlock()
	if n == s.reported {
		return
	}
	s.reported = n
	s.onSubs(n)
}

// ---- resume ring ----

// ringEntry is one broadcast message kept for resume.
type ringEntry struct {
	seq  int64
	node string // "" for status messages
	data []byte
}

// ring keeps the last max broadcast messages; their seqs are consecutive,
// so the entry of a seq is found by arithmetic. The buffer grows on demand
// (doubling from ringInitial up to max), so an idle Session holds no ring
// at all and a quiet one a small one.
type ring struct {
	buf   []ringEntry
	max   int // capacity limit (RingSize); 0 keeps nothing
	start int // index of the oldest entry
	n     int
}

// ringInitial is the first buffer a ring allocates.
const ringInitial = 16

func (r *ring) add(e ringEntry) {
	if r.max == 0 {
		return
	}
	if r.n == len(r.buf) && len(r.buf) < r.max {
		r.grow()
	}
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = e
		r.n++
		return
	}
	r.buf[r.start] = e
	r.start = (r.start + 1) % len(r.buf)
}

// grow doubles the buffer (within max), oldest entry first.
func (r *ring) grow() {
	next := make([]ringEntry, min(max(ringInitial, 2*len(r.buf)), r.max))
	for i := range r.n {
		next[i] = r.buf[(r.start+i)%len(r.buf)]
	}
	r.buf, r.start = next, 0
}

// holds reports whether the message with seq is in the ring.
func (r *ring) holds(seq int64) bool {
	if r.n == 0 {
		return false
	}
	first := r.buf[r.start].seq
	return seq >= first && seq < first+int64(r.n)
}

// from calls fn for every entry with seq >= seq, oldest first.
func (r *ring) from(seq int64, fn func(*ringEntry)) {
	if r.n == 0 {
		return
	}
	off := max(seq-r.buf[r.start].seq, 0)
	for i := int(off); i < r.n; i++ {
		fn(&r.buf[(r.start+i)%len(r.buf)])
	}
}
