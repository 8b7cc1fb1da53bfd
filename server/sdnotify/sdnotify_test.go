package sdnotify

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSystemd is a NOTIFY_SOCKET listener, as systemd binds it.
type fakeSystemd struct {
	conn *net.UnixConn
	path string
}

func listen(t *testing.T, name string) *fakeSystemd {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeSystemd{conn: c, path: name}
}

// next reads one datagram, or fails after d.
func (f *fakeSystemd) next(t *testing.T, d time.Duration) string {
	t.Helper()
	_ = f.conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	n, err := f.conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification within %v: %v", d, err)
	}
	return string(buf[:n])
}

// none asserts that nothing arrives within d.
func (f *fakeSystemd) none(t *testing.T, d time.Duration) {
	t.Helper()
	_ = f.conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	if n, err := f.conn.Read(buf); err == nil {
		t.Fatalf("unexpected notification %q", buf[:n])
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestNotificationsReachTheSocket(t *testing.T) {
	for _, tc := range []struct {
		name   string
		socket func(t *testing.T) string
	}{
		{"path socket", func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify") }},
		{"abstract socket", func(t *testing.T) string {
			return "@finesse-relay-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := tc.socket(t)
			sd := listen(t, sock)
			n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": sock}), 1)
			if err != nil {
				t.Fatal(err)
			}
			if !n.Enabled() {
				t.Fatal("NOTIFY_SOCKET is set: notifier must be enabled")
			}
			for _, step := range []struct {
				send func() error
				want []string
			}{
				{func() error { return n.Ready("serving on :1125\nsecond line") }, []string{"READY=1", "STATUS=serving on :1125 second line", "MAINPID="}},
				{func() error { return n.Status("3 agents") }, []string{"STATUS=3 agents"}},
				{func() error { return n.Stopping("shutting down") }, []string{"STOPPING=1", "STATUS=shutting down"}},
			} {
				if err := step.send(); err != nil {
					t.Fatal(err)
				}
				got := sd.next(t, 2*time.Second)
				lines := strings.Split(got, "\n")
				if len(lines) != len(step.want) {
					t.Fatalf("got %q, want lines %q", got, step.want)
				}
				for i, w := range step.want {
					if !strings.HasPrefix(lines[i], w) {
						t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
					}
				}
			}
		})
	}
}

func TestWithoutSystemdEverythingIsANoOp(t *testing.T) {
	n, err := FromEnv(env(nil), 1)
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() || n.WatchdogInterval() != 0 {
		t.Fatalf("no NOTIFY_SOCKET: enabled=%v interval=%v", n.Enabled(), n.WatchdogInterval())
	}
	if err := n.Ready("x"); err != nil {
		t.Fatal(err)
	}
	var nilN *Notifier
	if err := nilN.Stopping("x"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.RunWatchdog(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestFromEnvWatchdogAndErrors(t *testing.T) {
	const sock = "/run/systemd/notify"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    time.Duration
		wantErr string
	}{
		{"watchdog for us", map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 15 * time.Second, ""},
		{"watchdog without pid", map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "2000000"}, time.Second, ""},
		{"watchdog for another process", map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 0, ""},
		{"no watchdog", map[string]string{"NOTIFY_SOCKET": sock}, 0, ""},
		{"watchdog without socket", map[string]string{"WATCHDOG_USEC": "30000000"}, 0, ""},
		{"malformed usec", map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "30s"}, 0, "WATCHDOG_USEC"},
		{"zero usec", map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "0"}, 0, "WATCHDOG_USEC"},
		{"relative socket", map[string]string{"NOTIFY_SOCKET": "notify"}, 0, "NOTIFY_SOCKET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := FromEnv(env(tc.env), 42)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := n.WatchdogInterval(); got != tc.want {
				t.Fatalf("WatchdogInterval = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWatchdogPingsAtHalfTheIntervalOnlyWhileHealthy(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	sd := listen(t, sock)
	// WatchdogSec=200ms → a ping every 100 ms.
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "200000"}), 1)
	if err != nil {
		t.Fatal(err)
	}
	var healthy atomic.Bool
	healthy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.RunWatchdog(ctx, healthy.Load, func(err error) { t.Error(err) }) }()

	start := time.Now()
	for i := 0; i < 3; i++ {
		if got := sd.next(t, time.Second); got != "WATCHDOG=1" {
			t.Fatalf("ping %d = %q", i, got)
		}
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("3 pings in %v: faster than every 100 ms", el)
	}
	healthy.Store(false)
	time.Sleep(20 * time.Millisecond)                             // let a ping already in flight land
	_ = sd.conn.SetReadDeadline(time.Now().Add(time.Millisecond)) // drain it
	_, _ = sd.conn.Read(make([]byte, 64))
	sd.none(t, 350*time.Millisecond)
	healthy.Store(true)
	if got := sd.next(t, time.Second); got != "WATCHDOG=1" {
		t.Fatalf("after recovery: %q", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("RunWatchdog did not return after its context ended")
	}
}

func TestNotifyErrorsNameTheSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nobody-listens")
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": sock}), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready("x"); err == nil || !strings.Contains(err.Error(), sock) {
		t.Fatalf("err = %v, want one naming %s", err, sock)
	}
	if err := n.Notify("A=1\x00"); err == nil {
		t.Fatal("a NUL byte must be refused")
	}
}
