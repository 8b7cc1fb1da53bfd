package bosh_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"finesse-relay/xmpp/bosh"
)

const nsBind = "http://jabber.org/protocol/httpbind"

// fakeCM is a scripted connection manager. It answers session creation with
// creationAttrs, then hands every request to handle. It records the requests
// and the most requests it saw in flight at once.
type fakeCM struct {
	t             *testing.T
	hs            *httptest.Server
	creationAttrs string
	handle        func(n int, b *bosh.Body, raw []byte, w http.ResponseWriter, r *http.Request)

	mu          sync.Mutex
	reqs        []*bosh.Body
	raws        [][]byte
	inflight    int
	maxInflight int
	arrived     chan struct{} // closed and replaced at each request
	release     chan struct{} // closed to answer the request held by hold
}

func newFakeCM(t *testing.T, creationAttrs string, handle func(n int, b *bosh.Body, raw []byte, w http.ResponseWriter, r *http.Request)) *fakeCM {
	t.Helper()
	f := &fakeCM{t: t, creationAttrs: creationAttrs, handle: handle, arrived: make(chan struct{})}
	f.hs = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.hs.Close)
	return f
}

func (f *fakeCM) url() string { return f.hs.URL + "/http-bind" }

func (f *fakeCM) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	b, err := bosh.ParseBody(raw)
	if err != nil {
		f.t.Errorf("client sent a malformed body %q: %v", raw, err)
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, b)
	f.raws = append(f.raws, raw)
	f.inflight++
	if b.Type != "terminate" {
		f.maxInflight = max(f.maxInflight, f.inflight)
	}
	my := make(chan struct{})
	if b.SID != "" {
		// hold='1': a new request releases the one held so far.
		if f.release != nil {
			close(f.release)
		}
		f.release = my
	}
	close(f.arrived)
	f.arrived = make(chan struct{})
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if b.SID == "" {
		reply(w, f.creationAttrs, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>")
		return
	}
	ctx := context.WithValue(context.WithValue(r.Context(), fakeKey{}, f), releaseKey{}, my)
	f.handle(n, b, raw, w, r.WithContext(ctx))
}

// waitRequests waits until n requests arrived.
func (f *fakeCM) waitRequests(n int, d time.Duration) []*bosh.Body {
	f.t.Helper()
	deadline := time.After(d)
	for {
		f.mu.Lock()
		if len(f.reqs) >= n {
			reqs := slices.Clone(f.reqs)
			f.mu.Unlock()
			return reqs
		}
		ch := f.arrived
		f.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			f.t.Fatalf("%d requests arrived within %v, want %d", len(f.requests()), d, n)
		}
	}
}

func (f *fakeCM) rawRequests() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.raws)
}

func (f *fakeCM) requests() []*bosh.Body {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func reply(w http.ResponseWriter, attrs, payload string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if payload == "" {
		fmt.Fprintf(w, "<body%s xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams'/>", attrs, nsBind)
		return
	}
	fmt.Fprintf(w, "<body%s xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams'>%s</body>", attrs, nsBind, payload)
}

// hold holds a request up to d, until the next request arrives (as a
// server with hold='1' does) or the client goes away, then answers it empty.
func (f *fakeCM) hold(d time.Duration) func(int, *bosh.Body, []byte, http.ResponseWriter, *http.Request) {
	return func(_ int, b *bosh.Body, _ []byte, w http.ResponseWriter, r *http.Request) {
		if b.Type == "terminate" {
			reply(w, " type='terminate'", "")
			return
		}
		my := r.Context().Value(releaseKey{}).(chan struct{})
		select {
		case <-time.After(d):
		case <-my:
		case <-r.Context().Done():
			return
		}
		reply(w, "", "")
	}
}

type (
	fakeKey    struct{}
	releaseKey struct{}
)

// holdThenEmpty is hold of the fakeCM serving the request.
func holdThenEmpty(d time.Duration) func(int, *bosh.Body, []byte, http.ResponseWriter, *http.Request) {
	return func(n int, b *bosh.Body, raw []byte, w http.ResponseWriter, r *http.Request) {
		r.Context().Value(fakeKey{}).(*fakeCM).hold(d)(n, b, raw, w, r)
	}
}

const stdCreation = " sid='s1' wait='5' hold='1' requests='2' inactivity='30' polling='0' ver='1.6' from='" + testDomain + "' authid='a1'"

func dialFake(t *testing.T, f *fakeCM, cfg bosh.Config) *bosh.Conn {
	t.Helper()
	cfg.URL, cfg.Domain = f.url(), testDomain
	if cfg.Wait == 0 {
		cfg.Wait = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := bosh.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*bosh.Conn)
}

func TestDialSendsXEP0206Creation(t *testing.T) {
	f := newFakeCM(t, stdCreation, holdThenEmpty(time.Minute))
	c := dialFake(t, f, bosh.Config{Wait: 7 * time.Second, Hold: 1})
	raw := string(f.rawRequests()[0])
	for _, want := range []string{"hold='1'", "wait='7'", "to='" + testDomain + "'", "ver='1.6'", "xmpp:version='1.0'",
		"xmlns:xmpp='urn:xmpp:xbosh'", "content='text/xml; charset=utf-8'", "xmlns='" + nsBind + "'"} {
		if !strings.Contains(raw, want) {
			t.Errorf("creation request %s lacks %s", raw, want)
		}
	}
	p := c.Params()
	if p.Wait != 5*time.Second || p.Hold != 1 || p.Requests != 2 || p.Inactivity != 30*time.Second || p.StreamID != "a1" {
		t.Errorf("params %v: want the server's wait=5s hold=1 requests=2 inactivity=30s authid a1", p)
	}
	// One long-poll goes out right away.
	reqs := f.waitRequests(2, 2*time.Second)
	if reqs[1].SID != "s1" || reqs[1].RID != reqs[0].RID+1 || len(reqs[1].Payload) != 0 {
		t.Errorf("first poll sid=%q rid=%d payload=%d, want s1, %d, empty", reqs[1].SID, reqs[1].RID, len(reqs[1].Payload), reqs[0].RID+1)
	}
}

func TestRIDsAndRequestsLimit(t *testing.T) {
	f := newFakeCM(t, stdCreation, holdThenEmpty(150*time.Millisecond))
	c := dialFake(t, f, bosh.Config{})
	mustWrite(t, c, clientHead)
	readUntil(t, c, "</stream:features>")
	for i := range 20 {
		mustWrite(t, c, fmt.Sprintf("<message id='m%d'><body>x</body></message>", i))
		time.Sleep(10 * time.Millisecond)
	}
	// Wait until every message went out.
	deadline := time.Now().Add(5 * time.Second)
	for {
		sent := 0
		for _, b := range f.requests() {
			sent += len(b.Payload)
		}
		if sent == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 20 messages sent", sent)
		}
		time.Sleep(20 * time.Millisecond)
	}
	reqs := f.requests()
	var rids []uint64
	var order []string
	for _, b := range reqs {
		rids = append(rids, b.RID)
		for _, p := range b.Payload {
			order = append(order, string(p))
		}
	}
	slices.Sort(rids)
	for i := 1; i < len(rids); i++ {
		if rids[i] != rids[i-1]+1 {
			t.Fatalf("rids %v: not consecutive, one per request", rids)
		}
	}
	for i, p := range order {
		if !strings.Contains(p, fmt.Sprintf("id='m%d'", i)) {
			t.Fatalf("payload %d is %s: messages reordered", i, p)
		}
	}
	f.mu.Lock()
	maxIn := f.maxInflight
	f.mu.Unlock()
	if maxIn > 2 {
		t.Errorf("%d requests in flight at once, server allows 2", maxIn)
	}
	if len(reqs) >= 22 {
		t.Logf("note: %d requests for 20 messages (no batching happened)", len(reqs))
	}
}

func TestBatchesWritesWhileRequestsInFlight(t *testing.T) {
	f := newFakeCM(t, stdCreation, holdThenEmpty(300*time.Millisecond))
	c := dialFake(t, f, bosh.Config{Requests: 1})
	mustWrite(t, c, clientHead)
	readUntil(t, c, "</stream:features>")
	f.waitRequests(2, 2*time.Second) // the poll holds the only slot
	for i := range 5 {
		mustWrite(t, c, fmt.Sprintf("<presence id='p%d'/>", i))
	}
	reqs := f.waitRequests(3, 2*time.Second)
	if n := len(reqs[2].Payload); n != 5 {
		t.Errorf("request after the poll carries %d stanzas, want the 5 written meanwhile", n)
	}
}

func TestOutOfOrderResponsesAreReadInRIDOrder(t *testing.T) {
	release := make(chan struct{})
	f := newFakeCM(t, stdCreation, func(n int, b *bosh.Body, _ []byte, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1: // the first poll: answered last
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			reply(w, "", "<message id='first'/>")
		case 2: // the data request: answered at once
			reply(w, "", "<message id='second'/>")
			close(release)
		default:
			holdThenEmpty(time.Minute)(n, b, nil, w, r)
		}
	})
	c := dialFake(t, f, bosh.Config{})
	mustWrite(t, c, clientHead)
	readUntil(t, c, "</stream:features>")
	f.waitRequests(2, 2*time.Second)
	mustWrite(t, c, "<presence/>")
	got := readUntil(t, c, "id='second'")
	if i, j := strings.Index(got, "id='first'"), strings.Index(got, "id='second'"); i < 0 || i > j {
		t.Errorf("read %q: want the response of the lower rid first", got)
	}
}

func TestRetransmitsWithSameRIDAfterNetworkError(t *testing.T) {
	var drops sync.Once
	f := newFakeCM(t, stdCreation, func(n int, b *bosh.Body, _ []byte, w http.ResponseWriter, r *http.Request) {
		if len(b.Payload) > 0 {
			dropped := false
			drops.Do(func() {
				// Network error: close the connection without an answer.
				hj, _ := w.(http.Hijacker)
				conn, _, _ := hj.Hijack()
				conn.Close()
				dropped = true
			})
			if dropped {
				return
			}
			reply(w, "", "<message id='ack'/>")
			return
		}
		holdThenEmpty(time.Minute)(n, b, nil, w, r)
	})
	c := dialFake(t, f, bosh.Config{})
	mustWrite(t, c, clientHead)
	readUntil(t, c, "</stream:features>")
	mustWrite(t, c, "<iq type='get' id='q'/>")
	readUntil(t, c, "id='ack'")
	var withPayload []*bosh.Body
	var raws [][]byte
	for i, b := range f.requests() {
		if len(b.Payload) > 0 {
			withPayload = append(withPayload, b)
			raws = append(raws, f.rawRequests()[i])
		}
	}
	if len(withPayload) != 2 || withPayload[0].RID != withPayload[1].RID {
		t.Fatalf("requests with the payload: %d (rids %v), want the original and one retransmission with the same rid", len(withPayload), ridsOf(withPayload))
	}
	if !bytes.Equal(raws[0], raws[1]) {
		t.Errorf("retransmission %s differs from the original %s", raws[1], raws[0])
	}
}

func ridsOf(bs []*bosh.Body) []uint64 {
	var r []uint64
	for _, b := range bs {
		r = append(r, b.RID)
	}
	return r
}

func TestNetworkErrorsGiveUp(t *testing.T) {
	f := newFakeCM(t, stdCreation, func(n int, b *bosh.Body, _ []byte, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "proxy down", http.StatusBadGateway)
	})
	c := dialFake(t, f, bosh.Config{})
	_, _ = c.Write([]byte(clientHead)) // may fail: the session may already be over
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(c)
	if !errors.Is(err, bosh.ErrNetwork) {
		t.Fatalf("Read after repeated 502s: %v, want ErrNetwork", err)
	}
	// 1 creation + 4 attempts of the same poll.
	reqs := f.requests()
	if len(reqs) != 5 || reqs[1].RID != reqs[4].RID {
		t.Errorf("%d requests (rids %v), want creation + 4 attempts with one rid", len(reqs), ridsOf(reqs))
	}
}

func TestTerminateConditionsAndHTTPErrors(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		cond   string
		status int
		data   string
	}{
		{"remote-connection-failed", func(w http.ResponseWriter) {
			reply(w, " type='terminate' condition='remote-connection-failed'", "")
		}, bosh.ConditionRemoteConnectionFailed, 0, ""},
		{"stream error inside", func(w http.ResponseWriter) {
			reply(w, " type='terminate' condition='remote-stream-error'", "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>")
		}, bosh.ConditionRemoteStreamError, 0, "<conflict "},
		{"policy-violation", func(w http.ResponseWriter) { reply(w, " type='terminate' condition='policy-violation'", "") }, bosh.ConditionPolicyViolation, 0, ""},
		{"type error", func(w http.ResponseWriter) { reply(w, " type='error'", "") }, bosh.ConditionUndefinedCondition, 0, ""},
		{"HTTP 404", func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound) }, bosh.ConditionItemNotFound, 404, ""},
		{"HTTP 403", func(w http.ResponseWriter) { w.WriteHeader(http.StatusForbidden) }, bosh.ConditionPolicyViolation, 403, ""},
		{"HTTP 400", func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadRequest) }, bosh.ConditionBadRequest, 400, ""},
		{"HTTP 500", func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }, bosh.ConditionUndefinedCondition, 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCM(t, stdCreation, func(n int, b *bosh.Body, _ []byte, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					tt.answer(w)
					return
				}
				holdThenEmpty(time.Minute)(n, b, nil, w, r)
			})
			c := dialFake(t, f, bosh.Config{})
			// The terminate may come before this write, which then fails.
			_, _ = c.Write([]byte(clientHead))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			data, err := io.ReadAll(c)
			var te *bosh.TerminateError
			if !errors.As(err, &te) || te.Condition != tt.cond || te.HTTPStatus != tt.status {
				t.Fatalf("Read: %v, want *TerminateError{%s, %d}", err, tt.cond, tt.status)
			}
			if !strings.Contains(string(data), tt.data) {
				t.Errorf("data before the error %q lacks %q", data, tt.data)
			}
			if _, err := c.Write([]byte("<presence/>")); !errors.As(err, &te) {
				t.Errorf("Write after the terminate: %v, want the *TerminateError", err)
			}
		})
	}
}

func TestNormalTerminateEndsStream(t *testing.T) {
	f := newFakeCM(t, stdCreation, func(n int, b *bosh.Body, _ []byte, w http.ResponseWriter, r *http.Request) {
		reply(w, " type='terminate'", "<message id='last'/>")
	})
	c := dialFake(t, f, bosh.Config{})
	_, _ = c.Write([]byte(clientHead)) // may fail: the session may already be over
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("Read: %v, want EOF", err)
	}
	if !strings.HasSuffix(string(data), "<message id='last'/></stream:stream>") {
		t.Errorf("stream %q: want the last payload then </stream:stream>", data)
	}
}

func TestDialErrors(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		creation func(w http.ResponseWriter)
		check    func(error) bool
	}{
		{"host-unknown", "", func(w http.ResponseWriter) { reply(w, " type='terminate' condition='host-unknown'", "") },
			func(err error) bool {
				var te *bosh.TerminateError
				return errors.As(err, &te) && te.Condition == bosh.ConditionHostUnknown
			}},
		{"no sid", "", func(w http.ResponseWriter) { reply(w, " wait='5'", "") }, func(err error) bool { return errors.Is(err, bosh.ErrProtocol) }},
		{"not xml", "", func(w http.ResponseWriter) { io.WriteString(w, "<html>") }, func(err error) bool { return errors.Is(err, bosh.ErrProtocol) }},
		{"too large", "", func(w http.ResponseWriter) { reply(w, stdCreation, "<x>"+strings.Repeat("a", 2048)+"</x>") },
			func(err error) bool { return errors.Is(err, bosh.ErrBodyTooLarge) }},
		{"plain http to a remote host", "http://finesse.example.com/http-bind", nil, func(err error) bool { return errors.Is(err, bosh.ErrConfig) }},
		{"ftp", "ftp://127.0.0.1/", nil, func(err error) bool { return errors.Is(err, bosh.ErrConfig) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			if url == "" {
				hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tt.creation(w) }))
				defer hs.Close()
				url = hs.URL
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := bosh.Dial(ctx, bosh.Config{URL: url, Domain: testDomain, MaxBodySize: 1024})
			if err == nil {
				c.Close()
			}
			if !tt.check(err) {
				t.Errorf("Dial: %v", err)
			}
		})
	}
	if _, err := bosh.Dial(context.Background(), bosh.Config{URL: "https://x/", Domain: ""}); !errors.Is(err, bosh.ErrConfig) {
		t.Errorf("empty domain: %v, want ErrConfig", err)
	}
}

func TestResponseBodyLimit(t *testing.T) {
	f := newFakeCM(t, stdCreation, func(n int, b *bosh.Body, _ []byte, w http.ResponseWriter, r *http.Request) {
		reply(w, "", "<message><body>"+strings.Repeat("a", 4096)+"</body></message>")
	})
	c := dialFake(t, f, bosh.Config{MaxBodySize: 2048})
	_, _ = c.Write([]byte(clientHead)) // may fail: the session may already be over
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); !errors.Is(err, bosh.ErrBodyTooLarge) {
		t.Errorf("Read: %v, want ErrBodyTooLarge", err)
	}
}

func TestPollingIntervalBetweenEmptyPolls(t *testing.T) {
	// A server in polling mode answers every request at once.
	f := newFakeCM(t, " sid='s1' wait='5' hold='1' requests='2' polling='1' ver='1.6'", func(n int, b *bosh.Body, _ []byte, w http.ResponseWriter, r *http.Request) {
		reply(w, "", "")
	})
	dialFake(t, f, bosh.Config{})
	time.Sleep(2500 * time.Millisecond)
	reqs := f.requests()
	// creation, then empty polls at 0 s, ≥1 s, ≥2 s.
	if n := len(reqs) - 1; n < 2 || n > 3 {
		t.Errorf("%d empty polls in 2.5 s with polling='1', want 2 or 3", n)
	}
}

func TestDeadlines(t *testing.T) {
	f := newFakeCM(t, stdCreation, holdThenEmpty(time.Minute))
	c := dialFake(t, f, bosh.Config{})
	mustWrite(t, c, clientHead)
	readUntil(t, c, "</stream:features>")

	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	_, err := c.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v, want a timeout net.Error", err)
	}
	if el := time.Since(start); el < 90*time.Millisecond || el > time.Second {
		t.Errorf("Read returned after %v, want about 100 ms", el)
	}
	// A deadline in the past fails at once; clearing it lets Read block again.
	_ = c.SetDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read with a past deadline: %v", err)
	}
	_ = c.SetDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("Read without deadline returned %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// Close unblocks it.
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read blocked at Close: %v, want net.ErrClosed", err)
	}
}

func TestWriteBlocksOnFullQueueUntilDeadline(t *testing.T) {
	f := newFakeCM(t, stdCreation, holdThenEmpty(time.Minute))
	// One request at a time, held by the server: nothing can be sent.
	c := dialFake(t, f, bosh.Config{Requests: 1, MaxBodySize: 1024})
	mustWrite(t, c, clientHead)
	readUntil(t, c, "</stream:features>")
	f.waitRequests(2, 2*time.Second)
	_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	stanza := "<message><body>" + strings.Repeat("a", 300) + "</body></message>"
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, err = c.Write([]byte(stanza))
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write with a full queue: %v, want os.ErrDeadlineExceeded", err)
	}
}

func TestCloseSendsTerminate(t *testing.T) {
	f := newFakeCM(t, stdCreation, holdThenEmpty(time.Minute))
	c := dialFake(t, f, bosh.Config{})
	mustWrite(t, c, clientHead)
	readUntil(t, c, "</stream:features>")
	mustWrite(t, c, "<presence type='unavailable'/>")
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close took %v although the server answered the terminate at once", el)
	}
	reqs := f.requests()
	slices.SortFunc(reqs, func(a, b *bosh.Body) int { return cmp.Compare(a.RID, b.RID) })
	if last := reqs[len(reqs)-1]; last.Type != "terminate" {
		t.Errorf("request with the highest rid has type %q, want terminate", last.Type)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("<presence/>")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
}

func TestCloseIsBoundedWhenServerHangs(t *testing.T) {
	f := newFakeCM(t, stdCreation, func(n int, b *bosh.Body, _ []byte, w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers, not even the terminate
	})
	c := dialFake(t, f, bosh.Config{CloseTimeout: 300 * time.Millisecond})
	start := time.Now()
	c.Close()
	if el := time.Since(start); el < 250*time.Millisecond || el > 2*time.Second {
		t.Errorf("Close took %v, want about CloseTimeout (300 ms)", el)
	}
}

func TestWriteRejectsWhatIsNotAStream(t *testing.T) {
	tests := []struct{ name, write string }{
		{"stanza before the header", "<message/>"},
		{"character data", clientHead + "hello"},
		{"header not in the streams namespace", "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'>"},
		{"markup declaration", clientHead + "<!DOCTYPE x>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCM(t, stdCreation, holdThenEmpty(time.Minute))
			c := dialFake(t, f, bosh.Config{})
			if _, err := c.Write([]byte(tt.write)); !errors.Is(err, bosh.ErrProtocol) {
				t.Errorf("Write(%q) = %v, want ErrProtocol", tt.write, err)
			}
		})
	}
}

func TestSplitWritesFormOneElement(t *testing.T) {
	f := newFakeCM(t, stdCreation, func(n int, b *bosh.Body, _ []byte, w http.ResponseWriter, r *http.Request) {
		if len(b.Payload) > 0 {
			reply(w, "", "")
			return
		}
		holdThenEmpty(time.Minute)(n, b, nil, w, r)
	})
	c := dialFake(t, f, bosh.Config{})
	whole := clientHead + "<message id='split' to='a@b'><body>one 'two' \"three\" &lt;four&gt;<![CDATA[<not a tag>]]></body></message>"
	for i := 0; i < len(whole); i += 7 {
		mustWrite(t, c, whole[i:min(i+7, len(whole))])
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, b := range f.requests() {
			if len(b.Payload) == 1 {
				want := "<message xmlns='jabber:client' id='split' to='a@b'><body>one 'two' \"three\" &lt;four&gt;<![CDATA[<not a tag>]]></body></message>"
				if string(b.Payload[0]) != want {
					t.Errorf("payload %s, want %s", b.Payload[0], want)
				}
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the element written in 7-byte pieces was never sent")
}
