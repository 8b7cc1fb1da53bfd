package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"finesse-relay/gadget"
	"finesse-relay/server/agent"
	"finesse-relay/server/store"
)

// Followers: the agents owned by other instances that this instance's tabs
// watch are split over followShards readers by hash of the loginId. Each
// reader follows its agents' streams with one ReadStreams call at a time,
// so an instance holds followShards store connections for them however
// many agents it follows, and one wake-up reads at most 1/followShards of
// them.
const (
	followShards = 8
	// followWait bounds one ReadStreams wait: a replica added meanwhile is
	// read from at the next call (its first messages wait at most this).
	followWait = 250 * time.Millisecond
)

// replica follows an agent owned by another instance for this instance's
// tabs: a gadget.Stream fed from the agent's stream in the store by its
// shard's reader.
type replica struct {
	loginID string
	shard   int
	stream  *gadget.Stream

	mu        sync.Mutex
	subs      int
	idleSince time.Time
	side      string // the owner's Finesse side, from its latest status
	last      int64  // the replica's seq (its reader only)
}

func (r *replica) subscribers(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs = n
	if n == 0 {
		r.idleSince = time.Now()
	}
}

func (r *replica) idleFor(d time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.subs == 0 && time.Since(r.idleSince) >= d
}

// Replica returns the Stream that gives this instance's tabs the messages
// of an agent owned by another instance, building it from the store the
// first time. ok is false when the agent has no stream in the store (no
// instance runs its session) or the Cluster is not running.
func (c *Cluster) Replica(loginID string) (*gadget.Stream, bool) {
	c.mu.Lock()
	ctx := c.ctx
	if r := c.replicas[loginID]; r != nil {
		c.mu.Unlock()
		return r.stream, true
	}
	c.mu.Unlock()
	if ctx == nil {
		return nil, false
	}
	lctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
	seed, err := c.loadSeed(lctx, loginID)
	cancel()
	if err != nil {
		c.log.Warn("cannot follow an agent owned by another instance", zap.String("agent", loginID), zap.Error(err))
		return nil, false
	}
	if seed == nil {
		return nil, false
	}
	r := &replica{loginID: loginID, shard: shard(loginID, followShards), idleSince: time.Now(), last: seed.Snapshot.Seq}
	if seed.Snapshot.Status != nil {
		r.side = seed.Snapshot.Status.Side
	}
	cfg := c.cfg.Stream
	cfg.Continue = seed
	cfg.OnMessage = nil
	cfg.OnSubscribers = r.subscribers
	r.stream = gadget.NewStream(cfg)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		return nil, false
	}
	if other := c.replicas[loginID]; other != nil { // built meanwhile by another tab
		return other.stream, true
	}
	c.replicas[loginID] = r
	c.byShard[r.shard][loginID] = r
	c.m.replicas.Inc()
	select {
	case c.wakeFollow[r.shard] <- struct{}{}:
	default:
	}
	return r.stream, true
}

// Side returns the Finesse side the owner of a followed agent last
// reported ("" when not followed here), for REST calls made from this
// instance.
func (c *Cluster) Side(loginID string) string {
	c.mu.Lock()
	r := c.replicas[loginID]
	c.mu.Unlock()
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.side
}

// follow is shard i's reader: it applies the stored messages of the shard's
// replicas until ctx ends.
func (c *Cluster) follow(ctx context.Context, i int) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		reps := c.shardReplicas(i)
		if len(reps) == 0 {
			select {
			case <-ctx.Done():
			case <-c.wakeFollow[i]:
			}
			continue
		}
		from := make(map[string]int64, len(reps))
		for id, r := range reps {
			from[streamName(id)] = r.last
		}
		got, err := c.cfg.Store.ReadStreams(ctx, from, replicaReadLimit, followWait)
		if err != nil {
			if !errors.Is(err, store.ErrUnavailable) {
				c.log.Warn("reading agents' streams failed", zap.Int("agents", len(from)), zap.Error(err))
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for id, r := range reps {
			if es := got[streamName(id)]; len(es) > 0 {
				c.applyAll(r, es)
			}
		}
	}
}

// shardReplicas returns shard i's replicas, forgetting those that had no
// tab for replicaIdleExpiry.
func (c *Cluster) shardReplicas(i int) map[string]*replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*replica, len(c.byShard[i]))
	for id, r := range c.byShard[i] {
		if r.idleFor(replicaIdleExpiry) {
			c.dropReplicaLocked(r)
			continue
		}
		out[id] = r
	}
	return out
}

func (c *Cluster) dropReplicaLocked(r *replica) {
	if c.replicas[r.loginID] == r {
		delete(c.replicas, r.loginID)
		delete(c.byShard[r.shard], r.loginID)
		c.m.replicas.Dec()
	}
}

// applyAll applies entries read from r's stream to r. Messages missing
// (trimmed while the replica lagged, or never appended) or the stream's end
// drop the replica: the next tab builds a new one from the snapshot.
func (c *Cluster) applyAll(r *replica, es []store.Entry) {
	for _, e := range es {
		msg, err := gadget.DecodeMessage(e.Data)
		if err != nil {
			c.log.Warn("an unreadable message in the store is skipped", zap.String("agent", r.loginID), zap.Int64("seq", e.Seq), zap.Error(err))
			r.last = e.Seq
			continue
		}
		if msg.Seq > r.last+1 && msg.Kind != gadget.MessageEnd {
			// The node states may be stale: the tabs reconnect (4102) to a
			// replica rebuilt from the stored snapshot.
			c.log.Warn("messages missing from an agent's stream; rebuilding the replica from the snapshot",
				zap.String("agent", r.loginID), zap.Int64("have", r.last), zap.Int64("next", msg.Seq))
			c.m.gaps.Inc()
			r.stream.End(agent.EndShutdown)
			c.mu.Lock()
			c.dropReplicaLocked(r)
			c.mu.Unlock()
			return
		}
		r.last = max(r.last, msg.Seq)
		if msg.Kind == gadget.MessageStatus && msg.Status.Side != "" {
			r.mu.Lock()
			r.side = msg.Status.Side
			r.mu.Unlock()
		}
		if r.stream.Apply(msg) {
			c.m.followed.Inc()
		}
		if msg.Kind == gadget.MessageEnd {
			c.mu.Lock()
			c.dropReplicaLocked(r)
			c.mu.Unlock()
			return
		}
	}
}

// touchReplicas marks every followed agent with tabs here as watched, so
// its owner keeps the Session past its grace period.
func (c *Cluster) touchReplicas(ctx context.Context) {
	c.mu.Lock()
	var ids []string
	for id, r := range c.replicas {
		r.mu.Lock()
		if r.subs > 0 {
			ids = append(ids, id)
		}
		r.mu.Unlock()
	}
	c.mu.Unlock()
	for _, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
		if err := c.cfg.Store.Put(cctx, watchKey(id), []byte(c.cfg.Instance), c.cfg.LeaseTTL); err != nil {
			c.log.Warn("cannot mark an agent watched", zap.String("agent", id), zap.Error(err))
		}
		cancel()
	}
}
