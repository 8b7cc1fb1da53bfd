package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// agentConn is one agent signed in through the relay with its tabs.
type agentConn struct {
	id      string
	session SignIn
	mu      sync.Mutex
	tabs    []*Tab
}

// run is one scenario on one stack.
type run struct {
	st       *stack
	tr       *tracker
	progress func(string, ...any)
	res      *Result
}

// signInAll signs ids in through the relay, parallel at a time, each with
// k tabs that wait for the status "up"; onMsg(i) is agent i's handler
// (nil: the tracker's). It returns the agents and each one's time from
// the sign-in request to its first tab's "up".
func (r *run) signInAll(ctx context.Context, ids []string, k, parallel int, onMsg func(i int) OnMsg) ([]*agentConn, []time.Duration, error) {
	agents := make([]*agentConn, len(ids))
	took := make([]time.Duration, len(ids))
	var done atomic.Int64
	stop := r.ticker(ctx, func() string {
		return fmt.Sprintf("%d/%d agents up", done.Load(), len(ids))
	})
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, id := range ids {
		g.Go(func() error {
			h := OnMsg(r.tr.onTab)
			if onMsg != nil {
				h = onMsg(i)
			}
			start := time.Now()
			si, err := r.st.rl.SignIn(gctx, id)
			if err != nil {
				return err
			}
			a := &agentConn{id: id, session: si}
			agents[i] = a
			for j := range k {
				ticket := si.Ticket
				if j > 0 {
					if ticket, err = r.st.rl.Ticket(gctx, si.Session); err != nil {
						return fmt.Errorf("agent %s: %w", id, err)
					}
				}
				t, err := r.st.rl.OpenTab(gctx, ticket, h)
				if err != nil {
					return fmt.Errorf("agent %s: %w", id, err)
				}
				a.mu.Lock()
				a.tabs = append(a.tabs, t)
				a.mu.Unlock()
				if j == 0 {
					took[i] = time.Since(start)
				}
			}
			done.Add(1)
			return nil
		})
	}
	err := g.Wait()
	slices.Sort(took)
	return agents, took, err
}

// closeAll closes every tab.
func closeAll(agents []*agentConn) {
	var wg sync.WaitGroup
	for _, a := range agents {
		if a == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, t := range a.tabs {
				t.Close()
			}
		}()
	}
	wg.Wait()
}

// loginAll signs every agent in to Finesse (LOGIN), so that every later
// readyAgents signs in every agent (one tab each, 64 at a time) and signs
// each in to its phone. The caller closes the agents, also on error.
func (r *run) readyAgents(ctx context.Context, ids []string, onMsg func(i int) OnMsg) ([]*agentConn, error) {
	agents, _, err := r.signInAll(ctx, ids, 1, 64, onMsg)
	if err != nil {
		return agents, err
	}
	if err := r.loginAll(ctx, ids, 1); err != nil {
		return agents, fmt.Errorf("LOGIN: %w", err)
	}
	return agents, nil
}

// state change makes exactly one event; each event must reach all k tabs.
func (r *run) loginAll(ctx context.Context, ids []string, k int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for _, id := range ids {
		g.Go(func() error { return r.tr.change(gctx, r.st.up, 0, id, LoginBody(id), k, false) })
	}
	err := g.Wait()
	r.tr.take()
	return err
}

// ticker prints progress every 2 s with the relay's figures until stop.
func (r *run) ticker(ctx context.Context, what func() string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s, err := r.st.sampleRelay(ctx)
				if err != nil {
					r.progress("%s: %s", r.res.Name, what())
					continue
				}
				r.progress("%s: %s; relay RSS %s, %d goroutines, %d fds, %d sessions up", r.res.Name, what(), mib(s.RSS), s.Goroutines, s.FDs, s.SessionsUp)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// settle waits until the relay's figures stop moving (or 5 s), so that
// sign-in garbage and connection setup do not count as per-session cost.
func (r *run) settle(ctx context.Context) (Sample, error) {
	time.Sleep(time.Second)
	return r.st.sampleRelay(ctx)
}

// idleCPU measures the relay's CPU share over d with nothing happening.
func (r *run) idleCPU(ctx context.Context, d time.Duration) (float64, error) {
	a, err := procCPU(r.st.relay.pid())
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	b, err := procCPU(r.st.relay.pid())
	return float64(b-a) / float64(time.Since(t0)) * 100, err
}

// perSession adds the relay's cost per session between two samples.
func (r *run) perSession(before, after Sample, n int) {
	if n <= 0 {
		return
	}
	r.res.add("relay RSS per session", float64(after.RSS-before.RSS)/float64(n)/1024, "KiB", "≤ 64", lessEq(64))
	r.res.add("relay heap per session (not after GC)", float64(after.Heap-before.Heap)/float64(n)/1024, "KiB", "", nil)
	r.res.add("relay goroutines per session", float64(after.Goroutines-before.Goroutines)/float64(n), "", "≤ 2", lessEq(2))
	r.res.add("relay fds per session", float64(after.FDs-before.FDs)/float64(n), "", "", nil)
	r.res.add("relay RSS total", float64(after.RSS)/(1<<20), "MiB", "", nil)
}

// fdHeadroom is what the relay needs besides two descriptors per session.
const fdHeadroom = 400

// --- scenarios -----------------------------------------------------------

// steady signs n agents in with one tab each, measures the idle CPU, then
// drives state changes as a Poisson process at rate per second plus a
// burst of n/20 changes every 5 s, for d. Directs agents also have a
// direct XMPP client: relay and direct latency of the same events.
func (r *run) steady(ctx context.Context, n, directs int, rate float64, d, idleFor time.Duration) error {
	ids := AgentIDs(n)
	before, err := r.st.sampleRelay(ctx)
	if err != nil {
		return err
	}
	r.progress("%s: signing in %d agents, one tab each", r.res.Name, n)
	agents, err := r.readyAgents(ctx, ids, nil)
	defer closeAll(agents)
	if err != nil {
		return err
	}
	hasDirect := make(map[string]bool)
	for _, id := range ids[:min(directs, n)] {
		dc, err := r.st.up.DialDirect(ctx, id, r.tr.onDirect)
		if err != nil {
			return err
		}
		defer dc.Close()
		hasDirect[id] = true
	}
	after, err := r.settle(ctx)
	if err != nil {
		return err
	}
	r.perSession(before, after, n)
	idle, err := r.idleCPU(ctx, idleFor)
	if err != nil {
		return err
	}
	r.res.add("relay CPU at idle", idle, "% of a core", "", nil)

	r.progress("%s: %.0f changes/s (Poisson) + a burst of %d every 5 s, for %v; %d agents also watched by a direct XMPP client", r.res.Name, rate, max(1, n/20), d, len(hasDirect))
	cpu0, _ := procCPU(r.st.relay.pid())
	tab0 := r.tr.tabEvents.Load()
	lat0, _ := r.st.sampleRelay(ctx)
	gen := newGenerator(ids)
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	stopProfile := r.startCPUProfile(ctx, "the load phase")
	fire := func() {
		id, ok := gen.take()
		if !ok {
			return
		}
		wg.Add(1)
		sent.Add(1)
		go func() {
			defer wg.Done()
			defer gen.give(id)
			if err := r.tr.change(ctx, r.st.up, 0, id, StateBody(gen.next(id)), 1, hasDirect[id]); err != nil {
				failed.Add(1)
			}
		}()
	}
	stop := r.ticker(ctx, func() string { return fmt.Sprintf("%d changes sent", sent.Load()) })
	t0 := steadyMix(ctx, d, rate, max(1, n/20), fire)
	wg.Wait()
	stop()
	elapsed := time.Since(t0)
	cpu1, _ := procCPU(r.st.relay.pid())
	stopProfile()
	evs := r.tr.take()
	lost := r.tr.forget()
	tabEvents := r.tr.tabEvents.Load() - tab0
	r.res.add("state changes", float64(sent.Load()), "", "", nil)
	r.res.add("events/s relayed", float64(len(evs))/elapsed.Seconds(), "", "", nil)
	r.res.add("events lost or late (> 30 s)", float64(lost+int(failed.Load())), "", "0", lessEq(0))
	all := durations(evs, func(e *event) (time.Duration, bool) { return e.lastTab.Sub(e.sent), true })
	r.res.addDur("PUT → tab p50", pct(all, 50), "")
	r.res.addDur("PUT → tab p99", pct(all, 99), "")
	dir := durations(evs, func(e *event) (time.Duration, bool) { return e.direct.Sub(e.sent), e.wantDirect })
	rel := durations(evs, func(e *event) (time.Duration, bool) { return e.lastTab.Sub(e.sent), e.wantDirect })
	hop := durations(evs, func(e *event) (time.Duration, bool) { return e.lastTab.Sub(e.direct), e.wantDirect })
	r.res.add("events with a direct client", float64(len(hop)), "", "", nil)
	r.res.addDur("direct XMPP p50", pct(dir, 50), "")
	r.res.addDur("direct XMPP p99", pct(dir, 99), "")
	r.res.addDur("relay tab p50", pct(rel, 50), "")
	r.res.addDur("relay tab p99", pct(rel, 99), "")
	r.res.addDur("relay hop (tab − direct) p50", pct(hop, 50), "")
	r.res.add("relay hop (tab − direct) p99", ms(pct(hop, 99)), "ms", "< 1", less(1))
	if p := pct(dir, 99); p > 0 {
		r.res.add("relay/direct p99", float64(pct(rel, 99))/float64(p), "", "≤ 1.5", lessEq(1.5))
	}
	if tabEvents > 0 {
		r.res.add("relay CPU per relayed event", float64(cpu1-cpu0)/float64(time.Microsecond)/float64(tabEvents), "µs", "≤ 60", lessEq(60))
		// Without the idle cost (pings, heartbeats) measured just before.
		busy := float64(cpu1-cpu0) - idle/100*float64(elapsed)
		r.res.add("relay CPU per relayed event, idle subtracted", max(busy, 0)/float64(time.Microsecond)/float64(tabEvents), "µs", "", nil)
	}
	r.res.add("relay CPU under load", float64(cpu1-cpu0)/float64(elapsed)*100, "% of a core", "", nil)
	// The relay's own figure: XMPP message read → WebSocket write, from
	// its histogram (bucket upper bounds), without the bench's scheduling.
	if lat1, err := r.st.sampleRelay(ctx); err == nil && lat1.Latency != nil {
		r.res.add("relay's own latency (histogram) p50 ≤", 1000*histogramQuantile(lat0.Latency, lat1.Latency, 0.50), "ms", "", nil)
		r.res.add("relay's own latency (histogram) p99 ≤", 1000*histogramQuantile(lat0.Latency, lat1.Latency, 0.99), "ms", "< 1", less(1))
	}
	return nil
}

// tabs signs n agents in with k tabs each: upstream sessions must stay n,
// and one change per agent must reach all of its tabs.
func (r *run) tabs(ctx context.Context, n, k int) error {
	ids := AgentIDs(n)
	before, err := r.st.sampleRelay(ctx)
	if err != nil {
		return err
	}
	r.progress("%s: signing in %d agents, %d tabs each", r.res.Name, n, k)
	stopProfile := r.startCPUProfile(ctx, "the sign-ins")
	agents, _, err := r.signInAll(ctx, ids, k, 64, nil)
	stopProfile()
	defer closeAll(agents)
	if err != nil {
		return err
	}
	after, err := r.settle(ctx)
	if err != nil {
		return err
	}
	r.res.add("upstream sessions", float64(after.Sessions), "", fmt.Sprint("= ", n), func(v float64) bool { return int(v) == n })
	r.res.add("browser WebSockets", float64(after.WSConns), "", fmt.Sprint("= ", n*k), func(v float64) bool { return int(v) == n*k })
	r.perSession(before, after, n)
	err = r.loginAll(ctx, ids, k)
	lost := r.tr.forget()
	r.res.add("events that missed a tab", float64(lost), "", "0", lessEq(0))
	return err
}

// scale signs n agents in (one tab each, parallel at a time) and measures
// the relay's cost per session and its CPU at idle.
func (r *run) scale(ctx context.Context, n, parallel int, idleFor time.Duration) error {
	// Two descriptors per session (WebSocket, XMPP) plus a reserve for the
	// listeners and the REST pool: without CAP_SYS_RESOURCE the relay
	// cannot lift its hard limit, and sessions beyond it would hang.
	if lim := noFileSoftLimit(r.st.relay.pid()); lim > 0 && 2*n+fdHeadroom > lim {
		capped := (lim - fdHeadroom) / 2
		r.progress("%s: the relay's RLIMIT_NOFILE is %d: %d sessions instead of %d", r.res.Name, lim, capped, n)
		r.res.add("relay RLIMIT_NOFILE (caps the sessions)", float64(lim), "", "", nil)
		n = capped
		r.res.Agents = n
	}
	ids := AgentIDs(n)
	before, err := r.st.sampleRelay(ctx)
	if err != nil {
		return err
	}
	r.progress("%s: signing in %d agents over %s, %d at a time", r.res.Name, n, r.st.transport, parallel)
	t0 := time.Now()
	agents, took, err := r.signInAll(ctx, ids, 1, parallel, nil)
	defer closeAll(agents)
	if err != nil {
		return err
	}
	r.res.add("sessions", float64(n), "", "10,000", func(v float64) bool { return v >= 10000 })
	r.res.addDur("all signed in", time.Since(t0), "")
	r.res.addDur("one sign-in p99", pct(took, 99), "")
	after, err := r.settle(ctx)
	if err != nil {
		return err
	}
	r.perSession(before, after, n)
	stopProfile := r.startCPUProfile(ctx, "the idle window")
	idle, err := r.idleCPU(ctx, idleFor)
	stopProfile()
	if err != nil {
		return err
	}
	r.res.add("relay CPU at idle", idle, "% of a core", "≤ 5", lessEq(5))
	r.heapProfile(ctx, fmt.Sprintf("%d sessions, after the idle window", n))
	return nil
}

// storm signs n agents in all at once.
func (r *run) storm(ctx context.Context, n int) error {
	ids := AgentIDs(n)
	r.progress("%s: %d agents signing in at once", r.res.Name, n)
	stopProfile := r.startCPUProfile(ctx, "the storm")
	t0 := time.Now()
	agents, took, err := r.signInAll(ctx, ids, 1, n, nil)
	all := time.Since(t0)
	stopProfile()
	defer closeAll(agents)
	if err != nil {
		return err
	}
	r.res.add("all up", all.Seconds(), "s", "< 5", less(5))
	r.res.addDur("one sign-in p50", pct(took, 50), "")
	r.res.addDur("one sign-in p99", pct(took, 99), "")
	return nil
}

// failover signs n agents in, takes side A out of service and waits until
// every agent's tab reports "up" on side B. A fifth of the tabs drop their
// connection during the failover and resume (since + stream). Then one
// change per agent on side B must reach every tab, and no seq may be
// missing on any tab.
func (r *run) failover(ctx context.Context, n int) error {
	ids := AgentIDs(n)
	upOnB := make([]atomic.Int64, n) // unix nanos of the first "up" on B
	var upCount atomic.Int64
	handler := func(i int) OnMsg {
		return func(m *Msg, size int, at time.Time) {
			if m.Type == "status" && m.Upstream == "up" && m.Side == "B" && upOnB[i].CompareAndSwap(0, at.UnixNano()) {
				upCount.Add(1)
			}
			r.tr.onTab(m, size, at)
		}
	}
	r.progress("%s: signing in %d agents", r.res.Name, n)
	agents, err := r.readyAgents(ctx, ids, handler)
	defer closeAll(agents)
	if err != nil {
		return err
	}
	r.progress("%s: side A out of service", r.res.Name)
	stopProfile := r.startCPUProfile(ctx, "side A out of service until every session is up on B")
	defer stopProfile()
	t0 := time.Now()
	if err := r.st.up.Control(ctx, "/sim/sides/A", `{"inService":false}`); err != nil {
		return err
	}
	// A fifth of the browsers drop during the failover and resume.
	var rg errgroup.Group
	rg.SetLimit(64)
	time.Sleep(500 * time.Millisecond)
	for i := 0; i < n; i += 5 {
		a := agents[i]
		rg.Go(func() error {
			a.mu.Lock()
			defer a.mu.Unlock()
			old := a.tabs[0]
			old.Drop()
			ticket, err := r.st.rl.Ticket(ctx, a.session.Session)
			if err != nil {
				return err
			}
			t, err := r.st.rl.Resume(ctx, ticket, old, handler(i))
			if err != nil {
				return fmt.Errorf("agent %s resume: %w", a.id, err)
			}
			a.tabs[0] = t
			return nil
		})
	}
	stop := r.ticker(ctx, func() string { return fmt.Sprintf("%d/%d up on side B", upCount.Load(), n) })
	rerr := rg.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for upCount.Load() < int64(n) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	stopProfile()
	if rerr != nil {
		return rerr
	}
	var last time.Duration
	for i := range upOnB {
		if v := upOnB[i].Load(); v != 0 {
			last = max(last, time.Unix(0, v).Sub(t0))
		}
	}
	r.res.add("agents up on side B", float64(upCount.Load()), "", fmt.Sprint("= ", n), func(v float64) bool { return int(v) == n })
	r.res.add("every session up on B", last.Seconds(), "s", "< 10", less(10))
	// One change per agent on side B: every tab must get it. An agent that
	// Finesse logged out meanwhile (no XMPP session on either side for the
	// forced-logout delay, 60 s) is signed in again instead, and counted.
	var loggedOut atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for _, id := range ids {
		g.Go(func() error {
			err := r.tr.change(gctx, r.st.up, 1, id, StateBody(0), 1, false)
			if err != nil && strings.Contains(err.Error(), "from LOGOUT") {
				loggedOut.Add(1)
				err = r.tr.change(gctx, r.st.up, 1, id, LoginBody(id), 1, false)
			}
			return err
		})
	}
	err = g.Wait()
	r.res.add("agents Finesse logged out meanwhile (no XMPP session for 60 s)", float64(loggedOut.Load()), "", "none", lessEq(0))
	lost := r.tr.forget()
	var gaps, resumed, snap int
	for _, a := range agents {
		g, rs, sn := a.tabs[0].Counters()
		gaps, resumed, snap = gaps+g, resumed+rs, snap+sn
	}
	r.res.add("tabs dropped and resumed", float64(resumed+snap), "", "", nil)
	r.res.add("resumes answered with a snapshot", float64(snap), "", "", nil)
	r.res.add("messages missing on a tab (seq gaps)", float64(gaps), "", "0", lessEq(0))
	r.res.add("changes on B not delivered", float64(lost), "", "0", lessEq(0))
	return err
}

// throughput drives state changes open-loop at each rate for d and
// reports the highest rate whose PUT → tab p99 stays under 50 ms, with
// the CPU of each process (what bounds it).
func (r *run) throughput(ctx context.Context, n int, rates []float64, d time.Duration) error {
	ids := AgentIDs(n)
	r.progress("%s: signing in %d agents", r.res.Name, n)
	agents, err := r.readyAgents(ctx, ids, nil)
	defer closeAll(agents)
	if err != nil {
		return err
	}
	gen := newGenerator(ids)
	best := 0.0
	defer r.startCPUProfile(ctx, "every offered rate")()
	for _, rate := range rates {
		cpu := cpuMeter(r.st.relay.pid(), r.st.sim.pid(), os.Getpid())
		var skipped, failed atomic.Int64
		var wg sync.WaitGroup
		sem := make(chan struct{}, 512)
		t0 := time.Now()
		sent := 0
		for now := t0; now.Sub(t0) < d && ctx.Err() == nil; now = time.Now() {
			due := int(now.Sub(t0).Seconds() * rate)
			for ; sent < due; sent++ {
				id, ok := gen.take()
				if !ok {
					skipped.Add(1)
					continue
				}
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; gen.give(id); wg.Done() }()
					if err := r.tr.change(ctx, r.st.up, 0, id, StateBody(gen.next(id)), 1, false); err != nil {
						failed.Add(1)
					}
				}()
			}
			time.Sleep(time.Millisecond)
		}
		wg.Wait()
		elapsed := time.Since(t0)
		shares := cpu()
		evs := r.tr.take()
		lost := r.tr.forget()
		lat := durations(evs, func(e *event) (time.Duration, bool) { return e.lastTab.Sub(e.sent), true })
		got := float64(len(evs)) / elapsed.Seconds()
		p99 := pct(lat, 99)
		r.progress("%s: offered %.0f/s: relayed %.0f/s, p99 %v, lost %d, skipped %d; CPU relay %.0f%%, simulator %.0f%%, bench %.0f%%",
			r.res.Name, rate, got, p99.Round(time.Microsecond), lost+int(failed.Load()), skipped.Load(), shares[0], shares[1], shares[2])
		name := fmt.Sprintf("offered %.0f/s", rate)
		r.res.add(name+": relayed/s", got, "", "", nil)
		r.res.addDur(name+": PUT → tab p99", p99, "")
		r.res.add(name+": CPU relay", shares[0], "% of a core", "", nil)
		r.res.add(name+": CPU simulator", shares[1], "% of a core", "", nil)
		r.res.add(name+": CPU bench (load generator)", shares[2], "% of a core", "", nil)
		if p99 < 50*time.Millisecond && got >= 0.9*rate && lost == 0 {
			best = got
		} else {
			break
		}
	}
	r.res.add("events/s with PUT → tab p99 < 50 ms", best, "", "≥ 3,000", func(v float64) bool { return v >= 3000 })
	return nil
}

// cpuMeter returns a function that reports each pid's CPU share (% of a
// core) since cpuMeter was called.
func cpuMeter(pids ...int) func() []float64 {
	t0 := time.Now()
	start := make([]time.Duration, len(pids))
	for i, p := range pids {
		start[i], _ = procCPU(p)
	}
	return func() []float64 {
		el := time.Since(t0)
		out := make([]float64, len(pids))
		for i, p := range pids {
			c, _ := procCPU(p)
			out[i] = float64(c-start[i]) / float64(el) * 100
		}
		return out
	}
}

// generator hands out agents with no change in flight, and each agent's
// next state (READY, NOT_READY in turn).
type generator struct {
	free chan string
	mu   sync.Mutex
	n    map[string]int
}

func newGenerator(ids []string) *generator {
	g := &generator{free: make(chan string, len(ids)), n: make(map[string]int)}
	for _, i := range rand.Perm(len(ids)) { // #nosec G404 -- shuffles which simulated agent is driven next, not security
		g.free <- ids[i]
	}
	return g
}

func (g *generator) take() (string, bool) {
	select {
	case id := <-g.free:
		return id, true
	default:
		return "", false
	}
}

func (g *generator) give(id string) { g.free <- id }

func (g *generator) next(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n[id]++
	return g.n[id] - 1
}

// steadyMix calls fire for d: Poisson arrivals at rate per second, plus a
// burst of burst calls every 5 s. It returns when it started.
func steadyMix(ctx context.Context, d time.Duration, rate float64, burst int, fire func()) time.Time {
	t0 := time.Now()
	nextBurst := t0.Add(5 * time.Second)
	for now := t0; now.Sub(t0) < d && ctx.Err() == nil; now = time.Now() {
		if now.After(nextBurst) {
			for range burst {
				fire()
			}
			nextBurst = nextBurst.Add(5 * time.Second)
		}
		fire()
		time.Sleep(time.Duration(rand.ExpFloat64() / rate * float64(time.Second))) // #nosec G404 -- Poisson load timing, not security
	}
	return t0
}
