//go:build !windows

package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"finesse-relay/internal/faultnet"
)

// faultStack is the relay and the simulator with faults in between: for
// each Finesse side, the relay's XMPP connections go through a TCP fault
// proxy to the simulator's WebSocket port, and its REST calls go through a
// TCP fault proxy to an HTTPS front that can answer errors or hang, which
// forwards to the simulator's REST.
type faultStack struct {
	*stack
	xmpp  [2]*faultnet.Proxy
	rest  [2]*faultnet.Proxy
	front [2]*restFront
}

// startFaultStack starts a stack with the fault proxies wired in through
// the relay's configuration (FINESSE_x_HTTPS_PORT, FINESSE_x_XMPP_HOST/PORT).
func startFaultStack(t *testing.T, opts stackOptions) *faultStack {
	t.Helper()
	fs := &faultStack{}
	tweak := opts.relay
	opts.relay = func(cfg *Config) {
		if tweak != nil {
			tweak(cfg)
		}
		for i := range cfg.Sides {
			side := &cfg.Sides[i]
			simREST := net.JoinHostPort(side.Host, strconv.Itoa(side.HTTPSPort))
			fs.front[i] = newRestFront(t, "https://"+simREST, cfg.RootCAs)
			cfg.RootCAs.AddCert(fs.front[i].srv.Certificate())
			fs.rest[i] = startProxy(t, fs.front[i].srv.Listener.Addr().String())
			fs.xmpp[i] = startProxy(t, simREST) // XMPP over WebSocket: /ws on the REST port
			side.HTTPSPort = fs.rest[i].Port()
			side.XMPPHost = "127.0.0.1"
			side.XMPPPort = fs.xmpp[i].Port()
		}
	}
	// The proxies' cleanups were registered inside startStack before its
	// own: they run after the relay and the simulator have stopped.
	fs.stack = startStack(t, opts)
	return fs
}

func startProxy(t *testing.T, target string) *faultnet.Proxy {
	t.Helper()
	p, err := faultnet.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// restFront is an HTTPS reverse proxy to one simulated Finesse node that
// answers a chosen status, or hangs, for the requests a fault matches.
type restFront struct {
	srv     *httptest.Server
	closing chan struct{} // ends hanging requests at cleanup

	mu    sync.Mutex
	fault *restFault
}

// restFault is what the front does instead of forwarding.
type restFault struct {
	match  func(*http.Request) bool // nil = every request but SystemInfo
	status int                      // answer this status with a Finesse ApiErrors body
	hang   bool                     // never answer (until the client gives up)
	hits   int
}

func newRestFront(t *testing.T, target string, ca *x509.CertPool) *restFront {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.Clone(), MinVersion: tls.VersionTLS12}
	rp.Transport = tr
	rp.ErrorLog = nil
	f := &restFront{closing: make(chan struct{})}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fault := f.take(r); fault != nil {
			if fault.hang {
				// Read the body first: only then does the server notice
				// that the client gave up (and cancel the context).
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done():
				case <-f.closing:
				}
				return
			}
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(fault.status)
			fmt.Fprintf(w, `<ApiErrors><ApiError><ErrorType>Service Unavailable</ErrorType><ErrorData>injected</ErrorData><ErrorMessage>injected %d by the fault test</ErrorMessage></ApiError></ApiErrors>`, fault.status)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	f.srv.StartTLS()
	t.Cleanup(func() {
		f.set(nil)
		close(f.closing)
		f.srv.CloseClientConnections()
		f.srv.Close()
		tr.CloseIdleConnections()
	})
	return f
}

func (f *restFront) take(r *http.Request) *restFault {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fault == nil {
		return nil
	}
	if f.fault.match == nil && strings.HasSuffix(r.URL.Path, "/SystemInfo") {
		return nil
	}
	if f.fault.match != nil && !f.fault.match(r) {
		return nil
	}
	f.fault.hits++
	c := *f.fault
	return &c
}

// set installs a fault (nil = forward everything).
func (f *restFront) set(fault *restFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fault
}

// hits is how many requests the current fault answered.
func (f *restFront) hits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fault == nil {
		return 0
	}
	return f.fault.hits
}

// tab is a browser tab: a WebSocket read continuously into a log.
type tab struct {
	c *websocket.Conn

	mu      sync.Mutex
	msgs    []wsMsg
	stream  string // the last welcome's stream
	cursor  int
	err     error // why reading stopped
	changed chan struct{}
	done    chan struct{}
}

// openTab connects with ticket (and query, e.g. "&since=4") and reads every
// message into the tab's log until the connection ends.
func (st *stack) openTab(t *testing.T, ticket, query string) *tab {
	t.Helper()
	c, _, err := st.dial(t, ticket, query, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb := &tab{c: c, changed: make(chan struct{}, 1), done: make(chan struct{})}
	go tb.read()
	t.Cleanup(tb.close)
	return tb
}

func (tb *tab) read() {
	defer close(tb.done)
	for {
		_, b, err := tb.c.ReadMessage()
		tb.mu.Lock()
		if err != nil {
			tb.err = err
		} else {
			var m wsMsg
			if json.Unmarshal(b, &m) != nil {
				m = wsMsg{Type: "not-json:" + string(b)}
			}
			if m.Type == "welcome" {
				var w struct{ Stream string }
				_ = json.Unmarshal(b, &w)
				tb.stream = w.Stream
			}
			tb.msgs = append(tb.msgs, m)
		}
		tb.mu.Unlock()
		select {
		case tb.changed <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// close closes the tab's connection and waits for its reader.
func (tb *tab) close() {
	_ = tb.c.Close()
	<-tb.done
}

// await returns the first message after the tab's cursor that matches,
// and moves the cursor past it; it fails the test after d.
func (tb *tab) await(t *testing.T, d time.Duration, what string, pred func(wsMsg) bool) wsMsg {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		tb.mu.Lock()
		for i := tb.cursor; i < len(tb.msgs); i++ {
			if pred(tb.msgs[i]) {
				tb.cursor = i + 1
				m := tb.msgs[i]
				tb.mu.Unlock()
				return m
			}
		}
		tb.cursor = len(tb.msgs)
		err := tb.err
		tb.mu.Unlock()
		if err != nil {
			t.Fatalf("waiting for %s: the tab's connection ended: %v", what, err)
		}
		select {
		case <-tb.changed:
		case <-deadline.C:
			t.Fatalf("no %s within %v; the tab saw %s", what, d, tb.summary())
		}
	}
}

// awaitAll waits until the tab has received the events of every requestId
// in rids (anywhere in its log). Their order is not checked: the simulator,
// like Finesse, may apply two quick requests in either order.
func (tb *tab) awaitAll(t *testing.T, d time.Duration, rids []string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		at := map[string]int64{}
		for _, m := range tb.log() {
			if m.Type == "event" && m.RequestID != "" {
				at[m.RequestID] = m.Seq
			}
		}
		missing := 0
		for _, rid := range rids {
			if _, ok := at[rid]; !ok {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events missing after %v; the tab saw %s", missing, len(rids), d, tb.summary())
		}
		select {
		case <-tb.changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitSeq waits until the tab has seen seq (anywhere in its log).
func (tb *tab) waitSeq(t *testing.T, seq int64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for tb.lastSeq() < seq {
		if time.Now().After(deadline) {
			t.Fatalf("the tab did not reach seq %d within %v; it saw %s", seq, d, tb.summary())
		}
		select {
		case <-tb.changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// streamID is the stream named by the tab's last welcome.
func (tb *tab) streamID() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.stream
}

// log returns a copy of every message the tab received.
func (tb *tab) log() []wsMsg {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]wsMsg(nil), tb.msgs...)
}

// statuses lists the upstream statuses the tab was told, in order.
func (tb *tab) statuses() []string {
	var out []string
	for _, m := range tb.log() {
		if m.Type == "status" {
			out = append(out, m.Upstream)
		}
	}
	return out
}

// lastSeq is the highest seq the tab saw.
func (tb *tab) lastSeq() int64 {
	last := int64(-1)
	for _, m := range tb.log() {
		if m.Seq > last {
			last = m.Seq
		}
	}
	return last
}

func (tb *tab) summary() string {
	var b strings.Builder
	for _, m := range tb.log() {
		fmt.Fprintf(&b, "\n  %d %s %s %s %s", m.Seq, m.Type, m.Upstream, m.Node, m.RequestID)
	}
	return b.String()
}

// isStatus matches a status message with upstream u.
func isStatus(u string) func(wsMsg) bool {
	return func(m wsMsg) bool { return m.Type == "status" && m.Upstream == u }
}

// isEvent matches the event carrying requestId rid.
func isEvent(rid string) func(wsMsg) bool {
	return func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid }
}

// userState extracts the User state from a state or event of the User node.
func userState(m wsMsg) string {
	var u struct{ State string }
	_ = json.Unmarshal(m.Data, &u)
	return u.State
}

// setState PUTs a User state change through the relay's REST proxy and
// returns its requestId; it fails the test unless Finesse answers 202.
func (st *stack) setState(t *testing.T, session, loginID, state string) string {
	t.Helper()
	body := "<User><state>" + state + "</state></User>"
	if state == "LOGIN" {
		body = "<User><state>LOGIN</state><extension>5" + loginID + "</extension></User>"
	}
	code, rid, rsp := st.finesse(t, session, http.MethodPut, "User/"+loginID, body)
	if code != http.StatusAccepted || rid == "" {
		t.Fatalf("PUT User/%s %s: %d %q %s", loginID, state, code, rid, rsp)
	}
	return rid
}

// simUser is the simulator's view of a user (GET /sim/users/{id}).
type simUser struct {
	State   string          `json:"state"`
	Present map[string]bool `json:"present"`
}

func (st *stack) simUser(t *testing.T, id string) simUser {
	t.Helper()
	rsp, err := http.Get(st.sim.Endpoints().ControlURL + "/sim/users/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	var u simUser
	if err := json.NewDecoder(rsp.Body).Decode(&u); err != nil {
		t.Fatal(err)
	}
	return u
}

// presenceWatch samples the simulator's presence of an agent on both
// sides every few milliseconds and records whether it was ever present on
// both at once.
type presenceWatch struct {
	both  chan bool
	stop  chan struct{}
	fails chan string
}

func (st *stack) watchPresence(id string) *presenceWatch {
	w := &presenceWatch{both: make(chan bool, 1), stop: make(chan struct{}), fails: make(chan string, 1)}
	go func() {
		both := false
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-w.stop:
				w.both <- both
				return
			case <-tk.C:
			}
			rsp, err := http.Get(st.sim.Endpoints().ControlURL + "/sim/users/" + id)
			if err != nil {
				continue
			}
			var u simUser
			_ = json.NewDecoder(rsp.Body).Decode(&u)
			rsp.Body.Close()
			if u.Present["A"] && u.Present["B"] {
				both = true
			}
		}
	}()
	return w
}

// end stops the watch and reports whether the agent was ever on both sides.
func (w *presenceWatch) end() bool {
	close(w.stop)
	return <-w.both
}

// checkResume connects a tab that resumes with since and compares what it
// replays with what the continuous tab got after since: the same messages
// (seq, type, node, requestId, upstream), in the same order.
func (st *stack) checkResume(t *testing.T, session string, continuous *tab, since int64, stream string) {
	t.Helper()
	r := st.openTab(t, st.ticket(t, session), fmt.Sprintf("&since=%d&stream=%s", since, stream))
	w := r.await(t, 10*time.Second, "the resumed welcome", func(m wsMsg) bool { return m.Type == "welcome" })
	if !w.Resumed {
		t.Fatalf("resume since %d: welcome.resumed is false (the ring should hold it)", since)
	}
	if w.Seq > since {
		r.await(t, 10*time.Second, fmt.Sprintf("the replay up to seq %d", w.Seq), func(m wsMsg) bool { return m.Seq == w.Seq && m.Type != "welcome" })
	}
	continuous.waitSeq(t, w.Seq, 10*time.Second)
	type key struct {
		seq                           int64
		typ, node, rid, upstream, evt string
	}
	keys := func(msgs []wsMsg, skipWelcome bool) []key {
		var out []key
		for _, m := range msgs {
			if m.Seq <= since || m.Seq > w.Seq || m.Type == "welcome" || m.Type == "reply" || m.Type == "error" {
				continue
			}
			out = append(out, key{m.Seq, m.Type, m.Node, m.RequestID, m.Upstream, m.Event})
		}
		return out
	}
	// The continuous tab's own snapshot (after its welcome) carries its
	// welcome's seq, which is at most since here.
	want, got := keys(continuous.log(), true), keys(r.log(), true)
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("resume since %d lost or changed messages:\ncontinuous tab: %v\nresumed tab:    %v", since, want, got)
	}
	r.close()
}

// settleGoroutines waits until the goroutine count is at most limit.
func settleGoroutines(t *testing.T, limit int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		http.DefaultClient.CloseIdleConnections()
		n := runtime.NumGoroutine()
		if n <= limit {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%s: %d goroutines, want at most %d\n%s", what, n, limit, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// heapAfterGC is the live heap after two collections.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
