package bench

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"golang.org/x/sync/errgroup"
)

// The cluster scenario: relay A and relay B share a private redis-server
// as several active instances (ACTIVE_INSTANCES=many). Every agent signs
// in on A, so A owns it (its upstream session, and the appends to its
// stream "ev:<loginId>" in Redis); each agent has one tab on A and one on
// B, which follows the stream. The same event's arrival on both tabs,
// read in this process (one clock), gives what cross-instance delivery
// adds; INFO memory before and after gives Redis memory per agent.

// clusterLeaseTTL is the relays' AGENT_LEASE_TTL (the default).
const clusterLeaseTTL = "15s"

// redisKeyPrefix is the store's default key prefix (server/store
// DefaultRedisPrefix; the bench may not import the store).
const redisKeyPrefix = "finesse-relay:"

// clusterProcs are the cluster scenario's processes besides the simulator
// and relay A: the redis-server both relays use and relay B.
type clusterProcs struct {
	redis   *proc
	addr    string // the redis-server, 127.0.0.1:port
	keyFile string // SESSION_KEY_FILE of both relays
	rdb     *redis.Client

	relayB *proc
	portB  int
	baseB  string // http://127.0.0.1:portB
	rlB    *Relay
}

// redisServerPresent looks for redis-server in PATH: without it the
// cluster scenario is skipped (skip says why), or fails (err) when the
// environment variable CI is set, since the test scripts install it.
func redisServerPresent() (skip string, err error) {
	if _, lerr := exec.LookPath("redis-server"); lerr != nil {
		if os.Getenv("CI") != "" {
			return "", fmt.Errorf("redis-server is not in PATH (CI is set; scripts/test.sh installs Debian's redis-server): %w", lerr)
		}
		return "redis-server is not in PATH (apt-get install redis-server)", nil
	}
	return "", nil
}

// startClusterStore starts a private redis-server (no persistence, in
// dir) and writes the session key file both relays seal credentials
// with; it also picks relay B's port.
//
// The relays use go-redis's default pool: a relay follows the agents
// owned elsewhere with eight readers, one pooled connection each, however
// many agents (server/cluster).
func startClusterStore(ctx context.Context, dir string, agents int) (c *clusterProcs, err error) {
	c = &clusterProcs{keyFile: filepath.Join(dir, "session.key")}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	key := make([]byte, 32)
	if _, err := crand.Read(key); err != nil {
		return c, fmt.Errorf("session key: %w", err)
	}
	if err := os.WriteFile(c.keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return c, fmt.Errorf("write the session key file: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return c, fmt.Errorf("a port for redis-server: %w", err)
	}
	c.addr = "127.0.0.1:" + strconv.Itoa(port)
	c.redis, err = startProc("redis-server", "redis-server", []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", "/dev/stderr", "--loglevel", "warning"}, nil)
	if err != nil {
		return c, err
	}
	c.rdb = redis.NewClient(&redis.Options{Addr: c.addr, Protocol: 2, DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		perr := c.rdb.Ping(ctx).Err()
		if perr == nil {
			break
		}
		if err := c.redis.exited(); err != nil {
			return c, err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return c, fmt.Errorf("redis-server on %s did not answer PING: %w", c.addr, errors.Join(perr, ctx.Err()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.portB, err = freePort(); err != nil {
		return c, fmt.Errorf("a port for relay B: %w", err)
	}
	c.baseB = "http://127.0.0.1:" + strconv.Itoa(c.portB)
	return c, nil
}

// sets are the --set KEY=VALUE that make a relay one of several active
// instances on the Redis (none when c is nil: not the cluster scenario).
func (c *clusterProcs) sets(instance, base string) []string {
	if c == nil {
		return nil
	}
	return []string{"STORE=redis://" + c.addr + "/0", "SESSION_KEY_FILE=" + c.keyFile, "ACTIVE_INSTANCES=many",
		"INSTANCE_ID=" + instance, "AGENT_LEASE_TTL=" + clusterLeaseTTL,
		"PUBLIC_URL=" + base, "REDIRECT_URI=" + base + "/idscallback"}
}

// close stops redis-server (relay B is stopped by the stack first).
func (c *clusterProcs) close() {
	if c.rlB != nil {
		c.rlB.HTTP.CloseIdleConnections()
	}
	if c.rdb != nil {
		_ = c.rdb.Close()
	}
	if c.redis != nil {
		c.redis.stop()
	}
}

// redisMem is one look at the Redis: INFO memory, INFO clients and
// DBSIZE.
type redisMem struct {
	used, dataset, clients int64 // used_memory, used_memory_dataset, mem_clients_normal
	conns                  int64 // connected_clients
	keys                   int64
}

func (c *clusterProcs) memory(ctx context.Context) (redisMem, error) {
	var m redisMem
	info, err := c.rdb.Info(ctx, "memory", "clients").Result()
	if err != nil {
		return m, fmt.Errorf("redis INFO memory clients: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "used_memory":
			m.used = n
		case "used_memory_dataset":
			m.dataset = n
		case "mem_clients_normal":
			m.clients = n
		case "connected_clients":
			m.conns = n
		}
	}
	if m.used == 0 {
		return m, fmt.Errorf("redis INFO memory: no used_memory in %.200q", info)
	}
	if m.keys, err = c.rdb.DBSize(ctx).Result(); err != nil {
		return m, fmt.Errorf("redis DBSIZE: %w", err)
	}
	return m, nil
}

// keyClass is what MEMORY USAGE finds for one kind of key.
type keyClass struct {
	name  string // the key's first two parts without the store's prefix, e.g. "s:ev"
	keys  int
	bytes int64
}

// keyUsage runs MEMORY USAGE (every element counted) on every key and
// sums it by class, largest first.
func (c *clusterProcs) keyUsage(ctx context.Context) ([]keyClass, error) {
	var keys []string
	iter := c.rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("redis SCAN: %w", err)
	}
	usage, err := c.usage(ctx, keys)
	if err != nil {
		return nil, err
	}
	by := map[string]*keyClass{}
	for i, k := range keys {
		parts := strings.SplitN(strings.TrimPrefix(k, redisKeyPrefix), ":", 3)
		name := strings.Join(parts[:min(2, len(parts))], ":")
		kc := by[name]
		if kc == nil {
			kc = &keyClass{name: name}
			by[name] = kc
		}
		kc.keys++
		kc.bytes += usage[i]
	}
	classes := make([]keyClass, 0, len(by))
	for _, kc := range by {
		classes = append(classes, *kc)
	}
	slices.SortFunc(classes, func(a, b keyClass) int { return int(b.bytes - a.bytes) })
	return classes, nil
}

// usage is MEMORY USAGE … SAMPLES 0 of each key (0: gone meanwhile).
func (c *clusterProcs) usage(ctx context.Context, keys []string) ([]int64, error) {
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.MemoryUsage(ctx, k, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) { // a key may expire meanwhile
		return nil, fmt.Errorf("redis MEMORY USAGE: %w", err)
	}
	out := make([]int64, len(keys))
	for i, cmd := range cmds {
		out[i] = cmd.Val()
	}
	return out, nil
}

// streamKey is the Redis key of an agent's stream (server/cluster
// "ev:<loginId>" in server/store's stream namespace "s:").
func streamKey(loginID string) string { return redisKeyPrefix + "s:ev:" + loginID }

// owners counts the agents' leases ("l:agent:*") each instance holds.
func (c *clusterProcs) owners(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	iter := c.rdb.Scan(ctx, 0, redisKeyPrefix+"l:agent:*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("redis SCAN of the agents' leases: %w", err)
	}
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 500)]
		keys = keys[len(batch):]
		vals, err := c.rdb.MGet(ctx, batch...).Result()
		if err != nil {
			return nil, fmt.Errorf("redis MGET of the agents' leases: %w", err)
		}
		for _, v := range vals {
			if s, ok := v.(string); ok {
				out[s]++
			}
		}
	}
	return out, nil
}

// crossTracker records, per event (requestId), its seq and arrival on
// the owner's tab (0, relay A) and on the follower's tab (1, relay B).
type crossTracker struct {
	mu  sync.Mutex
	evs map[string]*crossEvent
}

type crossEvent struct {
	got [2]bool
	seq [2]int64
	at  [2]time.Time
}

func newCrossTracker() *crossTracker { return &crossTracker{evs: make(map[string]*crossEvent)} }

// handler records tab's events, then passes every message to next.
func (c *crossTracker) handler(tab int, next OnMsg) OnMsg {
	return func(m *Msg, size int, at time.Time) {
		if m.Type == "event" && m.RequestID != "" {
			c.mu.Lock()
			e := c.evs[m.RequestID]
			if e == nil {
				e = &crossEvent{}
				c.evs[m.RequestID] = e
			}
			if !e.got[tab] {
				e.got[tab], e.seq[tab], e.at[tab] = true, m.Seq, at
			}
			c.mu.Unlock()
		}
		next(m, size, at)
	}
}

// crossFigures are one phase's events on both instances.
type crossFigures struct {
	added     []time.Duration // B arrival − A arrival, sorted
	missingB  int             // on A, not on B with the same seq
	otherSeqB int             // of which B got with another seq
	missingA  int             // on B, not on A
}

// take returns the figures of the events recorded so far and forgets
// them.
func (c *crossTracker) take() crossFigures {
	c.mu.Lock()
	evs := c.evs
	c.evs = make(map[string]*crossEvent)
	c.mu.Unlock()
	var f crossFigures
	for _, e := range evs {
		switch {
		case e.got[0] && e.got[1] && e.seq[0] == e.seq[1]:
			f.added = append(f.added, e.at[1].Sub(e.at[0]))
		case e.got[0] && e.got[1]:
			f.missingB++
			f.otherSeqB++
		case e.got[0]:
			f.missingB++
		default:
			f.missingA++
		}
	}
	slices.Sort(f.added)
	return f
}

// streamStats sums MEMORY USAGE and XLEN of the agents' streams.
func (c *clusterProcs) streamStats(ctx context.Context, ids []string) (bytes, entries int64, err error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = streamKey(id)
	}
	usage, err := c.usage(ctx, keys)
	if err != nil {
		return 0, 0, err
	}
	pipe := c.rdb.Pipeline()
	lens := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		lens[i] = pipe.XLen(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, fmt.Errorf("redis XLEN: %w", err)
	}
	for i := range keys {
		bytes += usage[i]
		entries += lens[i].Val()
	}
	return bytes, entries, nil
}

// fullStream is how many changes fill an agent's stream: the relay keeps
// RESUME_RING_SIZE (1,024) messages per agent, one per state change here,
// and a few more make sure it was trimmed.
const fullStream = 1024 + 16

// cluster signs n agents in on relay A (which then owns them), opens one
// tab per agent on A and one on B, signs them in to their phones, then
// drives the steady scenario's mix (rate changes/s as a Poisson process
// plus a burst of n/20 every 5 s) for d. Every event must reach both tabs
// with the same seq; B − A per event is what cross-instance delivery
// adds. Redis memory and keys are read before the sign-ins and after the
// events. Then fill agents get fullStream changes each, so that a full
// stream's memory is measured, not extrapolated.
func (r *run) cluster(ctx context.Context, n int, rate float64, d time.Duration, fill int) error {
	cl := r.st.cl
	relayB := &stack{relay: cl.relayB, base: cl.baseB, rl: cl.rlB} // for sampleRelay
	ids := AgentIDs(n)
	mem0, err := cl.memory(ctx)
	if err != nil {
		return err
	}
	a0, err := r.st.sampleRelay(ctx)
	if err != nil {
		return err
	}
	b0, err := relayB.sampleRelay(ctx)
	if err != nil {
		return err
	}
	cross := newCrossTracker()
	r.progress("%s: signing in %d agents on relay A, one tab each on A", r.res.Name, n)
	agents, _, err := r.signInAll(ctx, ids, 1, 64, func(int) OnMsg { return cross.handler(0, r.tr.onTab) })
	defer closeAll(agents)
	if err != nil {
		return err
	}
	r.progress("%s: one tab per agent on relay B (tickets from B with the same session)", r.res.Name)
	var opened atomic.Int64
	stop := r.ticker(ctx, func() string { return fmt.Sprintf("%d/%d tabs open on relay B", opened.Load(), n) })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for _, a := range agents {
		g.Go(func() error {
			ticket, err := cl.rlB.Ticket(gctx, a.session.Session)
			if err != nil {
				return fmt.Errorf("agent %s: relay B: %w", a.id, err)
			}
			t, err := cl.rlB.OpenTab(gctx, ticket, cross.handler(1, r.tr.onTab))
			if err != nil {
				return fmt.Errorf("agent %s: relay B: %w", a.id, err)
			}
			a.mu.Lock()
			a.tabs = append(a.tabs, t)
			a.mu.Unlock()
			opened.Add(1)
			return nil
		})
	}
	err = g.Wait()
	stop()
	if err != nil {
		return err
	}
	owners, err := cl.owners(ctx)
	if err != nil {
		return err
	}
	r.res.add("agents owned by relay A", float64(owners["relay-a"]), "", fmt.Sprint("= ", n), func(v float64) bool { return int(v) == n })
	r.progress("%s: LOGIN of every agent (each event to both tabs)", r.res.Name)
	if err := r.loginAll(ctx, ids, 2); err != nil {
		return fmt.Errorf("LOGIN: %w", err)
	}
	missingB := cross.take().missingB
	time.Sleep(time.Second)
	memSigned, err := cl.memory(ctx)
	if err != nil {
		return err
	}

	r.progress("%s: %.0f changes/s (Poisson) + a burst of %d every 5 s, for %v; each event to a tab on A and one on B", r.res.Name, rate, max(1, n/20), d)
	cpu := cpuMeter(r.st.relay.pid(), cl.relayB.pid(), cl.redis.pid())
	stopProfile := r.startCPUProfile(ctx, "the steady mix; relay A, the owner")
	gen := newGenerator(ids)
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
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
			if err := r.tr.change(ctx, r.st.up, 0, id, StateBody(gen.next(id)), 2, false); err != nil {
				failed.Add(1)
			}
		}()
	}
	stop = r.ticker(ctx, func() string {
		s := fmt.Sprintf("%d changes sent", sent.Load())
		if b, err := sampleProc(cl.relayB.pid()); err == nil {
			s += fmt.Sprintf("; relay B RSS %s", mib(b.RSS))
		}
		return s
	})
	t0 := steadyMix(ctx, d, rate, max(1, n/20), fire)
	wg.Wait()
	stop()
	elapsed := time.Since(t0)
	shares := cpu()
	stopProfile()
	evs := r.tr.take()
	late := r.tr.forget() + int(failed.Load())
	f := cross.take()
	missingB += f.missingB
	mem1, err := cl.memory(ctx)
	if err != nil {
		return err
	}
	classes, err := cl.keyUsage(ctx)
	if err != nil {
		return err
	}
	evBytes, evEntries, err := cl.streamStats(ctx, ids)
	if err != nil {
		return err
	}
	a1, err := r.st.sampleRelay(ctx)
	if err != nil {
		return err
	}
	b1, err := relayB.sampleRelay(ctx)
	if err != nil {
		return err
	}

	// A full stream, measured: fill agents get fullStream changes each.
	var fullBytes, fullEntries int64
	if fill = min(fill, n); fill > 0 {
		r.progress("%s: %d changes for each of %d agents, to fill their streams", r.res.Name, fullStream, fill)
		var done atomic.Int64
		stop = r.ticker(ctx, func() string { return fmt.Sprintf("%d/%d changes", done.Load(), fill*fullStream) })
		g, gctx := errgroup.WithContext(ctx)
		for _, id := range ids[:fill] {
			g.Go(func() error {
				for range fullStream {
					if err := r.tr.change(gctx, r.st.up, 0, id, StateBody(gen.next(id)), 2, false); err != nil {
						return fmt.Errorf("filling the stream of %s: %w", id, err)
					}
					done.Add(1)
				}
				return nil
			})
		}
		err := g.Wait()
		stop()
		r.tr.take()
		late += r.tr.forget()
		ff := cross.take()
		missingB += ff.missingB
		f.otherSeqB += ff.otherSeqB
		f.missingA += ff.missingA
		if err != nil {
			return err
		}
		if fullBytes, fullEntries, err = cl.streamStats(ctx, ids[:fill]); err != nil {
			return err
		}
	}

	r.res.add("events missing on B (or with another seq than on A)", float64(missingB), "", "0", lessEq(0))
	r.res.add("events B got with another seq than A", float64(f.otherSeqB), "", "", nil)
	r.res.add("events missing on A", float64(f.missingA), "", "", nil)
	r.res.add("changes not complete within 30 s (or failed)", float64(late), "", "", nil)
	var gapsA, gapsB int
	for _, a := range agents {
		a.mu.Lock()
		for j, t := range a.tabs {
			g, _, _ := t.Counters()
			if j == 0 {
				gapsA += g
			} else {
				gapsB += g
			}
		}
		a.mu.Unlock()
	}
	r.res.add("seq gaps on the tabs on A", float64(gapsA), "", "", nil)
	r.res.add("seq gaps on the tabs on B", float64(gapsB), "", "", nil)
	r.res.add("state changes (steady mix)", float64(sent.Load()), "", "", nil)
	r.res.add("events/s, each to 2 tabs (steady mix)", float64(len(evs))/elapsed.Seconds(), "", "", nil)
	r.res.add("events on both tabs with the same seq", float64(len(f.added)), "", "", nil)
	r.res.addDur("cross-instance delivery added (B − A) p50", pct(f.added, 50), "")
	r.res.addDur("cross-instance delivery added (B − A) p99", pct(f.added, 99), "")
	r.res.addDur("cross-instance delivery added (B − A) max", pct(f.added, 100), "")
	all := durations(evs, func(e *event) (time.Duration, bool) { return e.lastTab.Sub(e.sent), true })
	r.res.addDur("PUT → both tabs p50", pct(all, 50), "")
	r.res.addDur("PUT → both tabs p99", pct(all, 99), "")
	r.res.add("relay A CPU (steady mix)", shares[0], "% of a core", "", nil)
	r.res.add("relay B CPU (steady mix)", shares[1], "% of a core", "", nil)
	r.res.add("redis-server CPU (steady mix)", shares[2], "% of a core", "", nil)

	per1k := func(a, b int64) float64 { return float64(b-a) / float64(n) * 1000 / (1 << 20) }
	r.res.add("Redis used_memory before the sign-ins", float64(mem0.used)/(1<<20), "MiB", "", nil)
	r.res.add("Redis used_memory after the steady mix", float64(mem1.used)/(1<<20), "MiB", "", nil)
	r.res.add("Redis memory per 1,000 agents (used_memory)", per1k(mem0.used, mem1.used), "MiB", "", nil)
	r.res.add("Redis memory per 1,000 agents: data (used_memory_dataset)", per1k(mem0.dataset, mem1.dataset), "MiB", "", nil)
	r.res.add("Redis memory per 1,000 agents: connections (mem_clients_normal)", per1k(mem0.clients, mem1.clients), "MiB", "", nil)
	r.res.add("Redis data per 1,000 agents after LOGIN, before the steady mix (used_memory_dataset)", per1k(mem0.dataset, memSigned.dataset), "MiB", "", nil)
	r.res.add("Redis connections (connected_clients)", float64(mem1.conns), "", "", nil)
	r.res.add("Redis keys (DBSIZE)", float64(mem1.keys), "", "", nil)
	r.res.add("Redis keys per agent", float64(mem1.keys-mem0.keys)/float64(n), "", "", nil)
	for _, kc := range classes[:min(len(classes), 8)] {
		r.res.add(fmt.Sprintf("Redis %s:* (%d keys), MEMORY USAGE per 1,000 agents", kc.name, kc.keys), float64(kc.bytes)/float64(n)*1000/(1<<20), "MiB", "", nil)
	}
	if evEntries > 0 {
		r.res.add("agent stream entries (XLEN), mean", float64(evEntries)/float64(n), "", "", nil)
		r.res.add("agent stream MEMORY USAGE per entry", float64(evBytes)/float64(evEntries), "B", "", nil)
	}
	if fullEntries > 0 {
		r.res.add("full agent stream entries (XLEN)", float64(fullEntries)/float64(fill), "", "", nil)
		full := float64(fullBytes) / float64(fill)
		r.res.add("full agent stream MEMORY USAGE", full/1024, "KiB", "", nil)
		// Every agent's stream full, the rest as measured.
		perAgent := float64(mem1.used-mem0.used)/float64(n) - float64(evBytes)/float64(n) + full
		r.res.add("Redis memory per 1,000 agents once every stream is full", perAgent*1000/(1<<20), "MiB", "", nil)
	}

	r.res.add("relay A RSS (owner)", float64(a1.RSS)/(1<<20), "MiB", "", nil)
	r.res.add("relay B RSS (follower)", float64(b1.RSS)/(1<<20), "MiB", "", nil)
	r.res.add("relay A RSS per agent", float64(a1.RSS-a0.RSS)/float64(n)/1024, "KiB", "", nil)
	r.res.add("relay B RSS per followed agent", float64(b1.RSS-b0.RSS)/float64(n)/1024, "KiB", "", nil)
	r.res.add("relay A heap per agent (not after GC)", float64(a1.Heap-a0.Heap)/float64(n)/1024, "KiB", "", nil)
	r.res.add("relay B heap per followed agent (not after GC)", float64(b1.Heap-b0.Heap)/float64(n)/1024, "KiB", "", nil)
	r.res.add("relay A goroutines per agent", float64(a1.Goroutines-a0.Goroutines)/float64(n), "", "", nil)
	r.res.add("relay B goroutines per followed agent", float64(b1.Goroutines-b0.Goroutines)/float64(n), "", "", nil)
	return nil
}
