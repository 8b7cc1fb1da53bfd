//go:build !windows

package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"finesse-relay/server/seal"
	"finesse-relay/server/sim"
)

// redisForTest returns the test Redis (scripts/test.sh starts one and sets
// FINESSE_REDIS_URL) with a key prefix of the test's own. With CI set a
// missing Redis fails the test; without, it skips.
func redisForTest(t *testing.T) string {
	t.Helper()
	u := os.Getenv("FINESSE_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("FINESSE_REDIS_URL is not set: scripts/test.sh starts redis-server with scripts/redis-start.sh")
		}
		t.Skip("FINESSE_REDIS_URL not set (run scripts/redis-start.sh)")
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "key_prefix=" + "test-" + randomToken()[:12] + ":"
}

// relayInstance is one in-process relay on a shared store.
type relayInstance struct {
	base string
	stop func()
	done chan struct{}
}

func startInstance(t *testing.T, s *sim.Sim, secret, storeURL, keyFile, id string) *relayInstance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	base := "http://127.0.0.1:" + port
	cfg, err := demoConfig(s, secret, base, "127.0.0.1", port, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.SessionKeyFile, cfg.InstanceID, cfg.Listener = storeURL, keyFile, id, ln
	app, err := NewApp(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ri := &relayInstance{base: base, done: make(chan struct{})}
	go func() { _ = app.Run(ctx); close(ri.done) }()
	ri.stop = func() { cancel(); <-ri.done }
	t.Cleanup(ri.stop)
	return ri
}

func (ri *relayInstance) ready() bool {
	c := &http.Client{Timeout: 300 * time.Millisecond}
	rsp, err := c.Get(ri.base + "/readyz")
	if err != nil {
		return false
	}
	rsp.Body.Close()
	return rsp.StatusCode == http.StatusOK
}

// Two relays on one Redis: one is active, the other waits as a standby.
// When the active one stops, the standby takes over within the lease's
// renewal period, re-opens the agent's upstream session from the sealed
// credential, and the agent's tab gets a ticket there with its old session.
func TestStandbyTakesOverOnSharedStore(t *testing.T) {
	storeURL := redisForTest(t)
	keyFile := filepath.Join(t.TempDir(), "session.key")
	if _, err := seal.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	secret := randomToken()
	s, err := sim.New(sim.Config{Fast: true, Seed: 7, CallInterval: -1, ClientID: demoClientID, ClientSecret: secret,
		RedirectURIs: []string{"http://127.0.0.1/idscallback"}, ForcedLogoutDelay: 20 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	simCtx, simStop := context.WithCancel(context.Background())
	simDone := make(chan struct{})
	go func() { _ = s.Run(simCtx); close(simDone) }()
	t.Cleanup(func() { simStop(); <-simDone })

	active := startInstance(t, s, secret, storeURL, keyFile, "relay-1")
	waitFor(t, 10*time.Second, "the first instance ready", active.ready)
	standby := startInstance(t, s, secret, storeURL, keyFile, "relay-2")

	st := &stack{base: active.base, sim: s}
	a := st.signIn(t, "1001")
	tab := &browserTab{name: "tab", bearer: a.Session}
	tab.connect(t, active.base, "1001").Close()
	time.Sleep(time.Second)
	if standby.ready() {
		t.Fatal("the second instance is ready while the first holds the store: both would serve the agent")
	}

	stoppedAt := time.Now()
	active.stop()
	waitFor(t, 3*activeLeaseRenew, "the standby taking over", standby.ready)
	waitSessionsUp(t, standby.base, 1)
	t.Logf("standby took over and the agent's session was up %v after the active instance stopped", time.Since(stoppedAt).Round(time.Millisecond))
	c := tab.connect(t, standby.base, "1001")
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
	c.Close()
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
