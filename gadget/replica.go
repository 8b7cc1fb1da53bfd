package gadget

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Several active relay instances share one agent's Stream: the instance
// that runs the agent's upstream session (the owner) numbers every message
// and hands it to StreamConfig.OnMessage, which appends it to a store;
// every other instance with tabs of that agent runs a replica Stream
// (NewStream with Continue from a Snapshot) and feeds it the stored
// messages with Apply. A replica gives its tabs the same frames with the
// same seq and welcome stream id, resumes them from its own ring and
// snapshots them from its own node states. When the owner goes away,
// another instance continues the Stream (NewStream with Continue), so no
// tab sees a gap.

// MessageKind says what a Message is.
type MessageKind uint8

// Message kinds.
const (
	MessageEvent  MessageKind = 1 // an event frame (also reconciled events)
	MessageState  MessageKind = 2 // a state frame
	MessageStatus MessageKind = 3 // a status frame
	MessageEnd    MessageKind = 4 // the Stream ended (End); not a frame
)

// String returns the kind's name ("event", "state", "status", "end").
func (k MessageKind) String() string {
	switch k {
	case MessageEvent:
		return "event"
	case MessageState:
		return "state"
	case MessageStatus:
		return "status"
	case MessageEnd:
		return "end"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Identity is what welcome messages announce (Agent, Roles: SetIdentity)
// and which extra nodes connections may subscribe to (Allowed:
// SetAllowedNodes' nodes, sorted).
type Identity struct {
	Agent   string   `json:"agent"`
	Roles   []string `json:"roles,omitempty"`
	Allowed []string `json:"allowed,omitempty"`
}

// Status is an upstream status as published by Stream.Status.
type Status struct {
	Upstream string `json:"upstream"`
	Side     string `json:"side"`
	Host     string `json:"host"`
}

// Message is one numbered message of a Stream as another instance needs it
// to reproduce the Stream (see StreamConfig.OnMessage and Stream.Apply).
type Message struct {
	// Seq is the message's seq; for MessageEnd the last seq + 1, never
	// given to a frame.
	Seq  int64
	Kind MessageKind
	// Node is the event's or state's node ("" for status and end).
	Node string
	// Frame is the exact JSON frame the Stream sent to its connections
	// (nil for end).
	Frame []byte
	// State, for an event: the node's snapshot state JSON after it (nil:
	// unchanged). For a state: the data JSON ("null": the node left
	// snapshots). Nil for status and end.
	State []byte
	// Status is, for a status message, what Stream.Status was called with.
	Status Status
	// Reason is, for end, the reason End was called with.
	Reason string
	// Identity is set on the first message of a Stream and on the first
	// message after SetIdentity or SetAllowedNodes changed it.
	Identity *Identity
}

// NodeState is the snapshot state of one node.
type NodeState struct {
	Node  string
	State []byte // the state's JSON
}

// Snapshot is a Stream's state at one seq: what a replica or a new owner
// starts from (see Continue).
type Snapshot struct {
	// ID is the Stream's id (welcome.stream).
	ID string
	// Seq is the last seq assigned (-1: none).
	Seq int64
	// Identity is the Stream's identity and allowed nodes.
	Identity Identity
	// Nodes holds the snapshot state of every node, in the Stream's order
	// (the order in which the nodes first got a state).
	Nodes []NodeState
	// Status is the latest status, nil if none.
	Status *Status
	// Ended reports that the Stream ended, with the reason End was called
	// with.
	Ended  bool
	Reason string
}

// Continue is what a Stream continues from (StreamConfig.Continue).
type Continue struct {
	// Snapshot is the other Stream's state; the new Stream takes its ID,
	// Seq (the next message is Seq+1), identity, node states, status and
	// end.
	Snapshot Snapshot
	// Ring holds earlier messages of the other Stream (seqs consecutive,
	// ending at Snapshot.Seq; may be empty) that fill the resume ring, so
	// that a tab resuming with an older seq is replayed rather than
	// snapshotted. Messages that do not fit (kind end, no frame, a seq out
	// of line) and everything before them are left out; only the last
	// RingSize are kept.
	Ring []Message
}

// ID returns the Stream's id, which welcome messages announce as "stream".
func (s *Stream) ID() string { return s.id }

// Snapshot returns the Stream's state at its current seq, taken under its
// lock. Node states not marshalled yet are marshalled now; the returned
// slices are the caller's.
func (s *Stream) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{
		ID:       s.id,
		Seq:      s.seq,
		Identity: s.identityLocked(),
		Ended:    s.ended,
		Reason:   s.endArg,
	}
	if len(s.order) > 0 {
		snap.Nodes = make([]NodeState, 0, len(s.order))
		for _, node := range s.order {
			snap.Nodes = append(snap.Nodes, NodeState{Node: node, State: slices.Clone(s.encodedLocked(node, s.states[node]))})
		}
	}
	if s.hasStatus {
		st := s.status
		snap.Status = &st
	}
	return snap
}

// Apply makes a replica Stream reproduce a message numbered by the owner
// (a Message from the owner's OnMessage, possibly through EncodeMessage
// and DecodeMessage):
//
//   - m.Seq <= the current seq: a duplicate; ignored, Apply returns false.
//   - m.Seq == current+1: the frame is kept in the ring, the node's state
//     or the status is updated exactly as the owner did, and the frame is
//     offered to the connections that may see m.Node (the same visibility
//     rules as the owner's); Apply returns true.
//   - m.Seq > current+1 (messages were lost, e.g. trimmed from the store):
//     the ring is emptied first, so a tab resuming from before the gap
//     gets a snapshot, then as above.
//
// m.Identity, when set, is applied first (SetIdentity, SetAllowedNodes).
// A MessageEnd ends the Stream with m.Reason (its seq is not assigned).
// After End, and for an unknown kind, Apply returns false. Apply does not
// call OnMessage. A replica must not be given Event, EventAt,
// ReconciledEvent, State or Status calls: its seqs are the owner's. The
// Message's byte slices must not be modified afterwards.
func (s *Stream) Apply(m Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || m.Seq <= s.seq {
		return false
	}
	switch m.Kind {
	case MessageEvent, MessageState, MessageStatus, MessageEnd:
	default:
		s.log.Warn("replica message of unknown kind ignored", zap.Int64("seq", m.Seq), zap.Uint8("kind", uint8(m.Kind)))
		return false
	}
	if m.Seq > s.seq+1 && m.Kind != MessageEnd {
		s.log.Info("replica messages lost; resume ring emptied", zap.Int64("have", s.seq), zap.Int64("got", m.Seq))
		s.ring = ring{max: s.ringSize}
	}
	if m.Identity != nil {
		s.setIdentityLocked(m.Identity.Agent, m.Identity.Roles)
		s.setAllowedLocked(m.Identity.Allowed)
	}
	if m.Kind == MessageEnd {
		s.endLocked(m.Reason)
		return true
	}
	s.seq = m.Seq
	node := m.Node
	if m.Kind == MessageStatus {
		node = ""
	}
	s.ring.add(ringEntry{seq: m.Seq, node: node, data: m.Frame})
	switch m.Kind {
	case MessageEvent:
		if m.State != nil {
			s.setStateLocked(node, nil, m.State)
		}
	case MessageState:
		if m.State == nil || string(m.State) == "null" {
			s.dropStateLocked(node)
		} else {
			s.setStateLocked(node, nil, m.State)
		}
	case MessageStatus:
		s.status, s.hasStatus = m.Status, true
	}
	s.fanoutLocked(node, m.Frame, time.Time{})
	return true
}

// continueFrom sets up a new Stream (not yet shared) from c.
func (s *Stream) continueFrom(c *Continue) {
	snap := &c.Snapshot
	if snap.ID != "" {
		s.id = snap.ID
	}
	s.seq = max(snap.Seq, -1)
	s.agent = snap.Identity.Agent
	s.roles = slices.Clone(snap.Identity.Roles)
	s.allowed = make(map[string]struct{}, len(snap.Identity.Allowed))
	for _, n := range snap.Identity.Allowed {
		s.allowed[n] = struct{}{}
	}
	if snap.Status != nil {
		s.status, s.hasStatus = *snap.Status, true
	}
	if snap.Ended {
		s.endLocked(snap.Reason)
		return
	}
	for _, ns := range snap.Nodes {
		if ns.Node == "" || ns.State == nil {
			continue
		}
		s.setStateLocked(ns.Node, nil, slices.Clone(ns.State))
	}
	// The usable ring: the longest run of frames with consecutive seqs
	// that ends at snap.Seq.
	first := len(c.Ring)
	for i := len(c.Ring) - 1; i >= 0; i-- {
		m := &c.Ring[i]
		want := s.seq - int64(len(c.Ring)-1-i)
		if m.Seq != want || m.Frame == nil || m.Kind < MessageEvent || m.Kind > MessageStatus {
			break
		}
		first = i
	}
	if first > 0 && len(c.Ring) > 0 {
		s.log.Warn("continued ring does not end at the snapshot's seq in one run; earlier messages left out",
			zap.Int("given", len(c.Ring)), zap.Int("kept", len(c.Ring)-first))
	}
	for _, m := range c.Ring[first:] {
		node := m.Node
		if m.Kind == MessageStatus {
			node = ""
		}
		s.ring.add(ringEntry{seq: m.Seq, node: node, data: m.Frame})
	}
}

// identityLocked returns the Stream's identity (copies).
func (s *Stream) identityLocked() Identity {
	id := Identity{Agent: s.agent, Roles: slices.Clone(s.roles)}
	if len(s.allowed) > 0 {
		id.Allowed = make([]string, 0, len(s.allowed))
		for n := range s.allowed {
			id.Allowed = append(id.Allowed, n)
		}
		slices.Sort(id.Allowed)
	}
	return id
}

// identityMessageLocked returns the identity to attach to the next
// OnMessage call: nil unless it changed since the last one.
func (s *Stream) identityMessageLocked() *Identity {
	if !s.identPending {
		return nil
	}
	s.identPending = false
	id := s.identityLocked()
	return &id
}

// ---- the byte form of messages and snapshots (for a store) ----

// Limits of DecodeMessage and DecodeSnapshot.
const (
	// MaxMessageBytes is the largest encoded Message DecodeMessage accepts.
	MaxMessageBytes = 1 << 20
	// MaxSnapshotBytes is the largest encoded Snapshot DecodeSnapshot
	// accepts.
	MaxSnapshotBytes = 4 << 20
	// maxSeq is the largest seq a decoded message or snapshot may carry:
	// browsers read seq as a JavaScript number, exact up to 2^53-1.
	maxSeq = 1<<53 - 1
	// codecVersion is the version EncodeMessage and EncodeSnapshot write.
	codecVersion = 1
)

// EncodeMessage returns the byte form of m for a store, a JSON object
// (version 1): {"v":1,"s":seq,"k":kind,"n":node,"f":frame,"st":state,
// "u":status,"r":reason,"i":identity}, fields without a value left out.
// Frame and State are written as they are (they are JSON already), so a
// Message that did not come from a Stream's OnMessage (or DecodeMessage)
// may encode to bytes DecodeMessage refuses.
func EncodeMessage(m Message) []byte {
	b := make([]byte, 0, 96+len(m.Node)+len(m.Frame)+len(m.State)+len(m.Reason))
	b = append(b, `{"v":1,"s":`...)
	b = strconv.AppendInt(b, m.Seq, 10)
	b = append(b, `,"k":`...)
	b = strconv.AppendUint(b, uint64(m.Kind), 10)
	if m.Node != "" {
		b = append(b, `,"n":`...)
		b = appendString(b, m.Node)
	}
	// What DecodeMessage can rebuild is left out: the frame of a state or
	// status message (made from its data or status), and an event's state
	// when it is the event's data (the frame's last field), given as its
	// length ("sd").
	switch {
	case m.Frame == nil:
	case (m.Kind == MessageState && m.State != nil && bytes.Equal(m.Frame, stateFrame(m.Seq, m.Node, m.State))) ||
		(m.Kind == MessageStatus && bytes.Equal(m.Frame, statusFrame(m.Seq, m.Status))):
	default:
		b = append(b, `,"f":`...)
		b = append(b, m.Frame...)
	}
	switch {
	case m.State == nil:
	case m.Kind == MessageEvent && stateIsData(m.Frame, m.State):
		b = append(b, `,"sd":`...)
		b = strconv.AppendInt(b, int64(len(m.State)), 10)
	default:
		b = append(b, `,"st":`...)
		b = append(b, m.State...)
	}
	if m.Kind == MessageStatus {
		b = append(b, `,"u":`...)
		b = appendStatus(b, m.Status)
	}
	if m.Reason != "" {
		b = append(b, `,"r":`...)
		b = appendString(b, m.Reason)
	}
	if m.Identity != nil {
		b = append(b, `,"i":`...)
		b = appendIdentity(b, *m.Identity)
	}
	return append(b, '}')
}

// dataField precedes an event frame's data, its last field.
const dataField = `"data":`

// stateIsData reports whether state is the data of the event frame (the
// bytes between "data": and the closing brace).
func stateIsData(frame, state []byte) bool {
	n := len(frame) - 1 - len(state)
	return n >= len(dataField) && frame[len(frame)-1] == '}' &&
		bytes.Equal(frame[n:len(frame)-1], state) && bytes.Equal(frame[n-len(dataField):n], []byte(dataField))
}

// EncodeSnapshot returns the byte form of s for a store, a JSON object
// (version 1): {"v":1,"id":id,"s":seq,"i":identity,"nodes":[{"n":node,
// "st":state}…],"u":status,"e":true,"r":reason}, fields without a value
// left out. Node states are written as they are (they are JSON already).
func EncodeSnapshot(s Snapshot) []byte {
	n := 128 + len(s.ID) + len(s.Reason)
	for _, ns := range s.Nodes {
		n += 16 + len(ns.Node) + len(ns.State)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"v":1,"id":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"s":`...)
	b = strconv.AppendInt(b, s.Seq, 10)
	b = append(b, `,"i":`...)
	b = appendIdentity(b, s.Identity)
	if len(s.Nodes) > 0 {
		b = append(b, `,"nodes":[`...)
		for i, ns := range s.Nodes {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"n":`...)
			b = appendString(b, ns.Node)
			b = append(b, `,"st":`...)
			b = append(b, ns.State...)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if s.Status != nil {
		b = append(b, `,"u":`...)
		b = appendStatus(b, *s.Status)
	}
	if s.Ended {
		b = append(b, `,"e":true`...)
	}
	if s.Reason != "" {
		b = append(b, `,"r":`...)
		b = appendString(b, s.Reason)
	}
	return append(b, '}')
}

func appendStatus(b []byte, st Status) []byte {
	return appendStatusFields(append(b, '{'), st)
}

func appendIdentity(b []byte, id Identity) []byte {
	b = append(b, `{"agent":`...)
	b = appendString(b, id.Agent)
	for _, f := range []struct {
		key  string
		list []string
	}{{`,"roles":[`, id.Roles}, {`,"allowed":[`, id.Allowed}} {
		if len(f.list) == 0 {
			continue
		}
		b = append(b, f.key...)
		for i, v := range f.list {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// wireMessage is the decoding form of an encoded Message.
type wireMessage struct {
	V        *int64          `json:"v"`
	Seq      *int64          `json:"s"`
	Kind     *int64          `json:"k"`
	Node     *string         `json:"n"`
	Frame    json.RawMessage `json:"f"`
	State    json.RawMessage `json:"st"`
	DataLen  *int64          `json:"sd"` // the state is the event's data, this long
	Status   *Status         `json:"u"`
	Reason   *string         `json:"r"`
	Identity *Identity       `json:"i"`
}

// wireSnapshot is the decoding form of an encoded Snapshot.
type wireSnapshot struct {
	V        *int64    `json:"v"`
	ID       *string   `json:"id"`
	Seq      *int64    `json:"s"`
	Identity *Identity `json:"i"`
	Nodes    []struct {
		Node  *string         `json:"n"`
		State json.RawMessage `json:"st"`
	} `json:"nodes"`
	Status *Status `json:"u"`
	Ended  bool    `json:"e"`
	Reason *string `json:"r"`
}

// strictUnmarshal decodes one JSON object of at most limit bytes into v,
// refusing unknown fields and anything after the object.
func strictUnmarshal(b []byte, limit int, v any) error {
	if len(b) > limit {
		return fmt.Errorf("%d bytes, more than %d", len(b), limit)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("not a valid JSON object: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("not a valid JSON object: data after the JSON object")
	}
	return nil
}

// DecodeMessage parses the byte form of a Message (EncodeMessage). It never
// panics and refuses, with an error that says what is wrong, anything
// malformed: more than MaxMessageBytes, not one JSON object, an unknown
// field, version or kind, a seq that is missing, negative or beyond 2^53-1,
// a frame that is missing, not valid UTF-8 JSON or not the frame of this
// kind, seq and node (a state's or status's frame must be exactly the one
// the Stream makes of it), a node missing (event, state) or present
// (status, end), an end without reason, fields that do not belong to the
// kind. Identity.Allowed comes back sorted and without duplicates.
func DecodeMessage(b []byte) (Message, error) {
	fail := func(format string, args ...any) (Message, error) {
		return Message{}, fmt.Errorf("gadget: message: "+format, args...)
	}
	var w wireMessage
	if err := strictUnmarshal(b, MaxMessageBytes, &w); err != nil {
		return fail("%v", err)
	}
	switch {
	case w.V == nil:
		return fail("version (v) is missing")
	case *w.V != codecVersion:
		return fail("unknown version %d", *w.V)
	case w.Seq == nil:
		return fail("seq (s) is missing")
	case *w.Seq < 0 || *w.Seq > maxSeq:
		return fail("seq %d is out of range [0, 2^53-1]", *w.Seq)
	case w.Kind == nil:
		return fail("kind (k) is missing")
	}
	m := Message{Seq: *w.Seq}
	if w.Node != nil {
		m.Node = *w.Node
	}
	if w.Reason != nil {
		m.Reason = *w.Reason
	}
	if w.Frame != nil {
		m.Frame = []byte(w.Frame)
	}
	if w.State != nil {
		m.State = []byte(w.State)
	}
	if w.Identity != nil {
		id, err := cleanIdentity(*w.Identity)
		if err != nil {
			return fail("%v", err)
		}
		m.Identity = &id
	}
	k := *w.Kind
	if k < int64(MessageEvent) || k > int64(MessageEnd) {
		return fail("unknown kind %d", k)
	}
	m.Kind = MessageKind(k)
	if m.Kind != MessageStatus && w.Status != nil {
		return fail("%s with a status (u)", m.Kind)
	}
	if m.Kind != MessageEnd && w.Reason != nil {
		return fail("%s with a reason (r)", m.Kind)
	}
	if w.DataLen != nil {
		switch {
		case m.Kind != MessageEvent:
			return fail("%s with a data length (sd)", m.Kind)
		case m.State != nil:
			return fail("event with both a state (st) and a data length (sd)")
		case m.Frame == nil:
			return fail("event without a frame (f)")
		case *w.DataLen < 1 || *w.DataLen > int64(len(m.Frame)-1-len(dataField)):
			return fail("data length %d out of the frame's %d bytes", *w.DataLen, len(m.Frame))
		}
		m.State = m.Frame[len(m.Frame)-1-int(*w.DataLen) : len(m.Frame)-1]
		if !stateIsData(m.Frame, m.State) || !json.Valid(m.State) {
			return fail("the last %d bytes of the frame are not its data", *w.DataLen)
		}
	}
	// Rebuilt frames (EncodeMessage leaves them out).
	switch {
	case m.Frame != nil:
	case m.Kind == MessageState && m.State != nil:
		m.Frame = stateFrame(m.Seq, m.Node, m.State)
	case m.Kind == MessageStatus && w.Status != nil:
		m.Frame = statusFrame(m.Seq, *w.Status)
	}
	if m.Frame != nil && !utf8.Valid(m.Frame) {
		return fail("frame is not valid UTF-8")
	}
	if m.State != nil && !utf8.Valid(m.State) {
		return fail("state is not valid UTF-8")
	}
	switch m.Kind {
	case MessageEvent, MessageState:
		if m.Node == "" {
			return fail("%s without a node (n)", m.Kind)
		}
		if m.Frame == nil {
			return fail("%s without a frame (f)", m.Kind)
		}
		if m.Kind == MessageEvent {
			head := appendString(append(strconv.AppendInt([]byte(eventHead), m.Seq, 10), `,"node":`...), m.Node)
			if !bytes.HasPrefix(m.Frame, head) {
				return fail("frame is not the event frame of seq %d and node %q", m.Seq, m.Node)
			}
			break
		}
		if m.State == nil {
			return fail("state without its data (st)")
		}
		if !bytes.Equal(m.Frame, stateFrame(m.Seq, m.Node, m.State)) {
			return fail("frame is not the state frame of seq %d, node %q and that data", m.Seq, m.Node)
		}
	case MessageStatus:
		if w.Node != nil || m.State != nil {
			return fail("status with a node (n) or state (st)")
		}
		if w.Status == nil {
			return fail("status without its status (u)")
		}
		m.Status = *w.Status
		if !bytes.Equal(m.Frame, statusFrame(m.Seq, m.Status)) {
			return fail("frame is not the status frame of seq %d and that status", m.Seq)
		}
	case MessageEnd:
		if w.Node != nil || m.Frame != nil || m.State != nil {
			return fail("end with a node (n), frame (f) or state (st)")
		}
		if m.Reason == "" {
			return fail("end without a reason (r)")
		}
	}
	return m, nil
}

// DecodeSnapshot parses the byte form of a Snapshot (EncodeSnapshot). It
// never panics and refuses, with an error that says what is wrong, anything
// malformed: more than MaxSnapshotBytes, not one JSON object, an unknown
// field or version, an id missing, empty or longer than a browser may send
// back (64 bytes), a seq missing or out of [-1, 2^53-1], no identity, a node
// without a name or state, a node twice, a state that is not valid UTF-8
// JSON, an end without reason or a reason without end, node states in an
// ended snapshot. Identity.Allowed comes back sorted and without
// duplicates.
func DecodeSnapshot(b []byte) (Snapshot, error) {
	fail := func(format string, args ...any) (Snapshot, error) {
		return Snapshot{}, fmt.Errorf("gadget: snapshot: "+format, args...)
	}
	var w wireSnapshot
	if err := strictUnmarshal(b, MaxSnapshotBytes, &w); err != nil {
		return fail("%v", err)
	}
	switch {
	case w.V == nil:
		return fail("version (v) is missing")
	case *w.V != codecVersion:
		return fail("unknown version %d", *w.V)
	case w.ID == nil || *w.ID == "":
		return fail("id is missing")
	case len(*w.ID) > maxStreamLen:
		return fail("id is %d bytes, more than %d", len(*w.ID), maxStreamLen)
	case w.Seq == nil:
		return fail("seq (s) is missing")
	case *w.Seq < -1 || *w.Seq > maxSeq:
		return fail("seq %d is out of range [-1, 2^53-1]", *w.Seq)
	case w.Identity == nil:
		return fail("identity (i) is missing")
	}
	s := Snapshot{ID: *w.ID, Seq: *w.Seq, Status: w.Status, Ended: w.Ended}
	var err error
	if s.Identity, err = cleanIdentity(*w.Identity); err != nil {
		return fail("%v", err)
	}
	if w.Reason != nil {
		s.Reason = *w.Reason
	}
	if s.Ended != (s.Reason != "") {
		return fail("ended (e) %v with reason (r) %q: an end needs a reason and a reason an end", s.Ended, s.Reason)
	}
	if s.Ended && len(w.Nodes) > 0 {
		return fail("an ended stream has node states")
	}
	seen := make(map[string]bool, len(w.Nodes))
	for i, ns := range w.Nodes {
		switch {
		case ns.Node == nil || *ns.Node == "":
			return fail("node %d has no name (n)", i)
		case seen[*ns.Node]:
			return fail("node %q appears twice", *ns.Node)
		case ns.State == nil:
			return fail("node %q has no state (st)", *ns.Node)
		case !utf8.Valid(ns.State):
			return fail("the state of node %q is not valid UTF-8", *ns.Node)
		}
		seen[*ns.Node] = true
		s.Nodes = append(s.Nodes, NodeState{Node: *ns.Node, State: []byte(ns.State)})
	}
	return s, nil
}

// cleanIdentity checks a decoded Identity and puts it in the form a Stream
// gives: Allowed sorted without duplicates, empty lists nil.
func cleanIdentity(id Identity) (Identity, error) {
	for _, n := range id.Allowed {
		if n == "" {
			return Identity{}, errors.New("identity has an empty allowed node")
		}
	}
	if len(id.Roles) == 0 {
		id.Roles = nil
	}
	if len(id.Allowed) == 0 {
		id.Allowed = nil
	} else {
		slices.Sort(id.Allowed)
		id.Allowed = slices.Compact(id.Allowed)
	}
	return id, nil
}
