package faultnet

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes every line back until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	conns := make(chan net.Conn, 64)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		close(conns)
		for c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func start(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip writes a line and reads the echo, within d.
func roundTrip(c net.Conn, r *bufio.Reader, line string, d time.Duration) (time.Duration, error) {
	t0 := time.Now()
	_ = c.SetDeadline(t0.Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return 0, err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if got != line+"\n" {
		return 0, errors.New("echo mismatch: " + got)
	}
	return time.Since(t0), nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestForwardAndLatency(t *testing.T) {
	p := start(t, echoServer(t))
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "hello", 2*time.Second); err != nil {
		t.Fatalf("forward: %v", err)
	}
	tests := []struct {
		name     string
		up, down time.Duration
	}{
		{"upstream only", 150 * time.Millisecond, 0},
		{"downstream only", 0, 150 * time.Millisecond},
		{"both ways", 100 * time.Millisecond, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.SetLatency(Upstream, tt.up)
			p.SetLatency(Downstream, tt.down)
			took, err := roundTrip(c, r, "x-"+tt.name, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.up + tt.down; took < want {
				t.Fatalf("round trip %v, want at least %v", took, want)
			}
		})
	}
	p.SetLatency(Upstream, 0)
	p.SetLatency(Downstream, 0)
	// Latency keeps order: many lines in a row come back in order.
	p.SetLatency(Upstream, 20*time.Millisecond)
	for i := 0; i < 20; i++ {
		if _, err := io.WriteString(c, string(rune('a'+i))+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for i := 0; i < 20; i++ {
		got, err := r.ReadString('\n')
		if err != nil || got != string(rune('a'+i))+"\n" {
			t.Fatalf("line %d: %q %v", i, got, err)
		}
	}
}

func TestCutAndReset(t *testing.T) {
	tests := []struct {
		name    string
		cut     func(*Proxy) int
		wantRST bool
	}{
		{"FIN", (*Proxy).Cut, false},
		{"RST", (*Proxy).Reset, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, echoServer(t))
			c, r := dial(t, p)
			if _, err := roundTrip(c, r, "before", 2*time.Second); err != nil {
				t.Fatal(err)
			}
			if n := tt.cut(p); n != 1 {
				t.Fatalf("cut %d connections, want 1", n)
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err := r.ReadByte()
			switch {
			case err == nil:
				t.Fatal("read after cut succeeded")
			case isTimeout(err):
				t.Fatal("cut connection not closed: read timed out")
			case tt.wantRST && !errors.Is(err, syscall.ECONNRESET):
				t.Fatalf("want connection reset, got %v", err)
			case !tt.wantRST && err != io.EOF:
				t.Fatalf("want EOF (FIN), got %v", err)
			}
			// New connections still work.
			c2, r2 := dial(t, p)
			if _, err := roundTrip(c2, r2, "after", 2*time.Second); err != nil {
				t.Fatalf("new connection after cut: %v", err)
			}
			waitOpen(t, p, 1)
		})
	}
}

func waitOpen(t *testing.T, p *Proxy, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for p.Open() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", p.Open(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBlackholeHoldsThenResumes(t *testing.T) {
	p := start(t, echoServer(t))
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Blackhole()
	if p.Mode() != Blackhole {
		t.Fatalf("mode %v", p.Mode())
	}
	// An open connection: the write succeeds, nothing comes back, nothing closes.
	if _, err := roundTrip(c, r, "held", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("black-holed round trip: want a timeout, got %v", err)
	}
	// A new connection is accepted (no refusal) but held.
	c2, r2 := dial(t, p)
	if _, err := roundTrip(c2, r2, "new", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new connection while black-holed: want a timeout, got %v", err)
	}
	p.Resume()
	// The held bytes go through once resumed.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("held bytes after resume: %q %v", got, err)
	}
	_ = c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := r2.ReadString('\n'); err != nil || got != "new\n" {
		t.Fatalf("held connection after resume: %q %v", got, err)
	}
	if _, err := roundTrip(c, r, "after", 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestRefuse(t *testing.T) {
	p := start(t, echoServer(t))
	open, r := dial(t, p)
	if _, err := roundTrip(open, r, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Refuse()
	c, err := net.Dial("tcp", p.Addr())
	if err == nil {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
		_ = c.Close()
	}
	if err == nil || isTimeout(err) {
		t.Fatalf("refused connection: want reset or EOF, got %v", err)
	}
	// Open connections are not touched by Refuse.
	if _, err := roundTrip(open, r, "still", 2*time.Second); err != nil {
		t.Fatalf("open connection while refusing: %v", err)
	}
	p.Resume()
	c2, r2 := dial(t, p)
	if _, err := roundTrip(c2, r2, "back", 2*time.Second); err != nil {
		t.Fatalf("after resume: %v", err)
	}
	if p.Accepted() != 3 {
		t.Fatalf("accepted %d, want 3", p.Accepted())
	}
}

func TestTargetDownResetsClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there any more
	p := start(t, addr)
	c, err := net.Dial("tcp", p.Addr())
	if err == nil { // the reset may also come before the dial returns
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if err == nil || isTimeout(err) {
		t.Fatalf("want the client closed when the target refuses, got %v", err)
	}
}

func TestHalfCloseIsForwarded(t *testing.T) {
	p := start(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "last words\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "last words\n" {
		t.Fatalf("after half-close: %q %v", b, err)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	p, err := Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	p.Blackhole() // held goroutines must end on Close too
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, c)
	time.Sleep(50 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("client not closed by Close: %v", err)
		}
		_ = c.Close()
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("listener still accepting after Close")
	}
}

func TestStartRejectsBadTarget(t *testing.T) {
	if _, err := Start("no-port"); err == nil {
		t.Fatal("want an error for a target without a port")
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{Forward: "forward", Blackhole: "blackhole", Refuse: "refuse", Mode(9): "Mode(9)"} {
		if m.String() != want {
			t.Errorf("%d: %q", int(m), m.String())
		}
	}
}
