package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"go.uber.org/zap"

	"finesse-relay/server/store"
)

// One active relay per shared store. Agent sessions are owned by the
// instance that serves them; until ownership per agent exists, two active
// instances on one Redis would each open the same agents' upstream
// sessions. The active instance holds a lease in the store and renews it;
// another instance started on the same store waits as a standby (not
// ready, nothing served) and takes over, restoring every live session,
// once the lease is free: the active one stopped (it releases the lease)
// or died (the lease expires after activeLeaseTTL).
const (
	activeLease      = "relay:active"
	activeLeaseTTL   = 15 * time.Second
	activeLeaseRenew = 5 * time.Second
)

// instanceID names this instance in the store.
func instanceID(cfg *Config, addr net.Addr) string {
	if cfg.InstanceID != "" {
		return cfg.InstanceID
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d@%s", host, os.Getpid(), addr)
}

// leaseHolder holds the active lease while the relay runs.
type leaseHolder struct {
	st    store.Store
	owner string
	log   *zap.Logger
}

// acquire waits until this instance holds the lease or ctx ends. It logs
// once that it is a standby while another instance is active.
func (l *leaseHolder) acquire(ctx context.Context) error {
	said := false
	for {
		_, ok, err := l.st.Acquire(ctx, activeLease, l.owner, activeLeaseTTL)
		if err == nil && ok {
			if said {
				l.log.Info("the active instance is gone: taking over", zap.String("instance", l.owner))
			}
			return nil
		}
		if !said {
			holder, _, _ := l.st.Holder(ctx, activeLease)
			l.log.Warn("standby: another relay instance is active on this store; waiting to take over",
				zap.String("active", holder), zap.String("instance", l.owner), zap.Error(err))
			said = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(activeLeaseRenew):
		}
	}
}

// keep renews the lease until ctx ends (then releases it). Losing it (a
// pause longer than its TTL let another instance take over) is an error:
// the relay stops rather than serve agents another instance now serves.
func (l *leaseHolder) keep(ctx context.Context) error {
	t := time.NewTicker(activeLeaseRenew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = l.st.Release(rctx, activeLease, l.owner)
			return nil
		case <-t.C:
		}
		_, ok, err := l.st.Acquire(ctx, activeLease, l.owner, activeLeaseTTL)
		switch {
		case err != nil && errors.Is(err, store.ErrUnavailable):
			l.log.Warn("store unavailable: cannot renew the active lease", zap.Error(err))
		case err != nil:
			return fmt.Errorf("active lease: %w", err)
		case !ok:
			holder, _, _ := l.st.Holder(ctx, activeLease)
			return fmt.Errorf("active lease lost to %s: stopping so that one instance serves the agents", holder)
		}
	}
}
