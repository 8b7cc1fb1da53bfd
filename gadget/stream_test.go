package gadget

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
)

// kicks records close requests of a test member.
type kicks struct{ codes []int }

func testMember(s *Stream, queue int) (*member, *kicks) {
	k := &kicks{}
	return newMember(queue, func(code int, _ string, _ bool) { k.codes = append(k.codes, code) }), k
}

// frames takes and decodes every frame waiting in m's outbox.
func frames(t *testing.T, m *member) []wireMsg {
	t.Helper()
	var out []wireMsg
	for _, it := range m.out.take(nil) {
		var w wireMsg
		if err := json.Unmarshal(it.data, &w); err != nil {
			t.Fatalf("frame %s: %v", it.data, err)
		}
		out = append(out, w)
	}
	return out
}

func types(ms []wireMsg) string {
	s := ""
	for _, m := range ms {
		if s != "" {
			s += ","
		}
		s += m.Type
		if m.Seq != nil {
			s += fmt.Sprint(":", *m.Seq)
		}
	}
	return s
}

func TestStreamResumeDecision(t *testing.T) {
	tests := []struct {
		name string
		rp   resumePoint
		want string
	}{
		{"fresh", resumePoint{}, "welcome:4,state:4,status:4"},
		{"since in ring", resumePoint{set: true, since: 2}, "welcome:4,event:3,event:4"},
		{"oldest kept", resumePoint{set: true, since: 1}, "welcome:4,event:2,event:3,event:4"},
		{"ring moved on", resumePoint{set: true, since: 0}, "welcome:4,state:4,status:4"},
		{"caught up", resumePoint{set: true, since: 4}, "welcome:4"},
		{"future", resumePoint{set: true, since: 5}, "welcome:4,state:4,status:4"},
		{"other stream", resumePoint{set: true, since: 3, stream: "feedfacefeedface"}, "welcome:4,state:4,status:4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream(StreamConfig{RingSize: 3})
			s.Status("up", "A", "a")                     // 0
			s.State(userNode, userData{"1001", "READY"}) // 1
			for range 3 {                                // 2, 3, 4
				s.Event(userNode, "PUT", "", "", userData{"1001", "x"}, nil)
			}
			m, _ := testMember(s, 8)
			if err := s.attach(m, tt.rp, 25); err != nil {
				t.Fatal(err)
			}
			got := frames(t, m)
			if types(got) != tt.want {
				t.Fatalf("got %s, want %s", types(got), tt.want)
			}
			wantResumed := tt.want == "welcome:4" || got[1].Type == "event"
			if got[0].Resumed != wantResumed {
				t.Fatalf("resumed = %v", got[0].Resumed)
			}
		})
	}
}

func TestStreamNeverBlocksAndDropsOnlyTheFullQueue(t *testing.T) {
	s := NewStream(StreamConfig{})
	slow, slowKicks := testMember(s, 2)
	fast, fastKicks := testMember(s, 2)
	for _, m := range []*member{slow, fast} {
		if err := s.attach(m, resumePoint{}, 25); err != nil {
			t.Fatal(err)
		}
	}
	frames(t, fast) // welcome
	for i := range 100 {
		s.Event(userNode, "PUT", "", fmt.Sprint(i), nil, nil)
		if got := frames(t, fast); len(got) != 1 || *got[0].Seq != int64(i) {
			t.Fatalf("fast member got %s", types(got))
		}
	}
	if len(fastKicks.codes) != 0 {
		t.Fatalf("fast member kicked: %v", fastKicks.codes)
	}
	if len(slowKicks.codes) == 0 || slowKicks.codes[0] != CloseQueueOverflow {
		t.Fatalf("slow member kicks = %v, want 4000", slowKicks.codes)
	}
	// welcome (batch, not counted) + 2 live messages.
	if n := slow.out.pending(); n != 3 {
		t.Fatalf("slow member holds %d frames, want 3", n)
	}
}

func TestStreamBatchDoesNotCountAgainstQueue(t *testing.T) {
	s := NewStream(StreamConfig{RingSize: 100})
	for i := range 50 {
		s.Event(userNode, "PUT", "", fmt.Sprint(i), nil, nil)
	}
	m, k := testMember(s, 2)
	if err := s.attach(m, resumePoint{set: true, since: -1}, 25); err != nil {
		t.Fatal(err)
	}
	s.Event(userNode, "PUT", "", "live", nil, nil)
	if len(k.codes) != 0 {
		t.Fatalf("kicked by a 51-message replay with queue 2: %v", k.codes)
	}
	if got := frames(t, m); len(got) != 52 || got[51].RequestID != "live" {
		t.Fatalf("got %d frames", len(got))
	}
}

func TestStreamResumeDropsQueuedBroadcastsKeepsReplies(t *testing.T) {
	s := NewStream(StreamConfig{})
	s.SetAllowedNodes([]string{teamNode})
	s.State(teamNode, map[string]int{"n": 1}) // 0
	m, _ := testMember(s, 8)
	if err := s.attach(m, resumePoint{}, 25); err != nil {
		t.Fatal(err)
	}
	frames(t, m)
	s.Event(userNode, "PUT", "", "a", nil, nil)              // 1, queued
	if perr := s.subscribe(m, "c1", teamNode); perr != nil { // reply + state, queued
		t.Fatal(perr)
	}
	s.Event(userNode, "PUT", "", "b", nil, nil) // 2, queued
	s.resume(m, resumePoint{set: true, since: 0}, 25)
	got := frames(t, m)
	if want := "reply,state:1,welcome:2,event:1,event:2"; types(got) != want {
		t.Fatalf("got %s, want %s", types(got), want)
	}
}

func TestStreamStateNilAndAllowedNodes(t *testing.T) {
	s := NewStream(StreamConfig{})
	s.State(userNode, userData{"1001", "READY"})
	s.State(dialogsNode, []int{})
	s.State(dialogsNode, nil) // removed from snapshots
	s.SetAllowedNodes([]string{teamNode})
	s.State(teamNode, map[string]int{"n": 1})
	m, _ := testMember(s, 8)
	if err := s.attach(m, resumePoint{}, 25); err != nil {
		t.Fatal(err)
	}
	if perr := s.subscribe(m, "", teamNode); perr != nil {
		t.Fatal(perr)
	}
	if got := types(frames(t, m)); got != "welcome:3,state:3,reply,state:3" {
		t.Fatalf("got %s", got)
	}
	s.SetAllowedNodes(nil) // the team leaves: its state and subscriptions go
	if len(m.subs) != 0 {
		t.Fatalf("subscriptions kept: %v", m.subs)
	}
	m2, _ := testMember(s, 8)
	if err := s.attach(m2, resumePoint{}, 25); err != nil {
		t.Fatal(err)
	}
	got := frames(t, m2)
	if types(got) != "welcome:3,state:3" || got[1].Node != userNode {
		t.Fatalf("got %s", types(got))
	}
}

// countingValue counts its MarshalJSON calls.
type countingValue struct{ n *atomic.Int32 }

func (c countingValue) MarshalJSON() ([]byte, error) {
	c.n.Add(1)
	return []byte(`{"v":1}`), nil
}

func TestStreamMarshalsStateLazilyOnce(t *testing.T) {
	var n atomic.Int32
	s := NewStream(StreamConfig{})
	s.Event(userNode, "PUT", "", "", nil, countingValue{&n})
	if n.Load() != 0 {
		t.Fatal("state marshalled before any snapshot needed it")
	}
	for range 3 {
		m, _ := testMember(s, 8)
		if err := s.attach(m, resumePoint{}, 25); err != nil {
			t.Fatal(err)
		}
		if got := frames(t, m); string(got[1].Data) != `{"v":1}` {
			t.Fatalf("snapshot data %s", got[1].Data)
		}
	}
	if n.Load() != 1 {
		t.Fatalf("state marshalled %d times for 3 snapshots, want 1", n.Load())
	}
}

func TestStreamUnmarshalableData(t *testing.T) {
	s := NewStream(StreamConfig{})
	m, _ := testMember(s, 8)
	if err := s.attach(m, resumePoint{}, 25); err != nil {
		t.Fatal(err)
	}
	s.Event(userNode, "PUT", "", "r", func() {}, nil)
	got := frames(t, m)
	if len(got) != 2 || got[1].Type != "event" || string(got[1].Data) != "null" || got[1].RequestID != "r" {
		t.Fatalf("got %+v", got)
	}
}

func TestStreamEnded(t *testing.T) {
	s := NewStream(StreamConfig{})
	m, k := testMember(s, 8)
	if err := s.attach(m, resumePoint{}, 25); err != nil {
		t.Fatal(err)
	}
	s.End("session_expired")
	s.End("signed_out") // only the first counts
	if len(k.codes) != 1 || k.codes[0] != CloseSessionExpired {
		t.Fatalf("kicks = %v", k.codes)
	}
	s.Event(userNode, "PUT", "", "", nil, nil)
	s.State(userNode, 1)
	s.Status("up", "", "")
	m2, _ := testMember(s, 8)
	if err := s.attach(m2, resumePoint{}, 25); !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("attach after End: %v", err)
	}
	if ended, code, _ := s.endedCode(); !ended || code != CloseSessionExpired {
		t.Fatalf("endedCode = %v %d", ended, code)
	}
}

func TestRingWraps(t *testing.T) {
	r := ring{max: 3}
	for i := range int64(7) {
		r.add(ringEntry{seq: i})
	}
	var got []int64
	r.from(0, func(e *ringEntry) { got = append(got, e.seq) })
	if fmt.Sprint(got) != "[4 5 6]" || r.holds(3) || !r.holds(4) || !r.holds(6) || r.holds(7) {
		t.Fatalf("ring = %v", got)
	}
	got = nil
	r.from(6, func(e *ringEntry) { got = append(got, e.seq) })
	if fmt.Sprint(got) != "[6]" {
		t.Fatalf("from(6) = %v", got)
	}
}

// TestRingGrowsOnDemand: nothing is allocated before the first message;
// the buffer doubles from ringInitial up to max and keeps the order across
// growth, including growth that happens after a wrap could not (it only
// grows while not full).
func TestRingGrowsOnDemand(t *testing.T) {
	tests := []struct {
		max, adds int
		wantCap   int
		wantFirst int64
	}{
		{max: 1024, adds: 0, wantCap: 0, wantFirst: -1},
		{max: 1024, adds: 1, wantCap: ringInitial, wantFirst: 0},
		{max: 1024, adds: ringInitial + 1, wantCap: 2 * ringInitial, wantFirst: 0},
		{max: 1024, adds: 1000, wantCap: 1024, wantFirst: 0},
		{max: 1024, adds: 3000, wantCap: 1024, wantFirst: 3000 - 1024},
		{max: 40, adds: 100, wantCap: 40, wantFirst: 60},
		{max: 0, adds: 5, wantCap: 0, wantFirst: -1},
	}
	for _, tt := range tests {
		r := ring{max: tt.max}
		for i := range int64(tt.adds) {
			r.add(ringEntry{seq: i})
		}
		if cap(r.buf) != tt.wantCap {
			t.Errorf("max %d, %d adds: buffer of %d, want %d", tt.max, tt.adds, cap(r.buf), tt.wantCap)
		}
		var got []int64
		r.from(0, func(e *ringEntry) { got = append(got, e.seq) })
		if tt.wantFirst < 0 {
			if len(got) != 0 {
				t.Errorf("max %d, %d adds: holds %v", tt.max, tt.adds, got)
			}
			continue
		}
		for i, seq := range got {
			if seq != tt.wantFirst+int64(i) {
				t.Fatalf("max %d, %d adds: entry %d is seq %d, want %d (order lost in growth)", tt.max, tt.adds, i, seq, tt.wantFirst+int64(i))
			}
		}
		if len(got) != min(tt.adds, tt.max) || !r.holds(tt.wantFirst) || r.holds(tt.wantFirst-1) {
			t.Errorf("max %d, %d adds: %d entries from %d", tt.max, tt.adds, len(got), tt.wantFirst)
		}
	}
}

func TestRepeatedResumeKeepsOneBatch(t *testing.T) {
	s := NewStream(StreamConfig{RingSize: 64})
	for i := range 50 {
		s.Event(userNode, "PUT", "", fmt.Sprint(i), nil, nil)
	}
	m, k := testMember(s, 4)
	if err := s.attach(m, resumePoint{}, 25); err != nil {
		t.Fatal(err)
	}
	for range 100 { // a client that asks again and again without reading
		s.resume(m, resumePoint{set: true, since: -1}, 25)
	}
	if n := m.out.pending(); n != 51 {
		t.Fatalf("%d frames queued after 100 resumes, want one batch of 51", n)
	}
	if len(k.codes) != 0 {
		t.Fatalf("kicked: %v", k.codes)
	}
}
