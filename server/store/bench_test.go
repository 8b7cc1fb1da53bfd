package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchStores are the backends as the relay runs them: File syncs every
// write to disk (the default), Redis is the shared test server over
// loopback.
func benchStores(b *testing.B) []struct {
	name string
	open func(b *testing.B) Store
} {
	return []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"memory", func(b *testing.B) Store { return NewMemory(nil) }},
		{"file", func(b *testing.B) Store {
			s, err := OpenFile(filepath.Join(b.TempDir(), "bench.db"), FileOptions{})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"redis", func(b *testing.B) Store {
			u := redisURL(b)
			prefix := testPrefix()
			s, err := OpenRedis(context.Background(), u, RedisOptions{Prefix: prefix})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { deleteAll(b, u, prefix) })
			return s
		}},
	}
}

// frame is a ~600-byte JSON message like the relay's event frames.
func frame(seq int) []byte {
	return fmt.Appendf(nil, `{"type":"event","seq":%d,"agent":"agent%04d","event":{"kind":"dialog","id":"%08d","state":"ACTIVE","mediaType":"Voice","fromAddress":"+15551230%03d","toAddress":"3001","participants":[{"mediaAddress":"3001","state":"ACTIVE","actions":["HOLD","DROP","TRANSFER_SST","CONSULT_CALL","SEND_DTMF","UPDATE_CALL_DATA"]},{"mediaAddress":"+15551230%03d","state":"ACTIVE","actions":[]}],"callVariables":{"callVariable1":"%s","callVariable2":"account-%d","user.queue":"Sales_Q","BAAccountNumber":"%d"},"startedAt":"2026-12-02T05:%02d:%02d.%03dZ"}}`,
		seq, seq%1000, seq*7919, seq%1000, seq%1000, strings.Repeat("x", 40+seq%40), seq*31, seq*17, seq%60, seq%60, seq%1000)
}

func BenchmarkStore(b *testing.B) {
	ctx := context.Background()
	value := make([]byte, 200) // a sealed session record
	for _, bs := range benchStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			defer s.Close()
			runs := 0
			b.Run("Put", func(b *testing.B) {
				i := 0
				for b.Loop() {
					if err := s.Put(ctx, "sess:"+strconv.Itoa(i%1000), value, time.Minute); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("Get", func(b *testing.B) {
				_ = s.Put(ctx, "sess:get", value, time.Minute)
				for b.Loop() {
					if _, err := s.Get(ctx, "sess:get"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("PutTake", func(b *testing.B) { // Put a ticket, then Take it
				i := 0
				for b.Loop() {
					k := "ticket:" + strconv.Itoa(i)
					if err := s.Put(ctx, k, value[:32], time.Minute); err != nil {
						b.Fatal(err)
					}
					if _, err := s.Take(ctx, k); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("Append", func(b *testing.B) { // a 600-byte frame to a ring of 1024
				f := frame(1)
				b.SetBytes(int64(len(f)))
				runs++
				stream := "agent:bench" + strconv.Itoa(runs)
				seq := int64(0)
				for b.Loop() {
					seq++
					if err := s.Append(ctx, stream, Entry{Seq: seq, Data: f}, 1024, time.Minute); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkStreamDelivery is what delivery through a store's stream
// costs: one Append, and a Read already waiting on the stream (another
// instance's reader, with Redis) wakes with it. Reports the mean (ns/op)
// and p50/p99 of Append start → entry returned by Read.
func BenchmarkStreamDelivery(b *testing.B) {
	ctx := context.Background()
	for _, bs := range benchStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			defer s.Close()
			f := frame(1)
			stream := "agent:delivery" + testPrefix()
			got := make(chan int64)
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { // the reader: one waiting Read at a time, as a fan-out loop would
				defer close(done)
				after := int64(0)
				for rctx.Err() == nil {
					es, err := s.Read(rctx, stream, after, 100, time.Second)
					if err != nil {
						return
					}
					for _, e := range es {
						after = e.Seq
						got <- e.Seq
					}
				}
			}()
			var lat []time.Duration
			seq := int64(0)
			for b.Loop() {
				seq++
				t0 := time.Now()
				if err := s.Append(ctx, stream, Entry{Seq: seq, Data: f}, 1024, time.Minute); err != nil {
					b.Fatal(err)
				}
				if n := <-got; n != seq {
					b.Fatalf("read seq %d, want %d", n, seq)
				}
				lat = append(lat, time.Since(t0))
			}
			cancel()
			<-done
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// TestRedisMemoryPerAgents measures what streams cost in Redis: INFO
// memory's used_memory before and after filling streams for many agents,
// on a private redis-server. Run it on purpose (it writes ~60 MB):
//
//	FINESSE_STORE_MEASURE=1 FINESSE_REDIS_URL=… go test -run RedisMemory -v ./server/store/
func TestRedisMemoryPerAgents(t *testing.T) {
	if os.Getenv("FINESSE_STORE_MEASURE") == "" {
		t.Skip("a measurement: set FINESSE_STORE_MEASURE=1 to run it")
	}
	ctx := context.Background()
	cases := []struct {
		name           string
		agents, frames int
	}{
		{"1,024 frames per agent (RESUME_RING_SIZE)", 100, 1024},
		{"128 frames per agent (trimmed by age: a few minutes)", 1000, 128},
		{"32 frames per agent", 1000, 32},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := startPrivateRedis(t)
			s, err := OpenRedis(ctx, "redis://"+p.Addr+"/0", RedisOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			used := func() int64 {
				info, err := s.c.Info(ctx, "memory").Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range strings.Split(info, "\r\n") {
					if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
						n, _ := strconv.ParseInt(v, 10, 64)
						return n
					}
				}
				t.Fatal("no used_memory in INFO memory")
				return 0
			}
			if err := appendScript.Load(ctx, s.c).Err(); err != nil {
				t.Fatal(err)
			}
			before := used()
			var raw int64
			pipe := s.c.Pipeline()
			for a := range c.agents {
				key := s.stream(fmt.Sprintf("agent%04d", a))
				for i := range c.frames + 100 { // 100 more than kept: trimming is part of it
					f := frame(a*10_000 + i)
					if i >= 100 {
						raw += int64(len(f))
					}
					appendScript.Run(ctx, pipe, []string{key}, i+1, f, c.frames, time.Hour.Milliseconds())
				}
				if _, err := pipe.Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
			after := used()
			per1000 := float64(after-before) * 1000 / float64(c.agents)
			t.Logf("%d agents × %d frames (avg %d B): used_memory %d → %d (+%.1f MiB); per 1,000 agents %.1f MiB; payload %.1f MiB per 1,000 agents (overhead ×%.2f)",
				c.agents, c.frames, raw/int64(c.agents*c.frames), before, after, float64(after-before)/(1<<20),
				per1000/(1<<20), float64(raw)*1000/float64(c.agents)/(1<<20), float64(after-before)/float64(raw))
		})
	}
}
