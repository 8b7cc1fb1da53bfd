package gadget

import (
	"slices"
	"strconv"
	"time"

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
	Upstream, Side, Host string
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
