package xmppd

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPublish publishes SystemInfo events to 100 and 1,000 available
// sessions connected over in-memory pipes or loopback TCP (ModeSecure: the
// full mellium handshake, no TLS) and waits until every session has read
// every event. ns/op is one publication delivered to all sessions, end to
// end; publish-ns/op is the time spent inside Publish alone; allocs/op
// counts every goroutine (Publish, the writers and the reading clients).
// On pipes, net.Pipe's SetWriteDeadline allocates a timer per write; TCP
// deadlines do not allocate.
//
// The user-node cases publish to one user's Dialogs node (one recipient)
// while 1,000 sessions are connected: the common case.
func BenchmarkPublish(b *testing.B) {
	for _, transport := range []string{"pipe", "tcp"} {
		for _, sessions := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/systeminfo/sessions=%d", transport, sessions), func(b *testing.B) {
				benchmarkPublish(b, transport, sessions, "/finesse/api/SystemInfo", sessions)
			})
		}
		b.Run(transport+"/user-node/sessions=1000", func(b *testing.B) {
			benchmarkPublish(b, transport, 1000, "/finesse/api/User/10000/Dialogs", 1)
		})
	}
}

func benchmarkPublish(b *testing.B, transport string, sessions int, node string, recipients int) {
	s := newTestServer(b, nil)
	var dial func() (net.Conn, error)
	if transport == "pipe" {
		ln := newPipeListener()
		serveOn(b, s, ln, ModeSecure)
		dial = ln.dial
	} else {
		addr := serve(b, s, ModeSecure)
		dial = func() (net.Conn, error) { return net.Dial("tcp", addr) }
	}
	var (
		received atomic.Int64
		wg       sync.WaitGroup
	)
	for i := range sessions {
		conn, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		c := newRawClient(b, conn, false)
		c.login(fmt.Sprint(10000+i), "relay")
		c.presence(0)
		c.expectServicePresence(true)
		_ = conn.SetReadDeadline(time.Time{})
		wg.Add(1)
		go func() { // drain, counting messages
			defer wg.Done()
			countMessages(conn, &received)
		}()
	}
	b.Cleanup(func() {
		_ = s.Close()
		wg.Wait()
	})
	doc := updateDoc("1001", "READY")
	const batch = 64 // well under the 256-stanza queue
	var inPublish time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(batch, b.N-i)
		t0 := time.Now()
		for range n {
			s.Publish(node, doc)
		}
		inPublish += time.Since(t0)
		i += n
		want := int64(i) * int64(recipients)
		for received.Load() < want {
			runtime.Gosched()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(inPublish.Nanoseconds())/float64(b.N), "publish-ns/op")
	if got := received.Load(); got != int64(b.N)*int64(recipients) {
		b.Fatalf("received %d, want %d", got, int64(b.N)*int64(recipients))
	}
}

// countMessages reads conn until it fails, adding one to n per
// </message> seen (across read boundaries).
func countMessages(conn interface{ Read([]byte) (int, error) }, n *atomic.Int64) {
	end := []byte("</message>")
	buf := make([]byte, 64<<10)
	keep := 0 // bytes of a possible partial end tag kept at buf's start
	for {
		r, err := conn.Read(buf[keep:])
		if err != nil {
			return
		}
		data := buf[:keep+r]
		if c := bytes.Count(data, end); c > 0 {
			n.Add(int64(c))
			data = data[bytes.LastIndex(data, end)+len(end):]
		}
		keep = min(len(data), len(end)-1)
		copy(buf, data[len(data)-keep:])
	}
}
