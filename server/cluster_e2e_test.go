//go:build !windows

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"finesse-relay/gadget"
	"finesse-relay/internal/redistest"
	"finesse-relay/server/seal"
	"finesse-relay/server/store"
	"finesse-relay/xmpp/finesse"
)

// recordingTab is a browser tab that records every message it receives,
// across reconnects, and resumes from the last seq it saw.
type recordingTab struct {
	t      *testing.T
	name   string
	bearer string

	mu        sync.Mutex
	msgs      []wsMsg          // every message but welcomes, in arrival order
	raw       map[int64]string // numbered frames by seq
	order     []int64          // their seqs in arrival order
	stream    string
	lastSeq   int64
	resumed   []bool   // welcome.resumed of each connection
	welcomes  []string // each connection's welcome
	conn      *websocket.Conn
	closed    chan struct{}
	closeCode int // the close frame's code of the last connection (0: none)
}

func newRecordingTab(t *testing.T, name, bearer string) *recordingTab {
	return &recordingTab{t: t, name: name, bearer: bearer, raw: make(map[int64]string), lastSeq: -1}
}

// open connects the tab to base (resuming after the first connection) and
// records until the connection ends.
func (r *recordingTab) open(base string) {
	r.t.Helper()
	tk, code := (&browserTab{name: r.name, bearer: r.bearer}).ticket(r.t, base)
	if code != http.StatusCreated {
		r.t.Fatalf("%s: POST /api/v1/tickets on %s answered %d", r.name, base, code)
	}
	r.mu.Lock()
	q := ""
	if r.stream != "" {
		q = fmt.Sprintf("&since=%d&stream=%s", r.lastSeq, r.stream)
	}
	r.mu.Unlock()
	c, _, err := websocket.DefaultDialer.Dial(strings.Replace(base, "http", "ws", 1)+"/ws?ticket="+tk+q, nil)
	if err != nil {
		r.t.Fatalf("%s: dial %s: %v", r.name, base, err)
	}
	closed := make(chan struct{})
	r.mu.Lock()
	r.conn, r.closed = c, closed
	before := len(r.resumed)
	r.mu.Unlock()
	go func() {
		defer close(closed)
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					r.mu.Lock()
					r.closeCode = ce.Code
					r.mu.Unlock()
				}
				return
			}
			var m wsMsg
			var w struct {
				Stream string `json:"stream"`
			}
			if json.Unmarshal(b, &m) != nil || json.Unmarshal(b, &w) != nil {
				r.t.Errorf("%s: not JSON: %s", r.name, b)
				return
			}
			r.mu.Lock()
			switch {
			case m.Type == "welcome":
				r.resumed = append(r.resumed, m.Resumed)
				r.welcomes = append(r.welcomes, string(b))
				r.stream = w.Stream
				if !m.Resumed {
					r.lastSeq = m.Seq
				}
			case m.Seq > r.lastSeq:
				r.msgs = append(r.msgs, m)
				r.raw[m.Seq] = string(b)
				r.order = append(r.order, m.Seq)
				r.lastSeq = m.Seq
			default: // a snapshot's state frames carry the welcome's seq
				r.msgs = append(r.msgs, m)
			}
			r.mu.Unlock()
		}
	}()
	t0 := time.Now()
	for {
		r.mu.Lock()
		n := len(r.resumed)
		r.mu.Unlock()
		if n > before {
			return
		}
		if time.Since(t0) > 10*time.Second {
			r.t.Fatalf("%s: no welcome from %s", r.name, base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *recordingTab) close() {
	r.mu.Lock()
	c, closed := r.conn, r.closed
	r.mu.Unlock()
	if c != nil {
		c.Close()
		<-closed
	}
}

// waitFor waits until the tab got a message pred accepts (the first one)
// and fails the test after within, saying what it waited for.
func (r *recordingTab) waitFor(what string, within time.Duration, pred func(wsMsg) bool) wsMsg {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, m := range r.msgs {
			if pred(m) {
				r.mu.Unlock()
				return m
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("%s: %s did not arrive within %v", r.name, what, within)
	return wsMsg{}
}

// waitRequest waits until the tab got the event of requestId rid.
func (r *recordingTab) waitRequest(rid string) wsMsg {
	r.t.Helper()
	return r.waitFor("the event of request "+rid, 15*time.Second, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid })
}

// waitEvent waits until the tab got an event on node.
func (r *recordingTab) waitEvent(node string, within time.Duration) {
	r.t.Helper()
	r.waitFor("an event on "+node, within, func(m wsMsg) bool { return m.Type == "event" && m.Node == node })
}

// waitStatus waits for a status message with upstream after seq.
func (r *recordingTab) waitStatus(upstream string, after int64, within time.Duration) wsMsg {
	r.t.Helper()
	return r.waitFor(fmt.Sprintf("status %q after seq %d", upstream, after), within, func(m wsMsg) bool {
		return m.Type == "status" && m.Upstream == upstream && m.Seq > after
	})
}

// numbered returns the numbered frames the tab got (every message whose
// seq was above the last one it had: live and replayed ones, not a
// snapshot's), by seq, and their seqs in arrival order.
func (r *recordingTab) numbered() (map[int64]string, []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int64]string, len(r.raw))
	for s, b := range r.raw {
		out[s] = b
	}
	return out, slices.Clone(r.order)
}

// writeClusterConfig is writeRelayConfig for one of several active
// instances sharing storeURL.
func writeClusterConfig(t *testing.T, dir string, base []byte, storeURL, keyFile, id string) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(base)), "\n") {
		if !strings.HasPrefix(l, "STORE=") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "STORE="+storeURL, "SESSION_KEY_FILE="+keyFile, "ACTIVE_INSTANCES=many",
		"INSTANCE_ID="+id, "AGENT_LEASE_TTL=4s", "LOG_LEVEL=info")
	path := filepath.Join(dir, "relay.env")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Three relays on loopback share one Redis (ACTIVE_INSTANCES=many). One
// agent has a tab on each. Every tab gets the same frames with the same
// seq; REST calls through a relay that does not own the agent work; kill
// -9 of the owner: another instance adopts the agent within the lease, the
// other tabs see reconnecting → up and no seq is missing, and the dead
// instance's tab resumes on another instance with no gap; Redis stopped and
// started mid-run costs no event.
func TestSeveralActiveInstances(t *testing.T) {
	rd := redistest.Start(t, "--port", "{port}", "--appendonly", "yes", "--appendfsync", "always", "--save", "")
	storeURL := "redis://" + rd.Addr + "/0?dial_timeout=300ms&read_timeout=2s&max_retries=1"
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "session.key")
	if _, err := seal.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	ports := make([]string, 3)
	for i := range ports {
		_, ports[i], _ = strings.Cut(redistest.FreeAddr(t), ":")
	}
	s, secret := startSimForRestart(t, ports[0], 60*time.Second)
	relays := make([]*relayProcess, 3)
	for i := range relays {
		d := filepath.Join(dir, fmt.Sprintf("relay-%d", i+1))
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		base, err := os.ReadFile(writeRelayConfig(t, d, s, secret, ports[i]))
		if err != nil {
			t.Fatal(err)
		}
		relays[i] = startRelayProcess(t, writeClusterConfig(t, d, base, storeURL, keyFile, fmt.Sprintf("relay-%d", i+1)), ports[i])
	}
	t.Cleanup(func() {
		for _, r := range relays {
			if b, _ := os.ReadFile(r.config + ".log"); strings.Contains(string(b), "DATA RACE") {
				t.Errorf("%s: the race detector reported a data race in the relay", r.config)
			}
		}
		if t.Failed() {
			for _, r := range relays {
				b, _ := os.ReadFile(r.config + ".log")
				t.Logf("%s log:\n%s", r.config, b)
			}
		}
	})
	st, err := store.Open(context.Background(), storeURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	owner := func() string {
		h, _, err := st.Holder(context.Background(), "agent:1001")
		if err != nil {
			return ""
		}
		return h
	}

	// Sign in on relay-1: it owns the agent. A tab on each instance.
	a := (&stack{base: relays[0].base, sim: s}).signIn(t, "1001")
	if got := owner(); got != "relay-1" {
		t.Fatalf("owner of 1001 after a sign-in on relay-1: %q", got)
	}
	tabs := make([]*recordingTab, 3)
	for i := range tabs {
		tabs[i] = newRecordingTab(t, fmt.Sprintf("tab on relay-%d", i+1), a.Session)
		tabs[i].open(relays[i].base)
		defer tabs[i].close()
	}
	for _, tab := range tabs {
		tab.waitStatus("up", -1, 15*time.Second)
	}

	// Changes made through the non-owner relays' REST proxies reach every tab.
	put := func(via int, body string) string {
		t.Helper()
		code, rid, b := (&stack{base: relays[via].base}).finesse(t, a.Session, http.MethodPut, "User/1001", body)
		if code != http.StatusAccepted || rid == "" {
			t.Fatalf("PUT User via relay-%d: %d %s", via+1, code, b)
		}
		return rid
	}
	everyTabGets := func(rid string) {
		t.Helper()
		for _, tab := range tabs {
			tab.waitRequest(rid)
		}
	}
	everyTabGets(put(1, "<User><state>LOGIN</state><extension>51001</extension></User>"))
	for i := range 6 {
		everyTabGets(put(i%3, "<User><state>"+[]string{"READY", "NOT_READY"}[i%2]+"</state></User>"))
	}
	sameFrames(t, tabs)

	// Nothing secret is readable in Redis: every key, read as an operator
	// would with redis-cli (--scan, then GET or XRANGE).
	redisHolds(t, rd.Addr, map[string]string{"the password": `"demo"`, "the relay session token": a.Session, "a ticket": a.Ticket})

	// Redis stopped and started mid-run (it keeps its data on disk), with
	// a call ringing the agent meanwhile: the agent keeps its owner and
	// the tabs on the other instances miss nothing.
	everyTabGets(put(2, "<User><state>READY</state></User>"))
	rd.Stop()
	if _, err := s.PlaceCall("5001", "5550100"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	rd.Start()
	for _, tab := range tabs {
		tab.waitEvent(finesse.DialogsNode("1001"), 15*time.Second)
	}
	if got := owner(); got != "relay-1" {
		t.Fatalf("owner after a Redis restart: %q, want relay-1 still", got)
	}
	sameFrames(t, tabs)
	for _, tab := range tabs {
		noGaps(t, tab)
	}

	// kill -9 the owner.
	_, beforeKill := tabs[1].numbered()
	lastBefore := beforeKill[len(beforeKill)-1]
	killedAt := time.Now()
	relays[0].stop(syscall.SIGKILL)
	tabs[0].close()
	for i, tab := range tabs[1:] {
		// reconnecting, then up: no "up" between the kill and the takeover.
		rec := tab.waitStatus("reconnecting", lastBefore, 30*time.Second)
		tab.waitStatus("up", rec.Seq, 30*time.Second)
		if i == 0 {
			t.Logf("agent up again on %s %v after kill -9 of its owner (lease 4 s)", owner(), time.Since(killedAt).Round(time.Millisecond))
		}
		if first := tab.waitStatus("up", lastBefore, time.Second); first.Seq < rec.Seq {
			t.Fatalf("%s: up at seq %d before reconnecting at %d", tab.name, first.Seq, rec.Seq)
		}
	}
	if o := owner(); o != "relay-2" && o != "relay-3" {
		t.Fatalf("owner after kill -9 of relay-1: %q", o)
	}

	// The dead instance's tab resumes on relay-2 with no gap.
	tabs[0].open(relays[1].base)
	tabs[0].mu.Lock()
	resumedOK := tabs[0].resumed[len(tabs[0].resumed)-1]
	tabs[0].mu.Unlock()
	if !resumedOK {
		_, order := tabs[0].numbered()
		_, order1 := tabs[1].numbered()
		t.Fatalf("the dead instance's tab was not resumed on another instance (it got a snapshot); it had %v, relay-2's tab %v; welcomes %v", order, order1, tabs[0].welcomes)
	}
	everyTabGets(put(2, "<User><state>NOT_READY</state></User>"))
	sameFrames(t, tabs)
	for _, tab := range tabs {
		noGaps(t, tab)
	}

	// Signing out on relay-3 closes the relay session's tabs on every
	// instance with 4100.
	req, _ := http.NewRequest(http.MethodDelete, relays[2].base+"/api/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+a.Session)
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	if rsp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE /api/v1/sessions on relay-3: %d", rsp.StatusCode)
	}
	signedOut := time.Now()
	for _, tab := range tabs {
		select {
		case <-tab.closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still open 5 s after the sign-out on relay-3", tab.name)
		}
		tab.mu.Lock()
		code := tab.closeCode
		tab.mu.Unlock()
		if code != gadget.CloseSignedOut {
			t.Fatalf("%s closed with %d, want 4100 (signed_out)", tab.name, code)
		}
	}
	t.Logf("every tab closed 4100 within %v of the sign-out on another instance", time.Since(signedOut).Round(time.Millisecond))
}

// sameFrames checks that every numbered frame two tabs both got is
// byte-identical, and that the tabs got them in the same order.
func sameFrames(t *testing.T, tabs []*recordingTab) {
	t.Helper()
	ref, refOrder := tabs[0].numbered()
	for _, tab := range tabs[1:] {
		got, order := tab.numbered()
		for s, b := range got {
			if rb, ok := ref[s]; ok && rb != b {
				t.Fatalf("seq %d differs between %s and %s:\n%s\n%s", s, tabs[0].name, tab.name, rb, b)
			}
		}
		if !sameRelativeOrder(refOrder, order) {
			t.Fatalf("%s and %s got frames in different orders: %v / %v", tabs[0].name, tab.name, refOrder, order)
		}
	}
}

// sameRelativeOrder: the seqs both lists hold appear in the same order.
func sameRelativeOrder(a, b []int64) bool {
	inB := map[int64]bool{}
	for _, s := range b {
		inB[s] = true
	}
	var ca []int64
	for _, s := range a {
		if inB[s] {
			ca = append(ca, s)
		}
	}
	inA := map[int64]bool{}
	for _, s := range a {
		inA[s] = true
	}
	var cb []int64
	for _, s := range b {
		if inA[s] {
			cb = append(cb, s)
		}
	}
	if len(ca) != len(cb) {
		return false
	}
	for i := range ca {
		if ca[i] != cb[i] {
			return false
		}
	}
	return true
}

// noGaps checks that the tab got every seq from its first numbered frame
// to its last, in increasing order.
func noGaps(t *testing.T, tab *recordingTab) {
	t.Helper()
	_, order := tab.numbered()
	if len(order) == 0 {
		t.Fatalf("%s got no frames", tab.name)
	}
	for i := 1; i < len(order); i++ {
		if order[i] != order[i-1]+1 {
			t.Fatalf("%s: seq %d follows %d (a gap or a reorder); frames %v", tab.name, order[i], order[i-1], order)
		}
	}
}

// redisHolds fails the test when any key of the Redis at addr holds one of
// secrets, read with redis-cli: --scan, then GET (strings) or XRANGE
// (streams).
func redisHolds(t *testing.T, addr string, secrets map[string]string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	cli := func(args ...string) string {
		out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port, "--no-raw"}, args...)...).Output()
		if err != nil {
			t.Fatalf("redis-cli %v: %v", args, err)
		}
		return string(out)
	}
	keys := strings.Fields(cli("--scan"))
	if len(keys) < 5 {
		t.Fatalf("redis-cli --scan found only %v", keys)
	}
	for _, k := range keys {
		k = strings.Trim(k, `"`)
		var v string
		switch typ := strings.TrimSpace(cli("TYPE", k)); typ {
		case "string":
			v = cli("GET", k)
		case "stream":
			v = cli("XRANGE", k, "-", "+")
		default:
			continue
		}
		for what, secret := range secrets {
			if strings.Contains(v, secret) {
				t.Fatalf("%s is readable in Redis under %s", what, k)
			}
		}
	}
}
