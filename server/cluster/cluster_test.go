package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"finesse-relay/gadget"
	"finesse-relay/server/agent"
	"finesse-relay/server/cred"
	"finesse-relay/server/store"
	"finesse-relay/xmpp/finesse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var agent1001 = finesse.User{LoginID: "1001", Roles: []string{"Agent"}, State: "NOT_READY"}

// ---- a fake Finesse side: the Notification Service and the REST reads ----

type fakeNotifier struct {
	closed chan struct{}
	once   sync.Once
}

func (n *fakeNotifier) Run(ctx context.Context) error {
	select {
	case <-n.closed:
		return errors.New("closed")
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (n *fakeNotifier) Subscribe(context.Context, string) error   { return nil }
func (n *fakeNotifier) Unsubscribe(context.Context, string) error { return nil }
func (n *fakeNotifier) PruneSubscriptions(context.Context, []string) (int, error) {
	return 0, nil
}
func (n *fakeNotifier) Close() error { n.once.Do(func() { close(n.closed) }); return nil }

// upstream records each instance's dials so a test can push notifications.
type upstream struct {
	mu    sync.Mutex
	dials map[string][]agent.DialRequest // instance → dials
}

func (u *upstream) dial(instance string) agent.DialFunc {
	return func(_ context.Context, req agent.DialRequest) (agent.Notifier, error) {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.dials[instance] = append(u.dials[instance], req)
		return &fakeNotifier{closed: make(chan struct{})}, nil
	}
}

// push sends a User notification through the latest session instance
// dialled.
func (u *upstream) push(t *testing.T, instance, state string) {
	t.Helper()
	u.mu.Lock()
	ds := u.dials[instance]
	u.mu.Unlock()
	if len(ds) == 0 {
		t.Fatalf("%s never dialled", instance)
	}
	node := finesse.UserNode("1001")
	ds[len(ds)-1].OnUpdate(finesse.Update{Node: node, Event: "PUT", Source: node,
		Data: []byte("<user><loginId>1001</loginId><state>" + state + "</state></user>")})
}

type fakeFinesse struct{}

func (fakeFinesse) SystemInfo(_ context.Context, side string) (*finesse.SystemInfo, error) {
	return &finesse.SystemInfo{Status: "IN_SERVICE", XMPPDomain: "finesse-" + side + ".test"}, nil
}
func (fakeFinesse) User(context.Context, string) (*finesse.User, error) {
	u := agent1001
	return &u, nil
}
func (fakeFinesse) Dialogs(context.Context, string) ([]finesse.Dialog, error) { return nil, nil }
func (fakeFinesse) Team(context.Context, string) (*finesse.Team, error) {
	return nil, errors.New("no team")
}
func (fakeFinesse) Queue(context.Context, string) (*finesse.Queue, error) {
	return nil, errors.New("no queue")
}
func (fakeFinesse) UserQueues(context.Context, string) ([]finesse.Queue, error) { return nil, nil }
func (fakeFinesse) MediaList(context.Context, string) ([]finesse.Media, error) {
	return nil, errors.New("no media")
}
func (fakeFinesse) MRDDialogs(context.Context, string, string) ([]finesse.Dialog, error) {
	return nil, errors.New("no media")
}

// publisher is what main gives a Session: the Cluster's owner Stream, told
// when it ends.
type publisher struct {
	*gadget.Stream
	c         *Cluster
	id        string
	continued bool
}

func (p publisher) End(reason string) { p.Stream.End(reason); p.c.Ended(p.id, p.Stream) }
func (p publisher) Continued() bool   { return p.continued }

// instance is one relay's Manager and Cluster on the shared store.
type instance struct {
	name    string
	m       *agent.Manager
	c       *Cluster
	mu      sync.Mutex
	streams []*gadget.Stream // owner Streams built here, in order
	stop    func()
}

func startInstance(t *testing.T, st store.Store, up *upstream, name string, leaseTTL time.Duration) *instance {
	t.Helper()
	in := &instance{name: name}
	m, err := agent.NewManager(agent.Config{
		Sides: []string{"A"}, Dial: up.dial(name),
		NewFinesse: func(string, cred.Source, func() string) agent.Finesse { return fakeFinesse{} },
		NewPublisher: func(id string, onSubs func(int)) agent.Publisher {
			s, continued := in.c.OwnerStream(id, gadget.StreamConfig{OnSubscribers: onSubs})
			in.mu.Lock()
			in.streams = append(in.streams, s)
			in.mu.Unlock()
			return publisher{Stream: s, c: in.c, id: id, continued: continued}
		},
		WatchedElsewhere: func(id string) bool { return in.c.Watched(id) },
		MinBackoff:       10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	in.m = m
	if in.c, err = New(Config{Store: st, Instance: name, Manager: m, LeaseTTL: leaseTTL}); err != nil {
		t.Fatal(err)
	}
	mctx, mstop := context.WithCancel(context.Background())
	cctx, cstop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = in.c.Run(cctx) }()
	go func() { defer wg.Done(); _ = m.Run(mctx); cstop() }()
	<-m.Running()
	var once sync.Once
	in.stop = func() { once.Do(func() { mstop(); wg.Wait() }) }
	t.Cleanup(in.stop)
	return in
}

func (in *instance) owner(t *testing.T) *gadget.Stream {
	t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.streams) == 0 {
		t.Fatalf("%s owns no stream", in.name)
	}
	return in.streams[len(in.streams)-1]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func statusOf(s *gadget.Stream) string {
	if st := s.Snapshot().Status; st != nil {
		return st.Upstream
	}
	return ""
}

func password() cred.Source { return cred.Static{LoginID: "1001", Kind: cred.Password, Secret: "demo"} }

// One instance owns the agent; another follows its stream with a replica
// that reproduces the owner's Stream: same id, seq, node states, status.
func TestReplicaFollowsTheOwner(t *testing.T) {
	st := store.NewMemory(nil)
	defer st.Close()
	up := &upstream{dials: map[string][]agent.DialRequest{}}
	a := startInstance(t, st, up, "a", time.Second)
	b := startInstance(t, st, up, "b", time.Second)

	ctx := context.Background()
	if created, err := a.c.Join(ctx, &agent1001, password()); err != nil || !created {
		t.Fatalf("Join on a: created=%v %v", created, err)
	}
	if created, err := b.c.Join(ctx, &agent1001, password()); err != nil || created {
		t.Fatalf("Join on b while a owns the agent: created=%v %v, want the agent left to a", created, err)
	}
	if _, ok := b.m.Get("1001"); ok {
		t.Fatal("b started a session of an agent a owns")
	}
	if !b.c.Running(ctx, "1001") {
		t.Fatal("b does not see the agent running (on a)")
	}
	owner := a.owner(t)
	waitFor(t, "the owner up", func() bool { return statusOf(owner) == "up" })

	rep, ok := b.c.Replica("1001")
	if !ok {
		t.Fatal("no replica on b")
	}
	for _, state := range []string{"READY", "NOT_READY", "READY"} {
		up.push(t, "a", state)
	}
	want := owner.Snapshot()
	waitFor(t, "the replica at the owner's seq", func() bool { return rep.Snapshot().Seq == owner.Snapshot().Seq })
	got := rep.Snapshot()
	want = owner.Snapshot()
	if got.ID != want.ID || got.Seq != want.Seq || got.Status == nil || *got.Status != *want.Status {
		t.Fatalf("replica %+v, owner %+v", got, want)
	}
	if len(got.Nodes) != len(want.Nodes) {
		t.Fatalf("replica nodes %d, owner %d", len(got.Nodes), len(want.Nodes))
	}
	for i := range got.Nodes {
		if got.Nodes[i].Node != want.Nodes[i].Node || string(got.Nodes[i].State) != string(want.Nodes[i].State) {
			t.Fatalf("node %d: replica %s %s, owner %s %s", i, got.Nodes[i].Node, got.Nodes[i].State, want.Nodes[i].Node, want.Nodes[i].State)
		}
	}
	if side := b.c.Side("1001"); side != "A" {
		t.Fatalf("the replica's side %q, want the owner's A", side)
	}
}

// The owner stops: it releases the lease, another instance adopts the
// agent and continues the stream (same id, seq going on), and the replica
// that was following it sees the new owner's messages with no gap.
func TestAdoptionContinuesTheStream(t *testing.T) {
	st := store.NewMemory(nil)
	defer st.Close()
	up := &upstream{dials: map[string][]agent.DialRequest{}}
	a := startInstance(t, st, up, "a", time.Second)
	b := startInstance(t, st, up, "b", time.Second)
	c := startInstance(t, st, up, "c", time.Second)
	ctx := context.Background()
	if _, err := a.c.Join(ctx, &agent1001, password()); err != nil {
		t.Fatal(err)
	}
	old := a.owner(t)
	waitFor(t, "the owner up", func() bool { return statusOf(old) == "up" })
	up.push(t, "a", "READY")
	rep, ok := c.c.Replica("1001")
	if !ok {
		t.Fatal("no replica on c")
	}
	waitFor(t, "the replica caught up", func() bool { return rep.Snapshot().Seq == old.Snapshot().Seq })
	last := old.Snapshot()

	a.stop()
	if h, _, err := st.Holder(ctx, leaseName("1001")); err == nil {
		t.Fatalf("a stopped but the lease is still held by %s", h)
	}
	if created, err := b.c.Join(ctx, &agent1001, password()); err != nil || !created {
		t.Fatalf("b adopting: created=%v %v", created, err)
	}
	next := b.owner(t)
	// The continued snapshot says "up" already (the old owner's status):
	// wait for the new owner's own.
	waitFor(t, "the new owner up", func() bool { s := next.Snapshot(); return s.Seq > last.Seq+1 && statusOf(next) == "up" })
	snap := next.Snapshot()
	if snap.ID != last.ID || snap.Seq <= last.Seq {
		t.Fatalf("new owner's stream %s at %d; the old one was %s at %d: not continued", snap.ID, snap.Seq, last.ID, last.Seq)
	}
	up.push(t, "b", "NOT_READY")
	waitFor(t, "the replica following the new owner", func() bool { return rep.Snapshot().Seq == next.Snapshot().Seq })
	if got := rep.Snapshot(); got.ID != last.ID {
		t.Fatalf("replica id changed: %s", got.ID)
	}
	es, err := st.Read(ctx, streamName("1001"), -1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Seq != es[i-1].Seq+1 {
			t.Fatalf("stored stream has a gap: %d after %d", es[i].Seq, es[i-1].Seq)
		}
	}
	first, _ := gadget.DecodeMessage(es[last.Seq+1-es[0].Seq].Data)
	if first.Kind != gadget.MessageStatus || first.Status.Upstream != agent.StatusReconnecting {
		t.Fatalf("the new owner's first message %+v, want status reconnecting", first)
	}
}

// An owner whose lease another instance took (it paused longer than the
// lease) ends its session rather than run it twice; its late messages are
// refused by the fence.
func TestLostLeaseEndsTheLocalSession(t *testing.T) {
	st := store.NewMemory(nil)
	defer st.Close()
	up := &upstream{dials: map[string][]agent.DialRequest{}}
	a := startInstance(t, st, up, "a", 300*time.Millisecond)
	ctx := context.Background()
	if _, err := a.c.Join(ctx, &agent1001, password()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the owner up", func() bool { return statusOf(a.owner(t)) == "up" })
	// Another instance takes the lease as if a's had expired.
	if err := st.Release(ctx, leaseName("1001"), "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.Acquire(ctx, leaseName("1001"), "x", time.Minute); err != nil || !ok {
		t.Fatalf("x taking the lease: %v %v", ok, err)
	}
	waitFor(t, "a's session ended", func() bool { _, ok := a.m.Get("1001"); return !ok })
	if h, _, _ := st.Holder(ctx, leaseName("1001")); h != "x" {
		t.Fatalf("lease holder %q, want x (a must not release another's lease)", h)
	}
}

// An owner with no browser of its own keeps the session while another
// instance marks the agent watched.
func TestWatched(t *testing.T) {
	st := store.NewMemory(nil)
	defer st.Close()
	up := &upstream{dials: map[string][]agent.DialRequest{}}
	a := startInstance(t, st, up, "a", time.Second)
	if a.c.Watched("1001") {
		t.Fatal("watched with no mark")
	}
	if err := st.Put(context.Background(), watchKey("1001"), []byte("b"), time.Second); err != nil {
		t.Fatal(err)
	}
	if !a.c.Watched("1001") {
		t.Fatal("not watched with b's mark")
	}
}

func TestStreamTrimmedByAge(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		times []time.Duration // appends, from t0
		want  int             // entries kept after the last
	}{
		{"few: the minimum", []time.Duration{0, time.Second}, minKept},
		{"a burst within the age: all", repeat(100, 0), 100},
		{"over the count limit", repeat(3000, 0), 1024},
		{"an old burst is forgotten", append(repeat(200, 0), 10*time.Minute), minKept},
		{"recent ones only", append(repeat(200, 0), repeat(50, 4*time.Minute+30*time.Second)...), 250},
		{"recent ones only, older gone", append(repeat(200, 0), repeat(50, 6*time.Minute)...), 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recentCounts
			got := 0
			for _, d := range tt.times {
				got = r.keep(t0.Add(d), 5*time.Minute, 1024)
			}
			if got != tt.want {
				t.Fatalf("keep %d, want %d", got, tt.want)
			}
		})
	}
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}
