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

// replica follows an agent owned by another instance for this instance's
// tabs: a gadget.Stream fed from the agent's stream in the store by one
// reader goroutine.
type replica struct {
	loginID string
	stream  *gadget.Stream
	cancel  context.CancelFunc

	mu        sync.Mutex
	subs      int
	idleSince time.Time
	side      string // the owner's Finesse side, from its latest status
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
	r := &replica{loginID: loginID, idleSince: time.Now()}
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
	rctx, rcancel := context.WithCancel(c.ctx)
	r.cancel = rcancel
	c.replicas[loginID] = r
	c.m.replicas.Inc()
	c.wg.Add(1)
	go c.follow(rctx, r, seed.Snapshot.Seq)
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

// follow applies the agent's stored messages after seq to r until ctx
// ends, the stream ends, or r has had no tab for replicaIdleExpiry.
func (c *Cluster) follow(ctx context.Context, r *replica, after int64) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		if c.replicas[r.loginID] == r {
			delete(c.replicas, r.loginID)
			c.m.replicas.Dec()
		}
		c.mu.Unlock()
		r.cancel()
	}()
	backoff := 100 * time.Millisecond
	last := after // the replica's seq
	for ctx.Err() == nil {
		if r.idleFor(replicaIdleExpiry) {
			return
		}
		es, err := c.cfg.Store.Read(ctx, streamName(r.loginID), after, replicaReadLimit, replicaReadWait)
		if err != nil {
			if !errors.Is(err, store.ErrUnavailable) {
				c.log.Warn("reading an agent's stream failed", zap.String("agent", r.loginID), zap.Error(err))
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for _, e := range es {
			after = e.Seq
			msg, err := gadget.DecodeMessage(e.Data)
			if err != nil {
				c.log.Warn("an unreadable message in the store is skipped", zap.String("agent", r.loginID), zap.Int64("seq", e.Seq), zap.Error(err))
				continue
			}
			if msg.Seq > last+1 && msg.Kind != gadget.MessageEnd {
				// Messages lost (trimmed while this replica lagged, or never
				// appended): the node states may be stale. The tabs reconnect
				// (4102) to a replica rebuilt from the stored snapshot.
				c.log.Warn("messages missing from an agent's stream; rebuilding the replica from the snapshot",
					zap.String("agent", r.loginID), zap.Int64("have", last), zap.Int64("next", msg.Seq))
				c.m.gaps.Inc()
				r.stream.End(agent.EndShutdown)
				return
			}
			last = max(last, msg.Seq)
			if msg.Kind == gadget.MessageStatus && msg.Status.Side != "" {
				r.mu.Lock()
				r.side = msg.Status.Side
				r.mu.Unlock()
			}
			if r.stream.Apply(msg) {
				c.m.followed.Inc()
			}
			if msg.Kind == gadget.MessageEnd {
				return
			}
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
