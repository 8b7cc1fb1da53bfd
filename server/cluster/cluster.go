// Package cluster lets several active relay instances share one store
// (Redis): exactly one instance owns each agent's upstream session, and
// every instance with a browser of that agent gives it the same messages
// in the same seq order.
//
// Ownership is a lease per agent ("agent:<loginId>", LeaseTTL, renewed by
// the owner every LeaseTTL/3, fenced): the owner runs the agent's
// agent.Session and gadget.Stream in its Manager, and appends every
// message the Stream numbers to the agent's stream in the store
// ("ev:<loginId>", trimmed to StreamLen entries, idle streams expire),
// fenced by its lease so a paused former owner cannot write after losing
// it. At each lease renewal (LeaseTTL/3) it also stores the Snapshot of
// every Stream that changed ("snap:<loginId>"), so an instance can start a
// replica long after the first messages were trimmed. A full append queue
// makes the publishing Session wait (up to 5 s) rather than drop.
//
// Another instance that gets a browser of the agent builds a replica
// gadget.Stream from the snapshot and the stream, and follows the stream;
// its tabs see the owner's frames, seq and stream id, and resume from the
// replica's ring. An instance's replicas are split over a fixed number of
// readers (followShards), each following its agents with one
// store.ReadStreams call (one Redis connection) at a time. While it
// has tabs it marks the agent watched ("watch:<loginId>"), so the owner's
// grace period does not end a session whose browsers are all elsewhere.
//
// When the owner dies its lease expires; Adopt (run periodically by main
// through the sign-in layer's Restore) lets any instance take it, and the
// new owner's Stream continues the stored one: same id, seq going on from
// the last stored message, ring filled from the stream. On a graceful stop
// the owner releases its leases, so another instance adopts its agents
// within one adoption round.
//
// On one instance nothing here is used: the local path has no store round
// trip.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"finesse-relay/gadget"
	"finesse-relay/server/agent"
	"finesse-relay/server/cred"
	"finesse-relay/server/store"
	"finesse-relay/xmpp/finesse"
)

// Defaults for Config's zero values.
const (
	DefaultLeaseTTL     = 15 * time.Second
	DefaultStreamLen    = 1024
	DefaultStreamTTL    = time.Hour
	DefaultStreamMaxAge = 5 * time.Minute
	DefaultQueueSize    = 16384
	DefaultAppenders    = 8
	// enqueueWait is how long a message waits for room in a full append
	// queue (its Session's upstream reading waits meanwhile) before it is
	// dropped.
	enqueueWait       = 5 * time.Second
	replicaReadLimit  = 256
	replicaIdleExpiry = 30 * time.Second
	storeCallTimeout  = 5 * time.Second
)

// Store names.
func leaseName(loginID string) string  { return "agent:" + loginID }
func streamName(loginID string) string { return "ev:" + loginID }
func snapKey(loginID string) string    { return "snap:" + loginID }
func watchKey(loginID string) string   { return "watch:" + loginID }

// Config configures a Cluster.
type Config struct {
	// Store is the store every instance shares.
	Store store.Store
	// Instance names this instance (lease owner); unique per instance.
	Instance string
	// Manager runs the agents this instance owns.
	Manager *agent.Manager
	// Stream is the base configuration of every Stream the Cluster builds
	// (ring and queue sizes, metrics, logger); OnMessage, Continue and
	// OnSubscribers are set by the Cluster.
	Stream gadget.StreamConfig
	// LeaseTTL is how long an owner's lease lasts unrenewed: how long a
	// dead owner's agents wait before another instance adopts them
	// (default 15s; keep it well under Finesse's 60 s presence window).
	LeaseTTL time.Duration
	// StreamLen is how many messages of each agent the store keeps (default
	// 1024, the resume ring's size).
	StreamLen int
	// StreamMaxAge trims an agent's stream by age as well: messages older
	// than this are dropped, the newest 32 whatever their age (default 5m,
	// at most 10m; a tab resuming from before gets a snapshot anyway).
	StreamMaxAge time.Duration
	// StreamTTL is how long an agent's stream and snapshot outlive its last
	// message (default 1h).
	StreamTTL time.Duration
	// QueueSize bounds the messages waiting to be appended (default 8192);
	// when full a message is dropped for the other instances (counted): their
	// tabs see a seq gap and get a snapshot.
	QueueSize int
	Logger    *zap.Logger
	Metrics   *Metrics
}

// Cluster coordinates this instance with the others on the store. It
// implements the sign-in layer's Agents (Join, Running) and gives the
// browser side the agent's Stream wherever its session runs (StreamOf).
type Cluster struct {
	cfg Config
	log *zap.Logger
	m   *Metrics

	queues []chan appendJob

	// wakeFollow tells a follow shard's reader that it has a new replica.
	wakeFollow [followShards]chan struct{}

	mu       sync.Mutex
	owned    map[string]*owned   // agents whose lease this instance holds
	replicas map[string]*replica // agents followed for local tabs
	// byShard holds the same replicas by follow shard, so that a shard's
	// reader never walks the others' (it does at every wake-up).
	byShard [followShards]map[string]*replica
	ctx     context.Context // Run's; nil when not running
}

// owned is an agent whose lease this instance holds.
type owned struct {
	fence  int64
	seed   *gadget.Continue // the stored stream to continue (nil: a new one)
	stream *gadget.Stream   // set once the Session's Stream exists
	// changed: messages were appended since the snapshot was last stored.
	changed atomic.Bool
	lost    atomic.Bool
	// dirty: a message was dropped; the next renewal stores the snapshot,
	// so an instance starting a replica sees the current state.
	dirty atomic.Bool
	// recent counts the messages appended lately (appender goroutine).
	recent recentCounts
}

// recentCounts counts appends in 10-second buckets, to trim an agent's
// stream by age as well as by count: entries older than StreamMaxAge go.
type recentCounts struct {
	buckets [recentBuckets]struct {
		start time.Time
		n     int
	}
}

const (
	recentBucket  = 10 * time.Second
	recentBuckets = 64 // covers StreamMaxAge up to 10 min
	// minKept is the fewest entries kept whatever their age, so that an
	// instance starting a replica finds the messages after the snapshot
	// (stored at most a renewal, LeaseTTL/3, ago).
	minKept = 32
)

// keep records one append at now and returns how many entries the stream
// should keep: those appended within maxAge, at least minKept, at most max.
func (r *recentCounts) keep(now time.Time, maxAge time.Duration, limit int) int {
	slot := now.Truncate(recentBucket)
	b := &r.buckets[int(slot.Unix()/int64(recentBucket/time.Second))%recentBuckets]
	if !b.start.Equal(slot) {
		b.start, b.n = slot, 0
	}
	b.n++
	n := 0
	for i := range r.buckets {
		if !r.buckets[i].start.IsZero() && now.Sub(r.buckets[i].start) < maxAge+recentBucket {
			n += r.buckets[i].n
		}
	}
	return min(max(n, minKept), limit)
}

// appendJob is one message for the store.
type appendJob struct {
	loginID string
	o       *owned
	msg     gadget.Message
}

// New returns a Cluster; Run must run for it to work.
func New(cfg Config) (*Cluster, error) {
	if cfg.Store == nil || cfg.Manager == nil || cfg.Instance == "" {
		return nil, errors.New("cluster: Config needs Store, Manager and Instance")
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.StreamLen <= 0 {
		cfg.StreamLen = DefaultStreamLen
	}
	if cfg.StreamTTL <= 0 {
		cfg.StreamTTL = DefaultStreamTTL
	}
	if cfg.StreamMaxAge <= 0 || cfg.StreamMaxAge > 10*time.Minute {
		cfg.StreamMaxAge = DefaultStreamMaxAge
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger.Named("cluster"), m: cfg.Metrics,
		owned: make(map[string]*owned), replicas: make(map[string]*replica)}
	for i := range c.wakeFollow {
		c.wakeFollow[i] = make(chan struct{}, 1)
		c.byShard[i] = make(map[string]*replica)
	}
	for range DefaultAppenders {
		c.queues = append(c.queues, make(chan appendJob, cfg.QueueSize/DefaultAppenders+1))
	}
	return c, nil
}

// Run renews this instance's leases and appends its agents' messages
// until ctx ends. Stop the Manager first (its Sessions' last messages are
// appended, their leases released); Run then drains what is queued and
// ends the replicas.
func (c *Cluster) Run(ctx context.Context) error {
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
	var wg sync.WaitGroup
	drain := make(chan struct{})
	for _, q := range c.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.appendLoop(q, drain)
		}()
	}
	var followers sync.WaitGroup
	for i := range followShards {
		followers.Add(1)
		go func() {
			defer followers.Done()
			c.follow(ctx, i)
		}()
	}
	t := time.NewTicker(c.cfg.LeaseTTL / 3)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			c.renew(ctx)
			c.touchReplicas(ctx)
		}
	}
	c.mu.Lock()
	c.ctx = nil
	c.mu.Unlock()
	followers.Wait()
	close(drain)
	wg.Wait()
	return nil
}

// Join implements the sign-in layer's Agents: it joins the agent's Session
// here when this instance owns it, takes the lease and starts the Session
// when no instance does, and otherwise leaves the agent to its owner
// (which reads the credential the sign-in layer just stored).
func (c *Cluster) Join(ctx context.Context, user *finesse.User, creds cred.Source) (bool, error) {
	id := user.LoginID
	if _, ok := c.cfg.Manager.Get(id); ok {
		_, created, err := c.cfg.Manager.Join(user, creds)
		return created, err
	}
	fence, ok, err := c.cfg.Store.Acquire(ctx, leaseName(id), c.cfg.Instance, c.cfg.LeaseTTL)
	if err != nil {
		return false, fmt.Errorf("cluster: take the lease of %s: %w", id, err)
	}
	if !ok {
		return false, nil
	}
	seed, err := c.loadSeed(ctx, id)
	if err != nil {
		c.release(id)
		return false, err
	}
	c.mu.Lock()
	c.owned[id] = &owned{fence: fence, seed: seed}
	c.mu.Unlock()
	_, created, err := c.cfg.Manager.Join(user, creds)
	if err != nil {
		c.disown(id, nil)
		return false, err
	}
	if created {
		// Stored at once so that another instance can follow the agent
		// before the appender's first snapshot.
		c.mu.Lock()
		o := c.owned[id]
		c.mu.Unlock()
		if o != nil {
			c.storeSnapshot(ctx, id, o)
		}
		c.m.adopted.Inc()
		c.log.Info("agent owned here", zap.String("agent", id), zap.Int64("fence", fence), zap.Bool("continued", seed != nil))
	}
	return created, nil
}

// Running implements the sign-in layer's Agents: the agent's Session runs
// here, or another instance holds its lease.
func (c *Cluster) Running(ctx context.Context, loginID string) bool {
	if _, ok := c.cfg.Manager.Get(loginID); ok {
		return true
	}
	holder, _, err := c.cfg.Store.Holder(ctx, leaseName(loginID))
	return err == nil && holder != c.cfg.Instance
}

// Watched is agent.Config.WatchedElsewhere: another instance has tabs of
// the agent (or the store cannot tell, which keeps the Session).
func (c *Cluster) Watched(loginID string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	_, err := c.cfg.Store.Get(ctx, watchKey(loginID))
	return !errors.Is(err, store.ErrNotFound)
}

// OwnerStream is the Stream of a Session this instance owns (called from
// agent.Config.NewPublisher): it continues the stored stream when there is
// one (continued reports it) and appends every message to the store. base
// is the Stream's configuration (OnSubscribers set by the Session).
func (c *Cluster) OwnerStream(loginID string, base gadget.StreamConfig) (st *gadget.Stream, continued bool) {
	c.mu.Lock()
	o := c.owned[loginID]
	c.mu.Unlock()
	if o == nil {
		// Not through Join (it cannot happen in the relay): the Stream is
		// served locally and not shared.
		c.log.Error("a Session started without the agent's lease; its messages stay on this instance", zap.String("agent", loginID))
		return gadget.NewStream(base), false
	}
	base.Continue = o.seed
	base.OnMessage = func(msg gadget.Message) { c.enqueue(loginID, o, msg) }
	st = gadget.NewStream(base)
	c.mu.Lock()
	continued = o.seed != nil && o.seed.Snapshot.Seq >= 0
	o.stream = st
	o.seed = nil
	c.mu.Unlock()
	return st, continued
}

// Ended is told that the Stream of an owned agent ended: the lease is
// released (after the queued messages are appended) so another instance may
// take the agent at once.
func (c *Cluster) Ended(loginID string, st *gadget.Stream) {
	c.mu.Lock()
	o := c.owned[loginID]
	c.mu.Unlock()
	if o == nil || o.stream != st {
		return
	}
	c.enqueue(loginID, o, gadget.Message{Kind: releaseKind})
}

// releaseKind marks the job that releases the lease after the agent's last
// message; it never reaches the store as a message.
const releaseKind gadget.MessageKind = 0

// enqueue hands msg to the agent's appender without blocking (it runs
// under the Stream's lock).
func (c *Cluster) enqueue(loginID string, o *owned, msg gadget.Message) {
	q := c.queues[shard(loginID, len(c.queues))]
	j := appendJob{loginID: loginID, o: o, msg: msg}
	select {
	case q <- j:
		c.m.queued.Inc()
		return
	default:
	}
	// Full (a sign-in storm, Redis slow): the Session waits a little
	// rather than lose the message for the other instances.
	t := time.NewTimer(enqueueWait)
	defer t.Stop()
	select {
	case q <- j:
		c.m.queued.Inc()
	case <-t.C:
		c.m.dropped.Inc()
		o.dirty.Store(true)
		c.log.Warn("append queue full: a message is not shared with the other instances (their tabs get a snapshot)",
			zap.String("agent", loginID), zap.Int64("seq", msg.Seq))
	}
}

func shard(loginID string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(loginID))
	return int(h.Sum32() % uint32(n)) // #nosec G115 -- n is the small, positive number of appenders
}

// appendLoop appends the jobs of one shard in order; once drain is
// closed it appends what is queued and returns. (The queues are never
// closed: a Session may still publish while the relay stops; what it
// queues after the drain is not shared, which matters to no one then.)
func (c *Cluster) appendLoop(q chan appendJob, drain <-chan struct{}) {
	draining := false
	for {
		var j appendJob
		if draining {
			select {
			case j = <-q:
			default:
				return
			}
		} else {
			select {
			case j = <-q:
			case <-drain:
				draining = true
				continue
			}
		}
		c.m.queued.Dec()
		c.appendOne(j)
	}
}

func (c *Cluster) appendOne(j appendJob) {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	if j.msg.Kind == releaseKind {
		c.storeSnapshot(ctx, j.loginID, j.o)
		c.disown(j.loginID, j.o)
		return
	}
	if j.o.lost.Load() {
		return
	}
	if j.msg.Kind == gadget.MessageEnd && j.msg.Reason == agent.EndShutdown {
		// This instance stops; another one adopts the agent and goes on.
		return
	}
	e := store.Entry{Seq: j.msg.Seq, Data: gadget.EncodeMessage(j.msg)}
	start := time.Now()
	keep := j.o.recent.keep(start, c.cfg.StreamMaxAge, c.cfg.StreamLen)
	var err error
	// While the store is unreachable the message waits (and the agents
	// behind it in this shard): up to a lease, no other instance can take
	// the agent either, and a short Redis restart then costs no message.
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		actx, acancel := context.WithTimeout(context.Background(), storeCallTimeout)
		err = c.cfg.Store.AppendFenced(actx, leaseName(j.loginID), j.o.fence, streamName(j.loginID), e, keep, c.cfg.StreamTTL)
		acancel()
		if err == nil || !errors.Is(err, store.ErrUnavailable) || time.Since(start) > c.cfg.LeaseTTL || j.o.lost.Load() {
			break
		}
		time.Sleep(backoff)
	}
	switch {
	case err == nil:
		c.m.appended.Inc()
		c.m.appendSeconds.Observe(time.Since(start).Seconds())
		if j.msg.Kind == gadget.MessageEnd {
			c.storeSnapshot(ctx, j.loginID, j.o) // ended: its lock is free
		} else {
			j.o.changed.Store(true) // stored by the next renewal
		}
	case errors.Is(err, store.ErrLeaseLost):
		c.lose(j.loginID, j.o, err)
	case errors.Is(err, store.ErrStaleSeq):
		c.log.Warn("a message's seq is already in the store; not appended", zap.String("agent", j.loginID), zap.Error(err))
	default:
		c.m.dropped.Inc()
		c.log.Warn("a message could not be appended to the store; the other instances' tabs get a snapshot", zap.String("agent", j.loginID), zap.Error(err))
	}
}

// storeSnapshot stores the owned Stream's snapshot. It takes the Stream's
// lock, so it never runs on an appender while that agent's messages may
// be waiting for room in the appender's queue (under that lock): on the
// renewer, or for a Stream that has ended.
func (c *Cluster) storeSnapshot(ctx context.Context, loginID string, o *owned) {
	c.mu.Lock()
	st := o.stream
	c.mu.Unlock()
	if st == nil {
		return
	}
	snap := st.Snapshot()
	if snap.Ended && snap.Reason == agent.EndShutdown {
		// This instance stopped, the agent did not: the instance that
		// adopts it continues from the last snapshot and the messages after.
		return
	}
	if err := c.cfg.Store.Put(ctx, snapKey(loginID), gadget.EncodeSnapshot(snap), c.cfg.StreamTTL); err != nil {
		c.log.Warn("the agent's snapshot could not be stored", zap.String("agent", loginID), zap.Error(err))
	}
}

// renew renews every lease this instance holds; a lease lost (this
// instance paused longer than LeaseTTL and another took the agent) ends the
// local Session.
func (c *Cluster) renew(ctx context.Context) {
	c.mu.Lock()
	all := make(map[string]*owned, len(c.owned))
	for id, o := range c.owned {
		all[id] = o
	}
	c.mu.Unlock()
	for id, o := range all {
		cctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
		fence, ok, err := c.cfg.Store.Acquire(cctx, leaseName(id), c.cfg.Instance, c.cfg.LeaseTTL)
		cancel()
		switch {
		case err != nil:
			c.log.Warn("cannot renew an agent's lease", zap.String("agent", id), zap.Error(err))
		case !ok || fence != o.fence:
			c.lose(id, o, fmt.Errorf("lease of %s now held with fence %d (ours %d)", id, fence, o.fence))
		case o.dirty.Swap(false), o.changed.Swap(false):
			sctx, scancel := context.WithTimeout(ctx, storeCallTimeout)
			c.storeSnapshot(sctx, id, o)
			scancel()
		}
	}
	c.m.owned.Set(float64(len(all)))
}

// lose ends the local Session of an agent whose lease another instance
// holds now.
func (c *Cluster) lose(loginID string, o *owned, why error) {
	if o.lost.Swap(true) {
		return
	}
	c.mu.Lock()
	if c.owned[loginID] == o {
		delete(c.owned, loginID)
	}
	c.mu.Unlock()
	c.m.lost.Inc()
	c.log.Warn("lost an agent's lease to another instance; ending the session here", zap.String("agent", loginID), zap.Error(why))
	if s, ok := c.cfg.Manager.Get(loginID); ok {
		s.End(agent.EndShutdown) // asks the Session to end; does not wait
	}
}

// disown forgets an owned agent and releases its lease (o nil: whatever
// is owned).
func (c *Cluster) disown(loginID string, o *owned) {
	c.mu.Lock()
	cur := c.owned[loginID]
	if cur == nil || (o != nil && cur != o) {
		c.mu.Unlock()
		return
	}
	delete(c.owned, loginID)
	c.mu.Unlock()
	c.release(loginID)
}

func (c *Cluster) release(loginID string) {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	if err := c.cfg.Store.Release(ctx, leaseName(loginID), c.cfg.Instance); err != nil && !errors.Is(err, store.ErrLeaseLost) {
		c.log.Warn("could not release an agent's lease; it expires by itself", zap.String("agent", loginID), zap.Error(err))
	}
}

// loadSeed reads what a new Stream of the agent continues: the stored
// snapshot and the messages after it, plus the ones before it that are
// still stored (for resumes). nil when the agent has no stored stream.
func (c *Cluster) loadSeed(ctx context.Context, loginID string) (*gadget.Continue, error) {
	b, err := c.cfg.Store.Get(ctx, snapKey(loginID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: load the snapshot of %s: %w", loginID, err)
	}
	snap, err := gadget.DecodeSnapshot(b)
	if err != nil {
		c.log.Warn("the stored snapshot is unreadable; starting a new stream", zap.String("agent", loginID), zap.Error(err))
		return nil, nil
	}
	if snap.Ended {
		return nil, nil
	}
	es, err := c.cfg.Store.Read(ctx, streamName(loginID), -1, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("cluster: read the stream of %s: %w", loginID, err)
	}
	seed := &gadget.Continue{Snapshot: snap}
	var after []gadget.Message
	for _, e := range es {
		msg, err := gadget.DecodeMessage(e.Data)
		if err != nil {
			c.log.Warn("an unreadable message in the store is skipped", zap.String("agent", loginID), zap.Int64("seq", e.Seq), zap.Error(err))
			continue
		}
		if msg.Seq <= snap.Seq {
			seed.Ring = append(seed.Ring, msg)
		} else {
			after = append(after, msg)
		}
	}
	// The ring must end at the snapshot's seq with consecutive seqs.
	seed.Ring = consecutiveTail(seed.Ring, snap.Seq)
	if len(after) > 0 {
		// Messages appended after the snapshot was stored: build the Stream
		// at the snapshot, apply them, and continue from its snapshot.
		st := gadget.NewStream(gadget.StreamConfig{Continue: seed})
		for _, msg := range after {
			st.Apply(msg)
		}
		snap2 := st.Snapshot()
		ring := append(seed.Ring, after...) //nolint:gocritic // a new slice is fine
		seed = &gadget.Continue{Snapshot: snap2, Ring: consecutiveTail(ring, snap2.Seq)}
		if snap2.Ended {
			return nil, nil
		}
	}
	return seed, nil
}

// consecutiveTail returns the longest run of msgs whose seqs are
// consecutive and end at last.
func consecutiveTail(msgs []gadget.Message, last int64) []gadget.Message {
	if len(msgs) == 0 || msgs[len(msgs)-1].Seq != last {
		return nil
	}
	i := len(msgs) - 1
	for i > 0 && msgs[i-1].Seq == msgs[i].Seq-1 {
		i--
	}
	return msgs[i:]
}
