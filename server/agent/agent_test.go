package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"finesse-relay/server/cred"
	"finesse-relay/xmpp/finesse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ---- fakes ----

// pubCall is one recorded Publisher call.
type pubCall struct {
	kind, node, event, requestID, status, side string
	data, state                                any
}

type fakePublisher struct {
	mu        sync.Mutex
	calls     []pubCall
	allowed   []string
	ended     string
	notify    chan struct{}
	onSubs    func(int)
	identity  string
	continued bool
}

func newFakePublisher(onSubs func(int)) *fakePublisher {
	return &fakePublisher{notify: make(chan struct{}, 1000), onSubs: onSubs}
}

func (p *fakePublisher) rec(c pubCall) {
	p.mu.Lock()
	p.calls = append(p.calls, c)
	p.mu.Unlock()
	p.notify <- struct{}{}
}
func (p *fakePublisher) SetIdentity(id string, _ []string) { p.identity = id }
func (p *fakePublisher) SetAllowedNodes(n []string) {
	p.mu.Lock()
	p.allowed = n
	p.mu.Unlock()
}
func (p *fakePublisher) EventAt(_ time.Time, node, event, source, requestID string, data, state any) {
	p.rec(pubCall{kind: "event", node: node, event: event, requestID: requestID, data: data, state: state})
}
func (p *fakePublisher) ReconciledEvent(node, requestID string, data any) {
	p.rec(pubCall{kind: "reconciled", node: node, event: "PUT", requestID: requestID, data: data})
}
func (p *fakePublisher) State(node string, data any) {
	p.rec(pubCall{kind: "state", node: node, data: data})
}
func (p *fakePublisher) Status(up, side, host string) {
	p.rec(pubCall{kind: "status", status: up, side: side})
}
func (p *fakePublisher) End(reason string) {
	p.mu.Lock()
	p.ended = reason
	p.mu.Unlock()
	p.notify <- struct{}{}
}
func (p *fakePublisher) Subscribers() int { return 0 }
func (p *fakePublisher) Continued() bool  { return p.continued }

func (p *fakePublisher) snapshot() []pubCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// waitFor waits until pred holds on the recorded calls.
func (p *fakePublisher) waitFor(t *testing.T, what string, pred func([]pubCall) bool) []pubCall {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if c := p.snapshot(); pred(c) {
			return c
		}
		select {
		case <-p.notify:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; calls: %+v", what, p.snapshot())
		}
	}
}

func hasStatus(want, side string) func([]pubCall) bool {
	return func(cs []pubCall) bool {
		return slices.ContainsFunc(cs, func(c pubCall) bool { return c.kind == "status" && c.status == want && (side == "" || c.side == side) })
	}
}

type fakeNotifier struct {
	up     *fakeUpstream
	side   string
	req    DialRequest
	stop   chan error
	closed chan struct{}
	once   sync.Once
	mu     sync.Mutex
	subs   []string
}

func (n *fakeNotifier) Run(ctx context.Context) error {
	defer n.up.active.Add(-1)
	select {
	case err := <-n.stop:
		return err
	case <-n.closed:
		return errors.New("closed")
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (n *fakeNotifier) Subscribe(_ context.Context, node string) error {
	n.up.mu.Lock()
	refused := node == n.up.refuseSub
	n.up.mu.Unlock()
	if refused {
		return errors.New("fake: item-not-found")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.subs = append(n.subs, node)
	return nil
}
func (n *fakeNotifier) Unsubscribe(context.Context, string) error { return nil }
func (n *fakeNotifier) PruneSubscriptions(context.Context, []string) (int, error) {
	return 0, nil
}
func (n *fakeNotifier) Close() error {
	n.once.Do(func() { close(n.closed) })
	return nil
}

// fakeUpstream plays both Finesse sides: SystemInfo per side, the REST
// reads, and the Notification Service (Dial).
type fakeUpstream struct {
	mu        sync.Mutex
	status    map[string]string // side -> IN_SERVICE / OUT_OF_SERVICE
	down      map[string]bool   // side -> REST unreachable
	user      finesse.User
	dialogs   []finesse.Dialog
	team      finesse.Team
	dialErr   error
	dials     []DialRequest
	notifiers []*fakeNotifier
	active    atomicInt
	maxActive int
	userDelay time.Duration
	refuseSub string // a node Subscribe refuses (item-not-found)
	dialed    chan *fakeNotifier
	gate      chan struct{} // when set, dials wait until it is closed
}

type atomicInt struct {
	mu sync.Mutex
	n  int
}

func (a *atomicInt) Add(d int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n += d
	return a.n
}

func newFakeUpstream(user finesse.User) *fakeUpstream {
	return &fakeUpstream{
		status: map[string]string{"A": "IN_SERVICE", "B": "IN_SERVICE"}, down: map[string]bool{},
		user: user, dialed: make(chan *fakeNotifier, 16),
	}
}

func (u *fakeUpstream) setStatus(side, st string) {
	u.mu.Lock()
	u.status[side] = st
	u.mu.Unlock()
}

func (u *fakeUpstream) dial(_ context.Context, req DialRequest) (Notifier, error) {
	u.mu.Lock()
	u.dials = append(u.dials, req)
	err, gate := u.dialErr, u.gate
	u.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if err != nil {
		return nil, err
	}
	n := &fakeNotifier{up: u, side: req.Side, req: req, stop: make(chan error, 1), closed: make(chan struct{})}
	if a := u.active.Add(1); a > 1 {
		u.mu.Lock()
		u.maxActive = max(u.maxActive, a)
		u.mu.Unlock()
	}
	u.mu.Lock()
	u.notifiers = append(u.notifiers, n)
	u.mu.Unlock()
	u.dialed <- n
	return n, nil
}

func (u *fakeUpstream) waitDial(t *testing.T) *fakeNotifier {
	t.Helper()
	select {
	case n := <-u.dialed:
		return n
	case <-time.After(5 * time.Second):
		t.Fatal("no dial")
		return nil
	}
}

// fakeFinesse is the REST view for one session.
type fakeFinesse struct {
	up   *fakeUpstream
	side func() string
}

var errUnreachable = errors.New("connection refused")

func (f fakeFinesse) SystemInfo(_ context.Context, side string) (*finesse.SystemInfo, error) {
	f.up.mu.Lock()
	defer f.up.mu.Unlock()
	if f.up.down[side] {
		return nil, errUnreachable
	}
	return &finesse.SystemInfo{Status: f.up.status[side], XMPPDomain: "finesse-" + side + ".test",
		PrimaryNode: &finesse.ServerNode{Host: "finesse-a.test"}, SecondaryNode: &finesse.ServerNode{Host: "finesse-b.test"}}, nil
}
func (f fakeFinesse) User(ctx context.Context, _ string) (*finesse.User, error) {
	f.up.mu.Lock()
	u, d := f.up.user, f.up.userDelay
	f.up.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	return &u, nil
}
func (f fakeFinesse) Dialogs(context.Context, string) ([]finesse.Dialog, error) {
	f.up.mu.Lock()
	defer f.up.mu.Unlock()
	return slices.Clone(f.up.dialogs), nil
}
func (f fakeFinesse) Team(context.Context, string) (*finesse.Team, error) {
	f.up.mu.Lock()
	defer f.up.mu.Unlock()
	t := f.up.team
	return &t, nil
}
func (f fakeFinesse) Queue(_ context.Context, id string) (*finesse.Queue, error) {
	return &finesse.Queue{ID: id, Name: "Q" + id}, nil
}
func (f fakeFinesse) UserQueues(context.Context, string) ([]finesse.Queue, error) {
	return []finesse.Queue{{ID: "5001"}}, nil
}
func (f fakeFinesse) MediaList(context.Context, string) ([]finesse.Media, error) {
	return nil, errors.New("fake: no nonvoice media")
}
func (f fakeFinesse) MRDDialogs(context.Context, string, string) ([]finesse.Dialog, error) {
	return nil, errors.New("fake: no nonvoice media")
}

// rig is a running Manager with fakes.
type rig struct {
	m    *Manager
	up   *fakeUpstream
	pubs chan *fakePublisher
	stop func()
}

func newRig(t *testing.T, user finesse.User, tweak func(*Config)) *rig {
	t.Helper()
	up := newFakeUpstream(user)
	r := &rig{up: up, pubs: make(chan *fakePublisher, 8)}
	cfg := Config{
		Sides: []string{"A", "B"}, Dial: up.dial,
		NewFinesse: func(_ string, _ cred.Source, side func() string) Finesse { return fakeFinesse{up: up, side: side} },
		NewPublisher: func(_ string, onSubs func(int)) Publisher {
			p := newFakePublisher(onSubs)
			r.pubs <- p
			return p
		},
		Grace: time.Hour, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		OutOfServiceWait: 20 * time.Millisecond, CallTimeout: time.Second,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	<-m.Running()
	r.m = m
	r.stop = func() { cancel(); <-done }
	t.Cleanup(r.stop)
	return r
}

func password(id string) cred.Source {
	return cred.Static{LoginID: id, Kind: cred.Password, Secret: "demo"}
}

// credFunc is a cred.Source backed by a function.
type credFunc func(context.Context) (cred.Credential, error)

func (f credFunc) Credential(ctx context.Context) (cred.Credential, error) { return f(ctx) }

var agent1001 = finesse.User{LoginID: "1001", Roles: []string{"Agent"}, State: "NOT_READY", Extension: "51001"}

func update(node, event, source, rid, data string) finesse.Update {
	return finesse.Update{Node: node, Event: finesse.Event(event), Source: source, RequestID: rid, Data: []byte(data)}
}

// ---- tests ----

func TestSessionConnectsSnapshotsAndRelaysInOrder(t *testing.T) {
	r := newRig(t, agent1001, nil)
	s, created, err := r.m.Join(&agent1001, password("1001"))
	if err != nil || !created {
		t.Fatalf("Join: %v created=%v", err, created)
	}
	again, created2, _ := r.m.Join(&agent1001, password("1001"))
	if again != s || created2 {
		t.Fatal("a second sign-in of the same agent must share the Session")
	}
	pub := <-r.pubs
	n := r.up.waitDial(t)
	if n.req.Username != "1001" || n.req.Password != "demo" || n.req.Domain != "finesse-A.test" || n.req.Side != "A" {
		t.Fatalf("dial request: %+v", n.req)
	}
	pub.waitFor(t, "status up", hasStatus(StatusUp, "A"))
	calls := pub.snapshot()
	var order []string
	for _, c := range calls {
		order = append(order, c.kind+":"+c.status+c.node)
	}
	want := []string{"status:connecting", "state:/finesse/api/User/1001", "state:/finesse/api/User/1001/Dialogs", "status:up"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}

	dn := finesse.DialogsNode("1001")
	n.req.OnUpdate(update(finesse.UserNode("1001"), "PUT", finesse.UserNode("1001"), "r1", "<user><loginId>1001</loginId><state>READY</state></user>"))
	n.req.OnUpdate(update(dn, "POST", dn, "", "<dialogs><Dialog><id>d1</id><state>ALERTING</state></Dialog></dialogs>"))
	n.req.OnUpdate(update(dn, "PUT", "/finesse/api/Dialog/d1", "r2", "<dialog><id>d1</id><state>ACTIVE</state></dialog>"))
	n.req.OnUpdate(update(dn, "PUT", "/finesse/api/Dialog/d1", "r3", "<apiErrors><apiError><errorMessage>CF_X</errorMessage></apiError></apiErrors>"))
	n.req.OnUpdate(update(dn, "DELETE", dn, "", "<dialogs><Dialog><id>d1</id></Dialog></dialogs>"))
	calls = pub.waitFor(t, "five events", func(cs []pubCall) bool {
		return len(slices.DeleteFunc(slices.Clone(cs), func(c pubCall) bool { return c.kind != "event" })) == 5
	})
	var evs []pubCall
	for _, c := range calls {
		if c.kind == "event" {
			evs = append(evs, c)
		}
	}
	if u, ok := evs[0].state.(*finesse.User); !ok || u.State != "READY" || evs[0].requestID != "r1" {
		t.Errorf("User PUT: state %#v rid %q", evs[0].state, evs[0].requestID)
	}
	if d, ok := evs[1].state.([]finesse.Dialog); !ok || len(d) != 1 || d[0].State != "ALERTING" {
		t.Errorf("Dialogs POST must add the dialog: %#v", evs[1].state)
	}
	if d, ok := evs[2].state.([]finesse.Dialog); !ok || len(d) != 1 || d[0].State != "ACTIVE" {
		t.Errorf("Dialog PUT must update the member: %#v", evs[2].state)
	}
	if evs[3].state != nil {
		t.Errorf("apiErrors must not change the state: %#v", evs[3].state)
	}
	if _, ok := evs[3].data.(*finesse.APIErrors); !ok {
		t.Errorf("apiErrors data: %#v", evs[3].data)
	}
	if d, ok := evs[4].state.([]finesse.Dialog); !ok || len(d) != 0 {
		t.Errorf("Dialogs DELETE must remove the member: %#v", evs[4].state)
	}
	if prev := evs[1].state.([]finesse.Dialog); prev[0].State != "ALERTING" {
		t.Error("a state handed to the publisher must never be modified later")
	}
}

func TestReplayedUpdatesArePublishedAsStateNeverAsEvents(t *testing.T) {
	r := newRig(t, agent1001, nil)
	if _, _, err := r.m.Join(&agent1001, password("1001")); err != nil {
		t.Fatal(err)
	}
	pub := <-r.pubs
	n := r.up.waitDial(t)
	pub.waitFor(t, "status up", hasStatus(StatusUp, "A"))
	before := len(pub.snapshot())

	dn := finesse.DialogsNode("1001")
	replay := func(u finesse.Update) finesse.Update { u.Replayed = true; return u }
	// The server replays the last items on (re)subscribe: stale requestIds.
	n.req.OnUpdate(replay(update(finesse.UserNode("1001"), "PUT", finesse.UserNode("1001"), "stale-1", "<user><loginId>1001</loginId><state>READY</state></user>")))
	n.req.OnUpdate(replay(update(dn, "POST", dn, "stale-2", "<dialogs><Dialog><id>d1</id><state>ALERTING</state></Dialog></dialogs>")))
	n.req.OnUpdate(replay(update(dn, "PUT", "/finesse/api/Dialog/d1", "stale-3", "<apiErrors><apiError><errorMessage>CF_X</errorMessage></apiError></apiErrors>")))
	// Then a live event.
	n.req.OnUpdate(update(dn, "PUT", "/finesse/api/Dialog/d1", "live-1", "<dialog><id>d1</id><state>ACTIVE</state></dialog>"))
	calls := pub.waitFor(t, "the live event", func(cs []pubCall) bool {
		return slices.ContainsFunc(cs, func(c pubCall) bool { return c.kind == "event" })
	})[before:]
	var kinds []string
	for _, c := range calls {
		kinds = append(kinds, c.kind+":"+c.node+":"+c.requestID)
	}
	want := []string{"state:" + finesse.UserNode("1001") + ":", "state:" + dn + ":", "event:" + dn + ":live-1"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("published %v, want %v (replays as state, the replayed apiErrors not at all, then the live event)", kinds, want)
	}
	if u, ok := calls[0].data.(*finesse.User); !ok || u.State != "READY" {
		t.Errorf("replayed User state: %#v", calls[0].data)
	}
	if d, ok := calls[1].data.([]finesse.Dialog); !ok || len(d) != 1 || d[0].State != "ALERTING" {
		t.Errorf("replayed Dialogs POST must fold into the collection state: %#v", calls[1].data)
	}
	if d, ok := calls[2].state.([]finesse.Dialog); !ok || len(d) != 1 || d[0].State != "ACTIVE" {
		t.Errorf("the live event must fold on top of the replayed state: %#v", calls[2].state)
	}
}

func TestEventsDuringSnapshotAreAppliedAfterIt(t *testing.T) {
	r := newRig(t, agent1001, nil)
	r.up.userDelay = 100 * time.Millisecond
	if _, _, err := r.m.Join(&agent1001, password("1001")); err != nil {
		t.Fatal(err)
	}
	pub := <-r.pubs
	n := r.up.waitDial(t)
	time.Sleep(20 * time.Millisecond) // the snapshot's User GET is in flight
	n.req.OnUpdate(update(finesse.UserNode("1001"), "PUT", finesse.UserNode("1001"), "", "<user><loginId>1001</loginId><state>READY</state></user>"))
	calls := pub.waitFor(t, "the held event", func(cs []pubCall) bool {
		return slices.ContainsFunc(cs, func(c pubCall) bool { return c.kind == "event" })
	})
	iState := slices.IndexFunc(calls, func(c pubCall) bool { return c.kind == "state" && c.node == finesse.UserNode("1001") })
	iEvent := slices.IndexFunc(calls, func(c pubCall) bool { return c.kind == "event" })
	if iState < 0 || iEvent < iState {
		t.Fatalf("the snapshot (older) must come before the event (newer): %+v", calls)
	}
}

func TestReconnectAfterUpstreamDrop(t *testing.T) {
	r := newRig(t, agent1001, nil)
	r.m.Join(&agent1001, password("1001"))
	pub := <-r.pubs
	n := r.up.waitDial(t)
	pub.waitFor(t, "up", hasStatus(StatusUp, "A"))
	n.stop <- errors.New("stream closed by peer")
	n2 := r.up.waitDial(t)
	if n2.req.Side != "A" {
		t.Fatalf("a plain drop reconnects to the same side, got %s", n2.req.Side)
	}
	calls := pub.waitFor(t, "second up", func(cs []pubCall) bool {
		k := 0
		for _, c := range cs {
			if c.kind == "status" && c.status == StatusUp {
				k++
			}
		}
		return k == 2
	})
	if !hasStatus(StatusReconnecting, "A")(calls) {
		t.Error("browsers must be told about the reconnect")
	}
	nState := 0
	for _, c := range calls {
		if c.kind == "state" && c.node == finesse.UserNode("1001") {
			nState++
		}
	}
	if nState != 2 {
		t.Errorf("a reconnect must re-snapshot: %d User states", nState)
	}
}

func TestFailoverWhenSideOutOfServiceNeverBothSides(t *testing.T) {
	r := newRig(t, agent1001, nil)
	r.m.Join(&agent1001, password("1001"))
	pub := <-r.pubs
	n := r.up.waitDial(t)
	pub.waitFor(t, "up on A", hasStatus(StatusUp, "A"))

	// Side A announces OUT_OF_SERVICE over XMPP while B is in service.
	r.up.setStatus("A", "OUT_OF_SERVICE")
	n.req.OnUpdate(update(finesse.SystemInfoNode, "PUT", finesse.SystemInfoNode, "", "<systemInfo><status>OUT_OF_SERVICE</status></systemInfo>"))
	nb := r.up.waitDial(t)
	if nb.req.Side != "B" || nb.req.Domain != "finesse-B.test" {
		t.Fatalf("want a dial on side B with B's domain, got %+v", nb.req)
	}
	calls := pub.waitFor(t, "up on B", hasStatus(StatusUp, "B"))
	for _, want := range []string{StatusOutOfService, StatusFailover} {
		if !hasStatus(want, "")(calls) {
			t.Errorf("browsers must see %q", want)
		}
	}
	select {
	case <-n.closed:
	default:
		t.Error("the side A session must be closed")
	}
	if r.up.maxActive > 1 {
		t.Errorf("signed in on both sides at once (%d)", r.up.maxActive)
	}
}

func TestFailoverWhenSideUnreachable(t *testing.T) {
	r := newRig(t, agent1001, nil)
	r.up.down["A"] = true
	r.m.Join(&agent1001, password("1001"))
	pub := <-r.pubs
	n := r.up.waitDial(t)
	if n.req.Side != "B" {
		t.Fatalf("side A unreachable: want side B, got %s", n.req.Side)
	}
	pub.waitFor(t, "up on B", hasStatus(StatusUp, "B"))
}

func TestServiceUserAbsentThenBack(t *testing.T) {
	r := newRig(t, agent1001, func(c *Config) { c.Sides = []string{"A"} })
	r.m.Join(&agent1001, password("1001"))
	pub := <-r.pubs
	n := r.up.waitDial(t)
	pub.waitFor(t, "up", hasStatus(StatusUp, "A"))
	n.req.OnServicePresence(false)
	pub.waitFor(t, "out of service", hasStatus(StatusOutOfService, "A"))
	n.req.OnServicePresence(true)
	pub.waitFor(t, "up again", func(cs []pubCall) bool {
		i := slices.IndexFunc(cs, func(c pubCall) bool { return c.kind == "status" && c.status == StatusOutOfService })
		return i >= 0 && slices.ContainsFunc(cs[i:], func(c pubCall) bool { return c.kind == "status" && c.status == StatusUp })
	})
}

func TestRefusedPasswordIsNeverRetried(t *testing.T) {
	r := newRig(t, agent1001, nil)
	r.up.dialErr = fmt.Errorf("%w: not-authorized", ErrUpstreamAuth)
	s, _, _ := r.m.Join(&agent1001, password("1001"))
	pub := <-r.pubs
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the session must end")
	}
	if len(r.up.dials) != 1 {
		t.Fatalf("a refused password was sent %d times; Finesse locks accounts", len(r.up.dials))
	}
	if pub.ended != EndSessionExpired {
		t.Fatalf("end reason %q", pub.ended)
	}
}

func TestRefusedTokenRetriedOnceWithAFresherToken(t *testing.T) {
	r := newRig(t, agent1001, nil)
	r.up.dialErr = fmt.Errorf("%w: not-authorized", ErrUpstreamAuth)
	var mu sync.Mutex
	tok := 0
	creds := credFunc(func(context.Context) (cred.Credential, error) {
		mu.Lock()
		defer mu.Unlock()
		tok++
		return cred.Credential{LoginID: "1001", Kind: cred.Token, Secret: fmt.Sprintf("token-%d", tok)}, nil
	})
	s, _, _ := r.m.Join(&agent1001, creds)
	<-r.pubs
	<-s.Done()
	if len(r.up.dials) != 2 || r.up.dials[1].Password == r.up.dials[0].Password {
		t.Fatalf("want exactly one retry with a different token, got %+v", r.up.dials)
	}
}

func TestSignInAgainFromTokenSourceEndsSession(t *testing.T) {
	r := newRig(t, agent1001, nil)
	creds := credFunc(func(context.Context) (cred.Credential, error) {
		return cred.Credential{}, fmt.Errorf("%w: invalid_grant", ErrSignInAgain)
	})
	s, _, _ := r.m.Join(&agent1001, creds)
	pub := <-r.pubs
	<-s.Done()
	if pub.ended != EndSessionExpired || len(r.up.dials) != 0 {
		t.Fatalf("ended %q after %d dials", pub.ended, len(r.up.dials))
	}
}

func TestGracePeriodEndsIdleSession(t *testing.T) {
	r := newRig(t, agent1001, func(c *Config) { c.Grace = 60 * time.Millisecond })
	s, _, _ := r.m.Join(&agent1001, password("1001"))
	pub := <-r.pubs
	n := r.up.waitDial(t)
	pub.onSubs(1) // a browser attached: the grace timer stops
	time.Sleep(150 * time.Millisecond)
	if _, ok := r.m.Get("1001"); !ok {
		t.Fatal("a session with a browser must stay")
	}
	pub.onSubs(0)
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the idle session must end after the grace period")
	}
	select {
	case <-n.closed:
	default:
		t.Fatal("the upstream session must be closed (unsubscribe, unavailable presence)")
	}
	if _, ok := r.m.Get("1001"); ok {
		t.Fatal("the ended session must be forgotten")
	}
}

func TestSupervisorSubscribesTeamAndTracksMembers(t *testing.T) {
	sup := finesse.User{LoginID: "2001", Roles: []string{"Agent", "Supervisor"}, Teams: []finesse.Team{{ID: "10"}}}
	r := newRig(t, sup, nil)
	r.up.team = finesse.Team{ID: "10", Users: []finesse.User{{LoginID: "1001", State: "READY"}, {LoginID: "1002", State: "READY"}}}
	r.m.Join(&sup, password("2001"))
	pub := <-r.pubs
	n := r.up.waitDial(t)
	pub.waitFor(t, "up", hasStatus(StatusUp, "A"))
	teamNode := finesse.TeamUsersNode("10")
	n.mu.Lock()
	subs := slices.Clone(n.subs)
	n.mu.Unlock()
	if !slices.Equal(subs, []string{finesse.MediaDialogsNode("2001"), teamNode, finesse.QueueNode("5001")}) {
		t.Fatalf("subscriptions %v", subs)
	}
	pub.mu.Lock()
	allowed := slices.Clone(pub.allowed)
	pub.mu.Unlock()
	if !slices.Contains(allowed, teamNode) {
		t.Fatalf("allowed nodes %v", allowed)
	}
	n.req.OnUpdate(update(teamNode, "PUT", finesse.UserNode("1002"), "", "<user><loginId>1002</loginId><state>TALKING</state></user>"))
	calls := pub.waitFor(t, "team event", func(cs []pubCall) bool {
		return slices.ContainsFunc(cs, func(c pubCall) bool { return c.kind == "event" && c.node == teamNode })
	})
	ev := calls[slices.IndexFunc(calls, func(c pubCall) bool { return c.kind == "event" && c.node == teamNode })]
	team, ok := ev.state.(*finesse.Team)
	if !ok || len(team.Users) != 2 || team.Users[1].State != "TALKING" || team.Users[0].State != "READY" {
		t.Fatalf("team state %#v", ev.state)
	}
}

func TestManagerShutdownEndsEverySession(t *testing.T) {
	r := newRig(t, agent1001, nil)
	s, _, _ := r.m.Join(&agent1001, password("1001"))
	pub := <-r.pubs
	n := r.up.waitDial(t)
	pub.waitFor(t, "up", hasStatus(StatusUp, "A"))
	r.stop()
	select {
	case <-s.Done():
	default:
		t.Fatal("Run must return only after every session ended")
	}
	select {
	case <-n.closed:
	default:
		t.Fatal("the upstream session must be closed on shutdown")
	}
	if pub.ended != EndShutdown {
		t.Fatalf("end reason %q", pub.ended)
	}
	if _, _, err := r.m.Join(&agent1001, password("1001")); !errors.Is(err, ErrManagerStopped) {
		t.Fatalf("Join after shutdown: %v", err)
	}
}

func TestGracePeriodKeepsSessionWatchedElsewhere(t *testing.T) {
	var mu sync.Mutex
	watched, asked := true, 0
	r := newRig(t, agent1001, func(c *Config) {
		c.Grace = 40 * time.Millisecond
		c.WatchedElsewhere = func(loginID string) bool {
			mu.Lock()
			defer mu.Unlock()
			if loginID != "1001" {
				t.Errorf("asked about %q", loginID)
			}
			asked++
			return watched
		}
	})
	s, _, _ := r.m.Join(&agent1001, password("1001"))
	<-r.pubs
	r.up.waitDial(t)
	time.Sleep(250 * time.Millisecond) // several grace periods, every one answered "watched"
	if _, ok := r.m.Get("1001"); !ok {
		t.Fatal("a session whose browsers are on another instance must stay")
	}
	mu.Lock()
	if asked < 2 {
		t.Errorf("WatchedElsewhere asked %d times in 6 grace periods; the grace period must start again each time", asked)
	}
	watched = false
	mu.Unlock()
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the session must end once no instance has its browsers")
	}
}

// A Session whose stream continues another instance's (the agent was
// adopted after its owner died) tells the browsers reconnecting → up, not
// connecting: they had seen it up.
func TestContinuedStreamStartsWithReconnecting(t *testing.T) {
	for _, continued := range []bool{false, true} {
		t.Run(fmt.Sprint("continued=", continued), func(t *testing.T) {
			pubs := make(chan *fakePublisher, 1)
			r := newRig(t, agent1001, func(c *Config) {
				c.NewPublisher = func(_ string, onSubs func(int)) Publisher {
					p := newFakePublisher(onSubs)
					p.continued = continued
					pubs <- p
					return p
				}
			})
			r.m.Join(&agent1001, password("1001"))
			r.up.waitDial(t)
			pub := <-pubs
			pub.waitFor(t, "status up", hasStatus(StatusUp, "A"))
			want := StatusConnecting
			if continued {
				want = StatusReconnecting
			}
			if first := pub.snapshot()[0]; first.kind != "status" || first.status != want {
				t.Fatalf("first message %+v, want status %s", first, want)
			}
		})
	}
}
