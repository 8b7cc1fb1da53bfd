// Package redistest starts a redis-server of a test's own, which the test
// may stop and start again (the shared test Redis that scripts/test.sh
// starts serves other packages' tests at the same time). It is imported by
// tests only.
package redistest

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a private redis-server.
type Server struct {
	t    testing.TB
	Addr string // 127.0.0.1:port
	Dir  string // its working directory (dump and append-only files)
	args []string
	cmd  *exec.Cmd
}

// Start starts redis-server with args ({port} is replaced by the chosen
// port; none: just the port) plus a loopback bind and the test's own
// directory. Without redis-server the test fails when CI is set (the
// scripts install it) and is skipped otherwise.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not in PATH: scripts/redis-start.sh installs it")
		}
		t.Skip("redis-server not in PATH (run scripts/redis-start.sh)")
	}
	s := &Server{t: t, Addr: FreeAddr(t), Dir: t.TempDir()}
	if len(args) == 0 {
		args = []string{"--port", "{port}"}
	}
	s.args = append(args, "--bind", "127.0.0.1", "--dir", s.Dir)
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Start starts the server again (after Stop or Kill) on the same port
// with the same arguments and directory.
func (s *Server) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	args := make([]string, len(s.args))
	for i, a := range s.args {
		args[i] = strings.ReplaceAll(a, "{port}", port)
	}
	s.cmd = exec.Command("redis-server", args...) // #nosec G204 -- the test's own arguments for Debian's redis-server, in tests only
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	for range 100 {
		if c, err := net.Dial("tcp", s.Addr); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("private redis-server on %s did not come up", s.Addr)
}

// Stop shuts the server down the way an operator does (SIGTERM: it saves
// its data when persistence is on) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Kill kills the server (SIGKILL) and waits for it.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// FreeAddr returns a loopback address nothing listens on (just freed).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
