package gadget

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// benchUser is shaped like a Finesse User notification.
type benchUser struct {
	LoginID         string            `json:"loginId"`
	LoginName       string            `json:"loginName"`
	FirstName       string            `json:"firstName"`
	LastName        string            `json:"lastName"`
	Extension       string            `json:"extension"`
	State           string            `json:"state"`
	StateChangeTime string            `json:"stateChangeTime"`
	TeamID          string            `json:"teamId"`
	TeamName        string            `json:"teamName"`
	Roles           []string          `json:"roles"`
	ReasonCode      map[string]string `json:"reasonCode,omitempty"`
}

var benchData = &benchUser{
	LoginID: "1001", LoginName: "agent1001", FirstName: "Ada", LastName: "Agent", Extension: "51001",
	State: "READY", StateChangeTime: "2026-11-23T08:45:17.000Z", TeamID: "10", TeamName: "Support",
	Roles: []string{"Agent"},
}

// BenchmarkStreamEvent measures Stream.Event (encode once, ring, fan-out)
// with n attached connections whose queues are drained concurrently.
func BenchmarkStreamEvent(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			s := NewStream(StreamConfig{QueueSize: 1 << 20})
			stop := make(chan struct{})
			var wg sync.WaitGroup
			kicked := 0
			var kmu sync.Mutex
			for range n {
				m := newMember(1<<20, func(int, string, bool) { kmu.Lock(); kicked++; kmu.Unlock() })
				wake := make(chan struct{}, 1)
				m.out.notify = func() {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
				if err := s.attach(m, resumePoint{}, 25); err != nil {
					b.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					var items []item
					for {
						select {
						case <-wake:
							items = m.out.take(items)
						case <-stop:
							return
						}
					}
				}()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s.Event(userNode, "PUT", "/finesse/api/User/1001", "req-1", benchData, benchData)
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			if kicked > 0 {
				b.Fatalf("%d connections overflowed", kicked)
			}
		})
	}
}

// BenchmarkEndToEnd measures Stream.Event → frame received by a gorilla
// WebSocket client over loopback TCP, one event at a time.
func BenchmarkEndToEnd(b *testing.B) {
	h := newHarness(b, GatewayConfig{}, StreamConfig{})
	c := h.dial(nil)
	c.expect("welcome")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.stream.Event(userNode, "PUT", "/finesse/api/User/1001", "req-1", benchData, benchData)
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPreparedMessage is why frames are shared []byte and not
// websocket.PreparedMessage: without compression, preparing a message
// allocates a ~4 KiB buffer per message, while the server's WriteMessage
// fast path does not allocate.
func BenchmarkPreparedMessage(b *testing.B) {
	frame := []byte(`{"type":"event","seq":42,"node":"/finesse/api/User/1001","event":"PUT","source":"","requestId":"r","data":{"loginId":"1001","state":"READY"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := websocket.NewPreparedMessage(websocket.TextMessage, frame); err != nil {
			b.Fatal(err)
		}
	}
}
