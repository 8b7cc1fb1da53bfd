package gadget

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	userNode    = "/finesse/api/User/1001"
	dialogsNode = "/finesse/api/User/1001/Dialogs"
	teamNode    = "/finesse/api/Team/10/Users"
	queueNode   = "/finesse/api/Queue/5001"
)

func TestWelcomeThenSnapshotThenLive(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	s := h.stream
	s.Status("connecting", "A", "")                                                                                // 0
	s.State(userNode, userData{"1001", "NOT_READY"})                                                               // 1
	s.State(dialogsNode, []string{})                                                                               // 2
	s.Status("up", "A", "finesse-a.example")                                                                       // 3
	s.Event(userNode, "PUT", "/finesse/api/User/1001", "r1", userData{"1001", "READY"}, userData{"1001", "READY"}) // 4
	s.Event(dialogsNode, "PUT", "", "", map[string]string{"apiErrors": "x"}, nil)                                  // 5: no state change

	c := h.dial(nil)
	w := c.expect("welcome")
	if w.Agent != "1001" || len(w.Roles) != 1 || w.Roles[0] != "Agent" || w.seq(t) != 5 || w.Resumed || w.Heartbeat != 25 || w.Stream == "" {
		t.Fatalf("welcome = %+v", w)
	}
	u := c.expect("state")
	if u.Node != userNode || u.seq(t) != 5 || string(u.Data) != `{"loginId":"1001","state":"READY"}` {
		t.Fatalf("first state = %+v data %s", u, u.Data)
	}
	d := c.expect("state")
	if d.Node != dialogsNode || d.seq(t) != 5 || string(d.Data) != `[]` {
		t.Fatalf("second state = %+v data %s", d, d.Data)
	}
	st := c.expect("status")
	if st.seq(t) != 5 || st.Upstream != "up" || st.Side != "A" || st.Host != "finesse-a.example" {
		t.Fatalf("status = %+v", st)
	}
	s.Event(userNode, "PUT", "/finesse/api/User/1001", "r2", userData{"1001", "TALKING"}, nil)
	ev := c.expect("event")
	if ev.seq(t) != 6 || ev.Node != userNode || ev.Event != "PUT" || ev.Source != "/finesse/api/User/1001" || ev.RequestID != "r2" ||
		string(ev.Data) != `{"loginId":"1001","state":"TALKING"}` {
		t.Fatalf("event = %+v data %s", ev, ev.Data)
	}
	s.State(userNode, userData{"1001", "WORK"})
	if m := c.expect("state"); m.seq(t) != 7 || m.Node != userNode {
		t.Fatalf("broadcast state = %+v", m)
	}
	s.Status("failover", "B", "finesse-b.example")
	if m := c.expect("status"); m.seq(t) != 8 || m.Upstream != "failover" || m.Side != "B" {
		t.Fatalf("broadcast status = %+v", m)
	}
}

func TestEmptyStreamWelcome(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	c := h.dial(nil)
	if w := c.expect("welcome"); w.seq(t) != -1 || w.Resumed {
		t.Fatalf("welcome = %+v, want seq -1", w)
	}
	h.stream.Event(userNode, "PUT", "", "", userData{"1001", "READY"}, nil)
	if ev := c.expect("event"); ev.seq(t) != 0 {
		t.Fatalf("first message seq = %d, want 0", ev.seq(t))
	}
}

func TestFanOutSameOrder(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	const clients, events = 3, 200
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = h.dial(nil)
		cs[i].expect("welcome")
	}
	for i := range events {
		h.stream.Event(userNode, "PUT", "", fmt.Sprint("r", i), userData{"1001", fmt.Sprint(i)}, nil)
	}
	for ci, c := range cs {
		for i := range events {
			ev := c.expect("event")
			if ev.seq(t) != int64(i) || ev.RequestID != fmt.Sprint("r", i) {
				t.Fatalf("client %d message %d: seq %d requestId %s", ci, i, ev.seq(t), ev.RequestID)
			}
		}
	}
}

func TestResumeReplaysExactlyWhatWasMissed(t *testing.T) {
	for _, form := range []string{"url", "command"} {
		t.Run(form, func(t *testing.T) {
			h := newHarness(t, GatewayConfig{}, StreamConfig{})
			s := h.stream
			s.State(userNode, userData{"1001", "READY"})
			c := h.dial(nil)
			w := c.expect("welcome")
			c.expect("state")
			last := w.seq(t)
			_ = c.ws.Close() // dropped
			eventually(t, "detach", func() bool { return s.Subscribers() == 0 })

			for i := range 5 {
				s.Event(userNode, "PUT", "", fmt.Sprint("m", i), userData{"1001", "x"}, nil)
			}
			var r *client
			if form == "url" {
				r = h.dial(url.Values{"since": {fmt.Sprint(last)}, "stream": {w.Stream}})
			} else {
				r = h.dial(nil)
				r.expect("welcome")
				r.expect("state")
				s.Event(userNode, "PUT", "", "while-connected", userData{"1001", "y"}, nil) // queued or sent before the resume
				r.send(fmt.Sprintf(`{"type":"resume","since":%d}`, last))
				// A message sent before the resume was processed may arrive first.
				for {
					m := r.next()
					if m.Type == "welcome" {
						w = m
						break
					}
					if m.RequestID != "while-connected" {
						t.Fatalf("before welcome: %+v", m)
					}
				}
			}
			if form == "url" {
				w = r.expect("welcome")
			}
			want := []string{"m0", "m1", "m2", "m3", "m4"}
			if form == "command" {
				want = append(want, "while-connected")
			}
			if !w.Resumed || w.seq(t) != last+int64(len(want)) {
				t.Fatalf("welcome = %+v, want resumed at %d", w, last+int64(len(want)))
			}
			for i, rid := range want {
				ev := r.expect("event")
				if ev.RequestID != rid || ev.seq(t) != last+1+int64(i) {
					t.Fatalf("replay %d = seq %d %s, want %s", i, ev.seq(t), ev.RequestID, rid)
				}
			}
			s.Event(userNode, "PUT", "", "live", userData{"1001", "z"}, nil)
			if ev := r.expect("event"); ev.RequestID != "live" || ev.seq(t) != w.seq(t)+1 {
				t.Fatalf("live after replay = %+v", ev)
			}
			if got := metric(t, h.reg, "finesse_relay_ws_resumes_total", "result", "replayed"); got != 1 {
				t.Fatalf("resumes{replayed} = %v", got)
			}
		})
	}
}

func TestResumeFallsBackToState(t *testing.T) {
	tests := []struct {
		name  string
		query func(last int64, stream string) url.Values
	}{
		{"ring moved on", func(last int64, _ string) url.Values { return since(last) }},
		{"since in the future", func(int64, string) url.Values { return since(1 << 40) }},
		{"another stream", func(last int64, _ string) url.Values {
			return url.Values{"since": {fmt.Sprint(last + 10)}, "stream": {"0123456789abcdef"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, GatewayConfig{}, StreamConfig{RingSize: 4})
			s := h.stream
			s.State(userNode, userData{"1001", "READY"})
			s.Status("up", "A", "a")
			c := h.dial(nil)
			w := c.expect("welcome")
			_ = c.ws.Close()
			for i := range 10 {
				s.Event(userNode, "PUT", "", fmt.Sprint(i), userData{"1001", fmt.Sprint(i)}, userData{"1001", fmt.Sprint(i)})
			}
			r := h.dial(tt.query(w.seq(t), w.Stream))
			w2 := r.expect("welcome")
			if w2.Resumed || w2.seq(t) != w.seq(t)+10 {
				t.Fatalf("welcome = %+v", w2)
			}
			st := r.expect("state")
			if st.seq(t) != w2.seq(t) || string(st.Data) != `{"loginId":"1001","state":"9"}` {
				t.Fatalf("state = %+v %s", st, st.Data)
			}
			if m := r.expect("status"); m.seq(t) != w2.seq(t) || m.Upstream != "up" {
				t.Fatalf("status = %+v", m)
			}
			if got := metric(t, h.reg, "finesse_relay_ws_resumes_total", "result", "state"); got != 1 {
				t.Fatalf("resumes{state} = %v", got)
			}
		})
	}
}

func TestSlowConsumerClosedFastOneGetsEverything(t *testing.T) {
	h := newHarness(t, GatewayConfig{QueueSize: 4, WriteTimeout: 20 * time.Second}, StreamConfig{})
	slow := h.dial(nil) // never reads until the end
	fast := h.dial(nil)
	fast.expect("welcome")

	// The fast client reads everything and reports each event's seq; the
	// producer waits for each one, so only the slow client falls behind.
	recv := make(chan int64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(recv)
		for {
			m, err := fast.read(20 * time.Second)
			if err != nil {
				return
			}
			if m.Type == "event" {
				recv <- *m.Seq
				if m.RequestID == "last" {
					return
				}
			}
		}
	}()
	var seqs []int64
	send := func(rid string, data any) {
		t.Helper()
		h.stream.Event(userNode, "PUT", "", rid, data, nil)
		select {
		case s, ok := <-recv:
			if !ok {
				t.Fatal("fast client lost its connection")
			}
			seqs = append(seqs, s)
		case <-time.After(10 * time.Second):
			t.Fatal("fast client did not receive the event")
		}
	}
	big := map[string]string{"pad": strings.Repeat("x", 256<<10)}
	for i := 0; !slowClosing(h); i++ {
		if i == 2000 {
			t.Fatal("slow consumer not closed after 2000 events")
		}
		send("", big)
	}
	for range 10 { // the stream and the fast client carry on
		send("", map[string]string{"pad": "small"})
	}
	send("last", nil)
	wg.Wait()
	for i, s := range seqs {
		if s != int64(i) {
			t.Fatalf("fast client event %d has seq %d", i, s)
		}
	}
	if h.stream.Subscribers() < 1 {
		t.Fatal("fast client detached")
	}
	slow.expectClose(CloseQueueOverflow)
	eventually(t, "dropped metric", func() bool {
		return metric(t, h.reg, "finesse_relay_ws_dropped_connections_total", "reason", "queue_overflow") == 1
	})
}

// slowClosing reports whether some connection of h was asked to close
// because its queue overflowed.
func slowClosing(h *harness) bool {
	h.gw.mu.Lock()
	defer h.gw.mu.Unlock()
	for c := range h.gw.conns {
		select {
		case <-c.closing:
			if c.ci.code == CloseQueueOverflow {
				return true
			}
		default:
		}
	}
	return false
}

func TestOrigins(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		origin  string
		ok      bool
	}{
		{"exact", []string{"https://finesse.example:8445"}, "https://finesse.example:8445", true},
		{"case and default port", []string{"HTTPS://Finesse.example:443/"}, "https://finesse.example", true},
		{"wrong port", []string{"https://finesse.example:8445"}, "https://finesse.example", false},
		{"wrong host", []string{"https://finesse.example"}, "https://evil.example", false},
		{"wrong scheme", []string{"https://finesse.example"}, "http://finesse.example", false},
		{"no origin header", []string{"https://finesse.example"}, "", true},
		{"null origin", []string{"https://finesse.example"}, "null", false},
		{"star", []string{"*"}, "https://anything.example", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, GatewayConfig{AllowedOrigins: tt.allowed}, StreamConfig{})
			hdr := http.Header{}
			if tt.origin != "" {
				hdr.Set("Origin", tt.origin)
			}
			c, rsp, err := h.tryDial(h.wsURL("", nil), hdr)
			if tt.ok {
				if err != nil {
					t.Fatalf("dial: %v (%s)", err, rspText(rsp))
				}
				c.expect("welcome")
				return
			}
			if err == nil {
				t.Fatal("dial succeeded, want 403")
			}
			if st, code, _ := httpError(t, rsp); st != http.StatusForbidden || code != "origin_not_allowed" {
				t.Fatalf("got %d %s, want 403 origin_not_allowed", st, code)
			}
		})
	}
}

func TestTicketRefusals(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tickets := NewTickets(TicketsConfig{TTL: 30 * time.Second, Now: clock})
	h := newHarnessTickets(t, tickets, GatewayConfig{}, StreamConfig{})

	used := h.ticket(testSession)
	h.dial(nil) // sanity
	c, _, err := h.tryDial(h.wsURL(used, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.expect("welcome")
	expired := h.ticket(testSession)
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()

	tests := []struct {
		name, url, msg string
	}{
		{"replayed", h.wsURL(used, nil), "ticket already used"},
		{"expired", h.wsURL(expired, nil), "ticket expired"},
		{"unknown", h.wsURL("bm90LWEtdGlja2V0", nil), "ticket unknown"},
		{"missing", strings.Replace(h.wsURL("x", nil), "ticket=x", "", 1), "ticket missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rsp, err := h.tryDial(tt.url, nil)
			if err == nil {
				t.Fatal("dial succeeded, want 401")
			}
			st, code, msg := httpError(t, rsp)
			if st != http.StatusUnauthorized || code != "invalid_ticket" || msg != tt.msg {
				t.Fatalf("got %d %s %q, want 401 invalid_ticket %q", st, code, msg, tt.msg)
			}
		})
	}
}

func TestBadSinceIsRefusedBeforeTheTicketIsUsed(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	tk := h.ticket(testSession)
	for _, v := range []string{"abc", "-2", "1.5"} {
		_, rsp, err := h.tryDial(h.wsURL(tk, url.Values{"since": {v}}), nil)
		if err == nil {
			t.Fatalf("since=%s accepted", v)
		}
		if st, code, _ := httpError(t, rsp); st != http.StatusBadRequest || code != CodeBadRequest {
			t.Fatalf("since=%s: %d %s", v, st, code)
		}
	}
	c, rsp, err := h.tryDial(h.wsURL(tk, nil), nil)
	if err != nil {
		t.Fatalf("ticket burnt by a refused request: %v %s", err, rspText(rsp))
	}
	c.expect("welcome")
}

func TestEndClosesAndRefuses(t *testing.T) {
	tests := []struct {
		reason string
		code   int
	}{
		{"signed_out", CloseSignedOut},
		{"session_expired", CloseSessionExpired},
		{"shutdown", CloseShutdown},
		{"something else", CloseShutdown},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			h := newHarness(t, GatewayConfig{}, StreamConfig{})
			a, b := h.dial(nil), h.dial(nil)
			a.expect("welcome")
			b.expect("welcome")
			h.stream.Status("signed_out", "", "")
			h.stream.End(tt.reason)
			for _, c := range []*client{a, b} {
				msgs := c.expectClose(tt.code)
				if len(msgs) != 1 || msgs[0].Type != "status" || msgs[0].Upstream != "signed_out" {
					t.Fatalf("before the close: %+v, want the final status", msgs)
				}
			}
			_, rsp, err := h.tryDial(h.wsURL("", nil), nil)
			if err == nil {
				t.Fatal("dial after End succeeded")
			}
			if st, code, _ := httpError(t, rsp); st != http.StatusGone || code != "session_ended" {
				t.Fatalf("after End: %d %s, want 410 session_ended", st, code)
			}
			eventually(t, "detach", func() bool { return h.stream.Subscribers() == 0 })
		})
	}
}

func TestOversizedMessage(t *testing.T) {
	h := newHarness(t, GatewayConfig{MaxMessageSize: 64}, StreamConfig{})
	c := h.dial(nil)
	c.expect("welcome")
	c.send(`{"type":"ping","id":"` + strings.Repeat("a", 100) + `"}`)
	msgs := c.expectClose(CloseMessageTooBig)
	if len(msgs) != 1 || msgs[0].Code != CodeTooLarge {
		t.Fatalf("before 1009: %+v, want one too_large error", msgs)
	}
	eventually(t, "dropped metric", func() bool {
		return metric(t, h.reg, "finesse_relay_ws_dropped_connections_total", "reason", "too_large") == 1
	})
}

func TestBadMessages(t *testing.T) {
	tests := []struct {
		name, msg, code, id string
		binary              bool
	}{
		{"not json", `{not json`, CodeBadRequest, "", false},
		{"not an object", `[1,2]`, CodeBadRequest, "", false},
		{"missing type", `{"id":"a1"}`, CodeBadRequest, "a1", false},
		{"unknown type", `{"type":"teleport","id":"x1"}`, CodeUnknownType, "x1", false},
		{"subscribe without node", `{"type":"subscribe","id":"s1"}`, CodeBadRequest, "s1", false},
		{"resume without since", `{"type":"resume","id":"r1"}`, CodeBadRequest, "r1", false},
		{"resume with bad since", `{"type":"resume","since":"4"}`, CodeBadRequest, "", false},
		{"numeric id", `{"type":"ping","id":7}`, CodeBadRequest, "", false},
		{"binary frame", `{"type":"ping"}`, CodeBadRequest, "", true},
	}
	h := newHarness(t, GatewayConfig{MaxBadMessages: 100}, StreamConfig{})
	c := h.dial(nil)
	c.expect("welcome")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.binary {
				if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(tt.msg)); err != nil {
					t.Fatal(err)
				}
			} else {
				c.send(tt.msg)
			}
			e := c.expect("error")
			if e.Code != tt.code || e.ID != tt.id || e.Message == "" {
				t.Fatalf("error = %+v, want code %s id %q", e, tt.code, tt.id)
			}
		})
	}
	// Still usable.
	c.send(`{"type":"ping","id":"ok"}`)
	if r := c.expect("reply"); r.ID != "ok" {
		t.Fatalf("reply = %+v", r)
	}
}

func TestTooManyBadMessagesCloses4103(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	c := h.dial(nil)
	c.expect("welcome")
	for range 11 {
		c.send(`{nope`)
	}
	msgs := c.expectClose(ClosePolicyViolation)
	if len(msgs) != 11 {
		t.Fatalf("got %d messages before 4103, want 11 errors", len(msgs))
	}
	for _, m := range msgs {
		if m.Type != "error" || m.Code != CodeBadRequest {
			t.Fatalf("got %+v", m)
		}
	}
}

func TestRateLimited(t *testing.T) {
	h := newHarness(t, GatewayConfig{MaxBadMessages: 1000}, StreamConfig{})
	c := h.dial(nil)
	c.expect("welcome")
	const n = commandBurst + 15
	for i := range n {
		c.send(fmt.Sprintf(`{"type":"ping","id":"p%d"}`, i))
	}
	limited := 0
	for range n {
		m := c.next()
		if m.Type == "error" && m.Code == CodeRateLimited {
			limited++
		}
	}
	if limited == 0 {
		t.Fatalf("%d pings in a burst were all accepted", n)
	}
}

func TestPing(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	c := h.dial(nil)
	c.expect("welcome")
	c.send(`{"type":"ping","id":"p1"}`)
	if r := c.expect("reply"); r.ID != "p1" || r.OK {
		t.Fatalf("reply = %+v", r)
	}
	c.send(`{"type":"ping"}`)
	if r := c.expect("reply"); r.ID != "" {
		t.Fatalf("reply = %+v", r)
	}
}

func TestSubscribeAndFiltering(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	s := h.stream
	s.SetIdentity("2001", []string{"Agent", "Supervisor"})
	s.SetAllowedNodes([]string{teamNode, queueNode})
	s.State(userNode, userData{"2001", "READY"})
	s.State(teamNode, map[string]any{"users": []string{"1001"}})

	sup := h.dial(nil)
	other := h.dial(nil)
	for _, c := range []*client{sup, other} {
		w := c.expect("welcome")
		if st := c.expect("state"); st.Node != userNode { // the team state is not a default node
			t.Fatalf("snapshot state %s, want only %s", st.Node, userNode)
		}
		_ = w
	}

	sup.send(`{"type":"subscribe","id":"c0","node":"/finesse/api/Team/11/Users"}`)
	if e := sup.expect("error"); e.Code != CodeForbidden || e.ID != "c0" {
		t.Fatalf("subscribe to a foreign team = %+v", e)
	}
	sup.send(`{"type":"subscribe","id":"c1","node":"` + teamNode + `"}`)
	if r := sup.expect("reply"); r.ID != "c1" || !r.OK {
		t.Fatalf("reply = %+v", r)
	}
	st := sup.expect("state")
	if st.Node != teamNode || st.seq(t) != 1 || string(st.Data) != `{"users":["1001"]}` {
		t.Fatalf("state after subscribe = %+v %s", st, st.Data)
	}

	s.Event(teamNode, "PUT", "", "team-1", userData{"1001", "READY"}, nil)
	s.Event(queueNode, "PUT", "", "queue-1", map[string]int{"calls": 1}, nil) // nobody subscribed
	s.Event(userNode, "PUT", "", "user-1", userData{"2001", "NOT_READY"}, nil)
	if ev := sup.expect("event"); ev.RequestID != "team-1" {
		t.Fatalf("subscriber got %+v, want team-1", ev)
	}
	if ev := sup.expect("event"); ev.RequestID != "user-1" {
		t.Fatalf("subscriber got %+v, want user-1 (queue-1 not subscribed)", ev)
	}
	if ev := other.expect("event"); ev.RequestID != "user-1" {
		t.Fatalf("non-subscriber got %+v, want only the default node's user-1", ev)
	}

	for range 2 { // idempotent
		sup.send(`{"type":"unsubscribe","id":"u1","node":"` + teamNode + `"}`)
		if r := sup.expect("reply"); r.ID != "u1" || !r.OK {
			t.Fatalf("unsubscribe reply = %+v", r)
		}
	}
	sup.send(`{"type":"unsubscribe","id":"u2","node":"/finesse/api/Queue/9"}`)
	if e := sup.expect("error"); e.Code != CodeForbidden || e.ID != "u2" {
		t.Fatalf("unsubscribe foreign = %+v", e)
	}
	s.Event(teamNode, "PUT", "", "team-2", userData{"1001", "TALKING"}, nil)
	s.Event(userNode, "PUT", "", "user-2", userData{"2001", "READY"}, nil)
	if ev := sup.expect("event"); ev.RequestID != "user-2" {
		t.Fatalf("after unsubscribe got %+v, want user-2", ev)
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	h := newHarness(t, GatewayConfig{Heartbeat: 100 * time.Millisecond}, StreamConfig{})
	c := h.dial(nil)
	c.ws.SetPingHandler(func(string) error { return nil }) // no pongs: a dead peer
	time.Sleep(400 * time.Millisecond)                     // > 2.5 × 100 ms without reading
	msgs := c.expectClose(CloseHeartbeatTimeout)
	if len(msgs) == 0 || msgs[0].Type != "welcome" || msgs[0].Heartbeat != 0.1 {
		t.Fatalf("messages before 4001: %+v", msgs)
	}
	eventually(t, "dropped metric", func() bool {
		return metric(t, h.reg, "finesse_relay_ws_dropped_connections_total", "reason", "heartbeat_timeout") == 1
	})
}

func TestClientPingsKeepTheConnection(t *testing.T) {
	h := newHarness(t, GatewayConfig{Heartbeat: 100 * time.Millisecond}, StreamConfig{})
	c := h.dial(nil)
	c.ws.SetPingHandler(func(string) error { return nil }) // only application pings count
	c.expect("welcome")
	for i := range 12 { // 600 ms, more than 2.5 × heartbeat
		c.send(fmt.Sprintf(`{"type":"ping","id":"p%d"}`, i))
		if r := c.expect("reply"); r.ID != fmt.Sprintf("p%d", i) {
			t.Fatalf("reply = %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestShutdownClosesAllWith1001(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	cs := []*client{h.dial(nil), h.dial(nil), h.dial(nil)}
	for _, c := range cs {
		c.expect("welcome")
	}
	done := make(chan error, len(cs))
	for _, c := range cs {
		go func() {
			_, err := c.read(10 * time.Second)
			for err == nil {
				_, err = c.read(10 * time.Second)
			}
			done <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.gw.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range cs {
		err := <-done
		if !websocket.IsCloseError(err, CloseGoingAway) {
			t.Fatalf("client ended with %v, want 1001", err)
		}
	}
	if n := h.stream.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after Shutdown", n)
	}
	_, rsp, err := h.tryDial(h.wsURL("", nil), nil)
	if err == nil {
		t.Fatal("dial after Shutdown succeeded")
	}
	if st, code, _ := httpError(t, rsp); st != http.StatusServiceUnavailable || code != "shutting_down" {
		t.Fatalf("after Shutdown: %d %s", st, code)
	}
}

func TestOnSubscribers(t *testing.T) {
	var mu sync.Mutex
	var calls []int
	h := newHarness(t, GatewayConfig{}, StreamConfig{OnSubscribers: func(n int) {
		mu.Lock()
		calls = append(calls, n)
		mu.Unlock()
	}})
	got := func() []int { mu.Lock(); defer mu.Unlock(); return append([]int(nil), calls...) }
	waitFor := func(want []int) {
		t.Helper()
		eventually(t, fmt.Sprint("calls ", want), func() bool { return fmt.Sprint(got()) == fmt.Sprint(want) })
	}
	a := h.dial(nil)
	waitFor([]int{1})
	b := h.dial(nil)
	waitFor([]int{1, 2})
	_ = a.ws.Close()
	waitFor([]int{1, 2, 1})
	_ = b.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseNormal, ""), time.Now().Add(time.Second))
	waitFor([]int{1, 2, 1, 0})
	eventually(t, "close metric", func() bool { return metric(t, h.reg, "finesse_relay_ws_closes_total", "code", "1000") == 1 })
	if g := metric(t, h.reg, "finesse_relay_ws_connections"); g != 0 {
		t.Fatalf("connections gauge = %v", g)
	}
}

func TestMethodNotAllowedAndNoUpgrade(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	tk := h.ticket(testSession)
	rsp, err := http.Post(h.srv.URL+"/ws?ticket="+tk, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, code, _ := httpError(t, rsp); st != http.StatusMethodNotAllowed || code != "method_not_allowed" {
		t.Fatalf("POST: %d %s", st, code)
	}
	rsp, err = http.Get(h.srv.URL + "/ws?ticket=" + tk)
	if err != nil {
		t.Fatal(err)
	}
	if st, code, _ := httpError(t, rsp); st != http.StatusBadRequest || code != CodeBadRequest {
		t.Fatalf("plain GET: %d %s", st, code)
	}
	c, _, err := h.tryDial(h.wsURL(tk, nil), nil) // the ticket is still good
	if err != nil {
		t.Fatal(err)
	}
	c.expect("welcome")
}

func TestMetricsMessagesOut(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	c := h.dial(nil)
	c.expect("welcome")
	h.stream.Event(userNode, "PUT", "", "", json.RawMessage(`{}`), nil)
	c.expect("event")
	eventually(t, "messages_out", func() bool { return metric(t, h.reg, "finesse_relay_ws_messages_out_total") == 2 })
	if g := metric(t, h.reg, "finesse_relay_ws_connections"); g != 1 {
		t.Fatalf("connections = %v", g)
	}
}
