package gadget

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// recorder collects an owner Stream's OnMessage calls.
type recorder struct {
	mu   sync.Mutex
	msgs []Message
}

func (r *recorder) add(m Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

// after returns the recorded messages with a seq > seq.
func (r *recorder) after(seq int64) []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Message
	for _, m := range r.msgs {
		if m.Seq > seq {
			out = append(out, m)
		}
	}
	return out
}

// ring returns the last n recorded frame messages with a seq <= seq.
func (r *recorder) ring(seq int64, n int) []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Message
	for _, m := range r.msgs {
		if m.Seq <= seq && m.Kind != MessageEnd {
			out = append(out, m)
		}
	}
	return out[max(0, len(out)-n):]
}

// rawFrames takes every frame waiting in m's outbox, as strings.
func rawFrames(m *member) []string {
	var out []string
	for _, it := range m.out.take(nil) {
		out = append(out, string(it.data))
	}
	return out
}

func attachAt(t *testing.T, s *Stream, rp resumePoint, subs ...string) *member {
	t.Helper()
	m, _ := testMember(s, 1<<10)
	if err := s.attach(m, rp, 25); err != nil {
		t.Fatal(err)
	}
	for _, n := range subs {
		if perr := s.subscribe(m, "", n); perr != nil {
			t.Fatal(perr)
		}
	}
	return m
}

func sameFrames(t *testing.T, what string, owner, replica []string) {
	t.Helper()
	if !reflect.DeepEqual(owner, replica) {
		t.Fatalf("%s differ:\nowner:   %s\nreplica: %s", what, strings.Join(owner, "\n         "), strings.Join(replica, "\n         "))
	}
}

// op is one thing an owner does.
type op func(s *Stream)

var (
	opStatusUp   = func(s *Stream) { s.Status("up", "A", "finesse-a.example") }
	opStatusB    = func(s *Stream) { s.Status("failover", "B", "fin<b>") }
	opUserReady  = func(s *Stream) { s.State(userNode, userData{"1001", "READY"}) }
	opDialogs    = func(s *Stream) { s.State(dialogsNode, []string{}) }
	opDialogsNil = func(s *Stream) { s.State(dialogsNode, nil) }
	opAllowTeam  = func(s *Stream) { s.SetAllowedNodes([]string{teamNode, queueNode}) }
	opAllowNone  = func(s *Stream) { s.SetAllowedNodes(nil) }
	opTeamState  = func(s *Stream) { s.State(teamNode, map[string]any{"users": []string{"1001"}}) }
	opTeamEvent  = func(s *Stream) { s.Event(teamNode, "PUT", "", "t1", userData{"1002", "TALKING"}, nil) }
	opQueueEvent = func(s *Stream) {
		s.Event(queueNode, "PUT", "", "", map[string]int{"calls": 2}, map[string]int{"calls": 2})
	}
	opUserEvent = func(s *Stream) {
		s.Event(userNode, "PUT", "/finesse/api/User/1001", "r1", userData{"1001", "NOT_READY"}, userData{"1001", "NOT_READY"})
	}
	opUserEventNoState = func(s *Stream) { s.EventAt(time.Now(), userNode, "POST", "", "r2", "x<y", nil) }
	opReconciled       = func(s *Stream) { s.ReconciledEvent(userNode, "r3", userData{"1001", "WORK"}) }
	opRoles            = func(s *Stream) { s.SetIdentity("1001", []string{"Agent", "Supervisor"}) }
	opSameRoles        = func(s *Stream) { s.SetIdentity("1001", []string{"Agent"}) }
)

func TestReplicaReproducesOwner(t *testing.T) {
	all := []op{
		opStatusUp, opUserReady, opDialogs, opAllowTeam, opTeamState, opUserEvent, opTeamEvent,
		opQueueEvent, opReconciled, opDialogsNil, opRoles, opUserEventNoState, opStatusB,
		opTeamEvent, opAllowNone, opTeamEvent, opUserEvent, opSameRoles, opDialogs,
	}
	tests := []struct {
		name     string
		at       int  // ops run before the replica is made
		fromZero bool // the replica starts from an empty snapshot with the owner's id
		withRing bool // Continue.Ring holds the owner's earlier messages
		ringSize int
	}{
		{name: "from the start", at: 0, ringSize: 64},
		{name: "from an empty snapshot", at: 0, fromZero: true, ringSize: 64},
		{name: "from the middle", at: 6, ringSize: 64},
		{name: "from the middle with ring", at: 6, withRing: true, ringSize: 64},
		{name: "small ring", at: 9, withRing: true, ringSize: 4},
		{name: "from the end", at: len(all), withRing: true, ringSize: 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			owner := NewStream(StreamConfig{RingSize: tt.ringSize, OnMessage: rec.add})
			owner.SetIdentity("1001", []string{"Agent"})
			for _, o := range all[:tt.at] {
				o(owner)
			}
			snap := owner.Snapshot()
			if tt.fromZero {
				snap = Snapshot{ID: owner.ID(), Seq: -1}
			}
			c := &Continue{Snapshot: snap}
			if tt.withRing {
				c.Ring = rec.ring(snap.Seq, tt.ringSize)
			}
			replica := NewStream(StreamConfig{RingSize: tt.ringSize, Continue: c})
			if replica.ID() != owner.ID() {
				t.Fatalf("replica id %s, owner %s", replica.ID(), owner.ID())
			}

			// Tabs on both: fresh ones, and ones subscribed to the team
			// while the replica knows it is allowed (from the message
			// after opAllowTeam until opAllowNone).
			var oPlain, rPlain, oTeam, rTeam *member
			attach := func(k int) {
				if oPlain == nil && (!tt.fromZero || k > 0) {
					oPlain, rPlain = attachAt(t, owner, resumePoint{}), attachAt(t, replica, resumePoint{})
					sameFrames(t, "first batches", rawFrames(oPlain), rawFrames(rPlain))
				}
				if oTeam == nil && k >= 5 && k <= 14 {
					oTeam, rTeam = attachAt(t, owner, resumePoint{}, teamNode), attachAt(t, replica, resumePoint{}, teamNode)
					sameFrames(t, "subscribed first batches", rawFrames(oTeam), rawFrames(rTeam))
				}
			}
			attach(tt.at)
			last := snap.Seq
			for i, o := range all[tt.at:] {
				o(owner)
				for _, m := range rec.after(last) {
					if !replica.Apply(m) {
						t.Fatalf("Apply(%d %s) = false", m.Seq, m.Kind)
					}
					if replica.Apply(m) {
						t.Fatalf("duplicate Apply(%d) = true", m.Seq)
					}
					last = m.Seq
				}
				if oPlain != nil {
					sameFrames(t, "live frames", rawFrames(oPlain), rawFrames(rPlain))
				}
				if oTeam != nil {
					sameFrames(t, "subscribed live frames", rawFrames(oTeam), rawFrames(rTeam))
				}
				attach(tt.at + i + 1)
			}

			if o, r := owner.Snapshot(), replica.Snapshot(); !reflect.DeepEqual(o, r) {
				t.Fatalf("snapshots differ:\nowner   %+v\nreplica %+v", o, r)
			}
			// Fresh tabs and resuming tabs get the same batches. Without
			// the owner's ring, a replica only replays what it applied.
			cur := owner.Snapshot().Seq
			from := int64(-1)
			if !tt.withRing && !tt.fromZero {
				from = snap.Seq
			}
			rps := []resumePoint{{}, {set: true, since: cur + 1}, {set: true, since: 0, stream: "other"}}
			for since := from; since <= cur; since++ {
				rps = append(rps, resumePoint{set: true, since: since, stream: owner.ID()})
			}
			for _, rp := range rps {
				for _, subs := range [][]string{nil, {queueNode}} {
					o, r := attachAt(t, owner, rp), attachAt(t, replica, rp)
					for _, n := range subs {
						// SetAllowedNodes(nil) ran: subscribing is refused on both.
						if (owner.subscribe(o, "", n) == nil) != (replica.subscribe(r, "", n) == nil) {
							t.Fatal("subscribe answered differently")
						}
					}
					sameFrames(t, "batches", rawFrames(o), rawFrames(r))
				}
			}
		})
	}
}

func TestOnMessage(t *testing.T) {
	rec := &recorder{}
	var n atomic.Int32
	s := NewStream(StreamConfig{OnMessage: rec.add})
	s.SetIdentity("1001", []string{"Agent"})
	s.Event(userNode, "PUT", "", "r1", nil, countingValue{&n})   // 0
	s.State(dialogsNode, []int{1})                               // 1
	s.SetIdentity("1001", []string{"Agent"})                     // unchanged
	s.Status("up", "A", "a")                                     // 2
	s.SetAllowedNodes([]string{teamNode, queueNode})             // changed
	s.ReconciledEvent(userNode, "r2", userData{"1001", "READY"}) // 3
	s.SetAllowedNodes([]string{queueNode, teamNode})             // unchanged
	s.State(dialogsNode, nil)                                    // 4
	s.SetIdentity("1002", nil)                                   // changed
	s.End("signed_out")                                          // end, seq 5
	s.End("shutdown")                                            // no effect
	s.Status("late", "", "")                                     // dropped

	if n.Load() != 1 {
		t.Fatalf("state marshalled %d times, want once (at Event)", n.Load())
	}
	agent := &Identity{Agent: "1001", Roles: []string{"Agent"}}
	team := &Identity{Agent: "1001", Roles: []string{"Agent"}, Allowed: []string{queueNode, teamNode}}
	want := []Message{
		{Seq: 0, Kind: MessageEvent, Node: userNode, State: []byte(`{"v":1}`), Identity: agent},
		{Seq: 1, Kind: MessageState, Node: dialogsNode, State: []byte(`[1]`)},
		{Seq: 2, Kind: MessageStatus, Status: Status{"up", "A", "a"}},
		{Seq: 3, Kind: MessageEvent, Node: userNode, Identity: team},
		{Seq: 4, Kind: MessageState, Node: dialogsNode, State: []byte(`null`)},
		{Seq: 5, Kind: MessageEnd, Reason: "signed_out", Identity: &Identity{Agent: "1002", Allowed: []string{queueNode, teamNode}}},
	}
	got := rec.after(-1)
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		if m.Kind != MessageEnd {
			var w wireMsg
			if err := json.Unmarshal(m.Frame, &w); err != nil || w.Seq == nil || *w.Seq != m.Seq {
				t.Fatalf("message %d: frame %s", i, m.Frame)
			}
		} else if m.Frame != nil {
			t.Fatalf("end with a frame")
		}
		m.Frame = nil
		if !reflect.DeepEqual(m, want[i]) {
			t.Fatalf("message %d = %+v, want %+v", i, m, want[i])
		}
	}
	if snap := s.Snapshot(); !snap.Ended || snap.Reason != "signed_out" || snap.Seq != 4 {
		t.Fatalf("snapshot after End = %+v", snap)
	}
}

func TestStateThatMarshalsToNullLeavesSnapshots(t *testing.T) {
	s := NewStream(StreamConfig{})
	s.State(userNode, userData{"1001", "READY"})
	s.State(dialogsNode, []int{})
	s.State(dialogsNode, json.RawMessage("null"))
	m := attachAt(t, s, resumePoint{})
	if got := types(frames(t, m)); got != "welcome:2,state:2" {
		t.Fatalf("got %s", got)
	}
}

func TestReplicaGapAndDuplicates(t *testing.T) {
	rec := &recorder{}
	owner := NewStream(StreamConfig{OnMessage: rec.add})
	owner.Status("up", "A", "a") // 0
	snap := owner.Snapshot()
	for range 7 { // 1..7
		opUserEvent(owner)
	}
	msgs := rec.after(0)
	replica := NewStream(StreamConfig{Continue: &Continue{Snapshot: snap}})
	tests := []struct {
		seq  int64
		want bool
	}{
		{1, true}, {2, true}, {2, false}, {1, false}, {5, true}, {4, false}, {6, true}, {6, false},
	}
	for _, tt := range tests {
		if got := replica.Apply(msgs[tt.seq-1]); got != tt.want {
			t.Fatalf("Apply(%d) = %v, want %v", tt.seq, got, tt.want)
		}
	}
	if replica.Apply(Message{Seq: 7, Kind: 9, Frame: []byte(`{}`)}) {
		t.Fatal("unknown kind applied")
	}
	for _, tt := range []struct {
		since int64
		want  string
	}{
		{1, "welcome:6,state:6,status:6"}, // before the gap: snapshot
		{3, "welcome:6,state:6,status:6"},
		{4, "welcome:6,event:5,event:6"}, // ring emptied at the gap: holds 5, 6
		{5, "welcome:6,event:6"},
		{6, "welcome:6"},
	} {
		m := attachAt(t, replica, resumePoint{set: true, since: tt.since, stream: owner.ID()})
		if got := types(frames(t, m)); got != tt.want {
			t.Fatalf("since %d: got %s, want %s", tt.since, got, tt.want)
		}
	}
	if !replica.Apply(msgs[6]) {
		t.Fatal("Apply(7) after the gap refused")
	}
}

func TestReplicaRestrictedNodes(t *testing.T) {
	rec := &recorder{}
	owner := NewStream(StreamConfig{OnMessage: rec.add})
	replica := NewStream(StreamConfig{Continue: &Continue{Snapshot: Snapshot{ID: owner.ID(), Seq: -1}}})
	owner.SetAllowedNodes([]string{teamNode})
	opUserEvent(owner) // 0: carries the allowed nodes
	replica.Apply(rec.after(-1)[0])
	sub, plain := attachAt(t, replica, resumePoint{}, teamNode), attachAt(t, replica, resumePoint{})
	if perr := replica.subscribe(plain, "", queueNode); perr == nil || perr.Code != CodeForbidden {
		t.Fatalf("subscribe to a node not allowed: %v", perr)
	}
	frames(t, sub)
	frames(t, plain)
	opTeamEvent(owner) // 1
	opUserEvent(owner) // 2
	for _, m := range rec.after(0) {
		replica.Apply(m)
	}
	if got := types(frames(t, sub)); got != "event:1,event:2" {
		t.Fatalf("subscribed tab got %s", got)
	}
	if got := types(frames(t, plain)); got != "event:2" {
		t.Fatalf("unsubscribed tab got %s", got)
	}
	// The team leaves: the replica drops the subscription with the next message.
	owner.SetAllowedNodes(nil)
	opTeamEvent(owner) // 3: now a default node
	replica.Apply(rec.after(2)[0])
	if len(sub.subs) != 0 {
		t.Fatalf("subscriptions kept: %v", sub.subs)
	}
	if a, b := types(frames(t, sub)), types(frames(t, plain)); a != "event:3" || b != "event:3" {
		t.Fatalf("got %s and %s", a, b)
	}
}

func TestReplicaTakesOver(t *testing.T) {
	rec := &recorder{}
	owner := NewStream(StreamConfig{OnMessage: rec.add})
	owner.SetIdentity("1001", []string{"Agent"})
	owner.SetAllowedNodes([]string{teamNode})
	for _, o := range []op{opStatusUp, opUserReady, opTeamState} { // 0..2
		o(owner)
	}
	replica := NewStream(StreamConfig{Continue: &Continue{Snapshot: owner.Snapshot(), Ring: rec.ring(2, 1024)}})
	for _, o := range []op{opUserEvent, opDialogs, opTeamEvent, opStatusB} { // 3..6
		o(owner)
	}
	applied := rec.after(2)
	for _, m := range applied {
		replica.Apply(m)
	}
	// The owner dies; the replica's instance takes over with what it has.
	ownerTab := attachAt(t, owner, resumePoint{set: true, since: 1, stream: owner.ID()}, teamNode)
	rec2 := &recorder{}
	next := NewStream(StreamConfig{OnMessage: rec2.add, Continue: &Continue{
		Snapshot: replica.Snapshot(), Ring: append(rec.ring(2, 1024), applied...),
	}})
	if next.ID() != owner.ID() {
		t.Fatal("the new owner changed the stream id")
	}
	opUserEvent(next)                   // 7
	next.State(dialogsNode, []int{1})   // 8
	next.Status("up", "B", "finesse-b") // 9
	next.SetIdentity("1001", []string{"Agent"})
	seqs := []int64{}
	for _, m := range rec2.after(-1) {
		seqs = append(seqs, m.Seq)
	}
	if !reflect.DeepEqual(seqs, []int64{7, 8, 9}) {
		t.Fatalf("new owner seqs %v, want 7 8 9", seqs)
	}
	if id := rec2.after(-1)[0].Identity; id == nil || id.Agent != "1001" || !reflect.DeepEqual(id.Allowed, []string{teamNode}) {
		t.Fatalf("first message of the new owner carries identity %+v", id)
	}
	// A tab that had seq 1 from the old owner resumes on the new one:
	// replayed (2..9), the part before the takeover byte for byte.
	tab := attachAt(t, next, resumePoint{set: true, since: 1, stream: owner.ID()}, teamNode)
	got, want := rawFrames(tab), rawFrames(ownerTab)
	var gotTypes []wireMsg
	for _, f := range got {
		var w wireMsg
		_ = json.Unmarshal([]byte(f), &w)
		gotTypes = append(gotTypes, w)
	}
	// seq 2 (the team's state) and 5 (a team event) are not replayed: the
	// tab subscribes to the team after its batch.
	if tp := types(gotTypes); tp != "welcome:9,event:3,state:4,status:6,event:7,state:8,status:9,reply,state:9" || !gotTypes[0].Resumed {
		t.Fatalf("resume on the new owner: %s", tp)
	}
	sameFrames(t, "replay before the takeover", want[1:4], got[1:4])
	// A replica of the new owner, made from the old owner's messages,
	// follows on without a gap.
	for _, m := range rec2.after(-1) {
		if !replica.Apply(m) {
			t.Fatalf("replica refused %d from the new owner", m.Seq)
		}
	}
	if o, r := next.Snapshot(), replica.Snapshot(); !reflect.DeepEqual(o, r) {
		t.Fatalf("snapshots differ:\nowner   %+v\nreplica %+v", o, r)
	}
}

func TestContinueRingAndEnded(t *testing.T) {
	frame := func(seq int64) []byte { return statusFrame(seq, Status{Upstream: "up"}) }
	msg := func(seq int64) Message { return Message{Seq: seq, Kind: MessageStatus, Frame: frame(seq)} }
	tests := []struct {
		name string
		ring []Message
		want string // resume since 5
	}{
		{"whole", []Message{msg(6), msg(7), msg(8)}, "welcome:8,status:6,status:7,status:8"},
		{"hole", []Message{msg(5), msg(7), msg(8)}, "welcome:8,state:8,status:8"}, // kept 7, 8: since 5 not covered → snapshot
		{"not ending at seq", []Message{msg(6), msg(7)}, "welcome:8,state:8,status:8"},
		{"end in ring", []Message{msg(6), {Seq: 7, Kind: MessageEnd, Reason: "x"}, msg(8)}, "welcome:8,state:8,status:8"},
		{"empty", nil, "welcome:8,state:8,status:8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream(StreamConfig{Continue: &Continue{
				Snapshot: Snapshot{ID: "feedfacefeedface", Seq: 8, Status: &Status{Upstream: "up"},
					Nodes: []NodeState{{Node: userNode, State: []byte(`{"a":1}`)}}},
				Ring: tt.ring,
			}})
			m := attachAt(t, s, resumePoint{set: true, since: 5, stream: "feedfacefeedface"})
			if got := types(frames(t, m)); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
	s := NewStream(StreamConfig{Continue: &Continue{Snapshot: Snapshot{ID: "feedfacefeedface", Seq: 3, Ended: true, Reason: "session_expired"}}})
	if err := s.attach(newMember(8, func(int, string, bool) {}), resumePoint{}, 25); err != ErrStreamEnded {
		t.Fatalf("attach to an ended continuation: %v", err)
	}
	if ended, code, _ := s.endedCode(); !ended || code != CloseSessionExpired {
		t.Fatalf("ended %v code %d", ended, code)
	}
}

// readRaw reads one frame's bytes (5 s at most).
func (c *client) readRaw() []byte {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := c.ws.ReadMessage()
	if err != nil || mt != websocket.TextMessage {
		c.t.Fatalf("read: %v", err)
	}
	return b
}

// sync reads raw frames up to the reply to a ping sent now.
func (c *client) sync() []string {
	c.t.Helper()
	c.send(`{"type":"ping","id":"sync"}`)
	var out []string
	for {
		b := c.readRaw()
		if bytes.Equal(b, []byte(`{"type":"reply","id":"sync"}`)) {
			return out
		}
		out = append(out, string(b))
	}
}

func TestReplicaOverGateway(t *testing.T) {
	rec := &recorder{}
	ho := newHarness(t, GatewayConfig{}, StreamConfig{OnMessage: rec.add})
	owner := ho.stream
	opStatusUp(owner)  // 0
	opUserReady(owner) // 1
	hr := newHarness(t, GatewayConfig{}, StreamConfig{Continue: &Continue{Snapshot: owner.Snapshot(), Ring: rec.ring(1, 1024)}})
	replica := hr.stream
	apply := func() {
		for _, m := range rec.after(replica.Snapshot().Seq) {
			replica.Apply(m)
		}
	}

	co, cr := ho.dial(nil), hr.dial(nil)
	a, b := co.sync(), cr.sync()
	sameFrames(t, "first batches", a, b)
	var w wireMsg
	if err := json.Unmarshal([]byte(b[0]), &w); err != nil || w.Type != "welcome" || w.Stream != owner.ID() {
		t.Fatalf("replica welcome %s", b[0])
	}
	for _, o := range []op{opUserEvent, opDialogs, opReconciled, opStatusB} { // 2..5
		o(owner)
	}
	apply()
	sameFrames(t, "live frames", co.sync(), cr.sync())

	// Resume on the replica with a seq from its ring (one the owner gave
	// before the replica existed too).
	for _, since := range []int64{0, 3} {
		q := url.Values{"since": {strconv.FormatInt(since, 10)}, "stream": {owner.ID()}}
		ro, rr := ho.dial(q), hr.dial(q)
		a, b := ro.sync(), rr.sync()
		sameFrames(t, "resumed batches", a, b)
		if !strings.Contains(b[0], `"resumed":true`) {
			t.Fatalf("not resumed: %s", b[0])
		}
	}

	owner.End("signed_out")
	apply()
	co.expectClose(CloseSignedOut)
	cr.expectClose(CloseSignedOut)
	if snap := replica.Snapshot(); !snap.Ended || snap.Reason != "signed_out" {
		t.Fatalf("replica snapshot %+v", snap)
	}
}

// ownerMessages returns the messages and final snapshot of an owner that
// did a bit of everything.
func ownerMessages(t testing.TB) ([]Message, Snapshot) {
	rec := &recorder{}
	s := NewStream(StreamConfig{OnMessage: rec.add})
	s.SetIdentity("1001", []string{"Agent", "Supervisor"})
	for _, o := range []op{
		opStatusUp, opUserReady, opDialogs, opAllowTeam, opTeamState, opUserEvent, opTeamEvent,
		opQueueEvent, opReconciled, opDialogsNil, opRoles, opUserEventNoState, opStatusB,
	} {
		o(s)
	}
	s.Event("/finesse/api/User/1001/Dialog/\u2028<&>", "DELETE", "", "", nil, json.RawMessage("null"))
	snap := s.Snapshot()
	s.End("session_expired")
	return rec.after(-1), snap
}

func TestMessageAndSnapshotRoundTrip(t *testing.T) {
	msgs, snap := ownerMessages(t)
	for _, m := range msgs {
		b := EncodeMessage(m)
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("DecodeMessage(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip of %s:\ngot  %+v\nwant %+v", b, got, m)
		}
	}
	ended := Snapshot{ID: "feedfacefeedface", Seq: 7, Identity: Identity{Agent: "1"}, Status: &Status{"down", "", ""}, Ended: true, Reason: "signed_out"}
	for _, s := range []Snapshot{snap, {ID: "x", Seq: -1}, ended} {
		b := EncodeSnapshot(s)
		got, err := DecodeSnapshot(b)
		if err != nil {
			t.Fatalf("DecodeSnapshot(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip of %s:\ngot  %+v\nwant %+v", b, got, s)
		}
	}
	// A replica fed the decoded messages reproduces the owner.
	replica := NewStream(StreamConfig{Continue: &Continue{Snapshot: Snapshot{ID: snap.ID, Seq: -1}}})
	for _, m := range msgs {
		d, _ := DecodeMessage(EncodeMessage(m))
		replica.Apply(d)
	}
	got := replica.Snapshot()
	snap.Ended, snap.Reason, snap.Nodes = true, "session_expired", nil
	if !reflect.DeepEqual(got, snap) {
		t.Fatalf("replica snapshot %+v, want %+v", got, snap)
	}
}

func TestDecodeMessageRefuses(t *testing.T) {
	ev := `"f":{"type":"event","seq":3,"node":"n","event":"PUT","source":"","requestId":"","data":null}`
	tests := []struct{ name, in, want string }{
		{"empty", ``, "not a valid JSON object"},
		{"not an object", `[1]`, "not a valid JSON object"},
		{"trailing data", `{"v":1,"s":3,"k":1,"n":"n",` + ev + `} {}`, "data after"},
		{"unknown field", `{"v":1,"s":3,"k":1,"n":"n","x":1,` + ev + `}`, `unknown field "x"`},
		{"no version", `{"s":3,"k":1,"n":"n",` + ev + `}`, "version (v) is missing"},
		{"version 2", `{"v":2,"s":3,"k":1,"n":"n",` + ev + `}`, "unknown version 2"},
		{"no seq", `{"v":1,"k":1,"n":"n",` + ev + `}`, "seq (s) is missing"},
		{"negative seq", `{"v":1,"s":-1,"k":4,"r":"x"}`, "seq -1 is out of range"},
		{"huge seq", `{"v":1,"s":9007199254740992,"k":4,"r":"x"}`, "out of range"},
		{"fractional seq", `{"v":1,"s":1.5,"k":4,"r":"x"}`, "not a valid JSON object"},
		{"no kind", `{"v":1,"s":3,"n":"n",` + ev + `}`, "kind (k) is missing"},
		{"kind 0", `{"v":1,"s":3,"k":0}`, "unknown kind 0"},
		{"kind 5", `{"v":1,"s":3,"k":5}`, "unknown kind 5"},
		{"event without node", `{"v":1,"s":3,"k":1,` + ev + `}`, "event without a node"},
		{"event without frame", `{"v":1,"s":3,"k":1,"n":"n"}`, "event without a frame"},
		{"frame not JSON", `{"v":1,"s":3,"k":1,"n":"n","f":{"type":"event",}`, "not a valid JSON object"},
		{"frame of another seq", `{"v":1,"s":4,"k":1,"n":"n",` + ev + `}`, "not the event frame of seq 4"},
		{"frame of another node", `{"v":1,"s":3,"k":1,"n":"m",` + ev + `}`, "not the event frame"},
		{"frame a string", `{"v":1,"s":3,"k":1,"n":"n","f":"{\"type\":\"event\",\"seq\":3,\"node\":\"n\"}"}`, "not the event frame"},
		{"frame invalid UTF-8", "{\"v\":1,\"s\":3,\"k\":1,\"n\":\"n\",\"f\":{\"type\":\"event\",\"seq\":3,\"node\":\"n\",\"data\":\"\xff\"}}", "not valid UTF-8"},
		{"event with status", `{"v":1,"s":3,"k":1,"n":"n",` + ev + `,"u":{"upstream":"up"}}`, "event with a status"},
		{"event with reason", `{"v":1,"s":3,"k":1,"n":"n",` + ev + `,"r":"x"}`, "event with a reason"},
		{"state without data", `{"v":1,"s":2,"k":2,"n":"n","f":{"type":"state","seq":2,"node":"n","data":1}}`, "state without its data"},
		{"state frame not its data", `{"v":1,"s":2,"k":2,"n":"n","f":{"type":"state","seq":2,"node":"n","data":1},"st":2}`, "not the state frame"},
		{"status without status", `{"v":1,"s":0,"k":3,"f":{"type":"status","seq":0,"upstream":"","side":"","host":""}}`, "status without its status"},
		{"status with node", `{"v":1,"s":0,"k":3,"n":"x","u":{},"f":{"type":"status","seq":0,"upstream":"","side":"","host":""}}`, "status with a node"},
		{"status frame not its status", `{"v":1,"s":0,"k":3,"u":{"upstream":"up"},"f":{"type":"status","seq":0,"upstream":"","side":"","host":""}}`, "not the status frame"},
		{"status unknown field", `{"v":1,"s":0,"k":3,"u":{"up":"x"},"f":{}}`, `unknown field "up"`},
		{"end without reason", `{"v":1,"s":3,"k":4}`, "end without a reason"},
		{"end with frame", `{"v":1,"s":3,"k":4,"r":"x","f":{}}`, "end with a node"},
		{"identity mistyped", `{"v":1,"s":3,"k":4,"r":"x","i":{"agent":1}}`, "not a valid JSON object"},
		{"identity empty allowed node", `{"v":1,"s":3,"k":4,"r":"x","i":{"allowed":[""]}}`, "empty allowed node"},
		{"too big", `{"v":1,"s":3,"k":4,"r":"` + strings.Repeat("x", MaxMessageBytes) + `"}`, "more than 1048576"},
		{"data length on a state", `{"v":1,"s":2,"k":2,"n":"n","sd":1}`, "state with a data length"},
		{"data length and state", `{"v":1,"s":3,"k":1,"n":"n",` + ev + `,"st":null,"sd":4}`, "both a state (st) and a data length"},
		{"data length too long", `{"v":1,"s":3,"k":1,"n":"n",` + ev + `,"sd":4000}`, "data length 4000 out of"},
		{"data length zero", `{"v":1,"s":3,"k":1,"n":"n",` + ev + `,"sd":0}`, "data length 0 out of"},
		{"data length not the data", `{"v":1,"s":3,"k":1,"n":"n",` + ev + `,"sd":3}`, "not its data"},
		{"data length without frame", `{"v":1,"s":3,"k":1,"n":"n","sd":3}`, "event without a frame"},
		{"state without frame or data", `{"v":1,"s":2,"k":2,"n":"n"}`, "without a frame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeMessage([]byte(tt.in))
			if err == nil {
				t.Fatalf("decoded %+v", m)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "gadget: message: ") {
				t.Fatalf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
	// What the table varies is otherwise valid.
	for _, in := range []string{
		`{"v":1,"s":3,"k":1,"n":"n",` + ev + `}`,
		`{"v":1,"s":3,"k":1,"n":"n",` + ev + `,"st":null,"i":{"agent":"1","allowed":["b","a","b"]}}`,
		`{"v":1,"s":2,"k":2,"n":"n","f":{"type":"state","seq":2,"node":"n","data":1},"st":1}`,
		`{"v":1,"s":0,"k":3,"u":{},"f":{"type":"status","seq":0,"upstream":"","side":"","host":""}}`,
		`{"v":1,"s":3,"k":4,"r":"x"}`,
		`{"v":1,"s":3,"k":1,"n":"n",` + ev + `,"sd":4}`,
		`{"v":1,"s":2,"k":2,"n":"n","st":1}`,
		`{"v":1,"s":0,"k":3,"u":{}}`,
	} {
		if _, err := DecodeMessage([]byte(in)); err != nil {
			t.Fatalf("DecodeMessage(%s): %v", in, err)
		}
	}
}

func TestDecodeSnapshotRefuses(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", ``, "not a valid JSON object"},
		{"unknown field", `{"v":1,"id":"a","s":1,"i":{},"x":1}`, `unknown field "x"`},
		{"no version", `{"id":"a","s":1,"i":{}}`, "version (v) is missing"},
		{"version 0", `{"v":0,"id":"a","s":1,"i":{}}`, "unknown version 0"},
		{"no id", `{"v":1,"s":1,"i":{}}`, "id is missing"},
		{"empty id", `{"v":1,"id":"","s":1,"i":{}}`, "id is missing"},
		{"long id", `{"v":1,"id":"` + strings.Repeat("a", 65) + `","s":1,"i":{}}`, "id is 65 bytes"},
		{"no seq", `{"v":1,"id":"a","i":{}}`, "seq (s) is missing"},
		{"seq -2", `{"v":1,"id":"a","s":-2,"i":{}}`, "seq -2 is out of range"},
		{"no identity", `{"v":1,"id":"a","s":1}`, "identity (i) is missing"},
		{"node without name", `{"v":1,"id":"a","s":1,"i":{},"nodes":[{"st":1}]}`, "node 0 has no name"},
		{"node without state", `{"v":1,"id":"a","s":1,"i":{},"nodes":[{"n":"x"}]}`, `node "x" has no state`},
		{"node twice", `{"v":1,"id":"a","s":1,"i":{},"nodes":[{"n":"x","st":1},{"n":"x","st":2}]}`, `node "x" appears twice`},
		{"state not JSON", `{"v":1,"id":"a","s":1,"i":{},"nodes":[{"n":"x","st":tru}]}`, "not a valid JSON object"},
		{"state invalid UTF-8", "{\"v\":1,\"id\":\"a\",\"s\":1,\"i\":{},\"nodes\":[{\"n\":\"x\",\"st\":\"\xc3\"}]}", "not valid UTF-8"},
		{"end without reason", `{"v":1,"id":"a","s":1,"i":{},"e":true}`, "an end needs a reason"},
		{"reason without end", `{"v":1,"id":"a","s":1,"i":{},"r":"x"}`, "an end needs a reason"},
		{"ended with nodes", `{"v":1,"id":"a","s":1,"i":{},"e":true,"r":"x","nodes":[{"n":"x","st":1}]}`, "ended stream has node states"},
		{"too big", `{"v":1,"id":"a","s":1,"i":{"agent":"` + strings.Repeat("x", MaxSnapshotBytes) + `"}}`, "more than 4194304"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeSnapshot([]byte(tt.in))
			if err == nil {
				t.Fatalf("decoded %+v", s)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "gadget: snapshot: ") {
				t.Fatalf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
}

// What the decoder can rebuild is not stored twice: an event whose state is
// its data, a state's frame, a status's frame.
func TestEncodeMessageLeavesOutWhatDecodeRebuilds(t *testing.T) {
	user := []byte(`{"loginId":"1001","state":"READY","extension":"51001","teamName":"Sales"}`)
	var got []Message
	s := NewStream(StreamConfig{OnMessage: func(m Message) { got = append(got, m) }})
	s.EventAt(time.Time{}, "/finesse/api/User/1001", "PUT", "/finesse/api/User/1001", "r1", json.RawMessage(user), json.RawMessage(user))
	s.State("/finesse/api/User/1001", json.RawMessage(user))
	s.Status("up", "A", "finesse-a")
	for _, m := range got {
		b := EncodeMessage(m)
		if n := bytes.Count(b, []byte(`"loginId":"1001"`)); n > 1 {
			t.Fatalf("%s: the User object is stored %d times: %s", m.Kind, n, b)
		}
		if m.Kind == MessageStatus && bytes.Contains(b, []byte(`"f":`)) {
			t.Fatalf("status stored with its frame: %s", b)
		}
		d, err := DecodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(d, m) {
			t.Fatalf("round trip of %s:\ngot  %+v\nwant %+v", b, d, m)
		}
	}
}
