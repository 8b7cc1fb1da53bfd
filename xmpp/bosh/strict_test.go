package bosh_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"finesse-relay/xmpp/bosh"
)

// strictCM is a connection manager as strict as ejabberd 23.01's mod_bosh:
// it processes a request only when its rid is the one after the last
// processed rid. A request whose rid is ahead (rid N+2 arriving before
// N+1) is parked and never processed, as ejabberd parks it until a
// response that does not come; the strict CM records the violation and
// answers the parked request with terminate/item-not-found once the
// session's wait has passed, so that a test fails in seconds instead of
// hanging. A rid at or below the last processed one is answered from the
// response cache (the retransmission case of XEP-0124 §14). A rid beyond
// the window of 'requests' ends the session.
//
// Its XMPP side is scripted: <auth/> is answered <success/>, a restart
// with features offering bind, a bind IQ with its result, a <message/> is
// echoed; output goes on the request being processed (as ejabberd's
// get_response_els), else the request is held (hold='1': a newer request
// releases it; wait ends it empty).
type strictCM struct {
	t        *testing.T
	hs       *httptest.Server
	wait     time.Duration
	requests int

	// cut, if set, is asked for every request that carries a sid; "before"
	// closes the connection without processing the request, "after"
	// processes it and closes the connection instead of answering.
	cut func(rid uint64, attempt int) string

	mu          sync.Mutex
	sessions    map[string]*strictSession
	nextSID     int
	violations  []string
	seen        map[uint64]int // attempts per rid
	inflight    int            // requests carrying a sid in the handler
	maxInflight int
	arrivals    []uint64 // rids in the order the handler got them
}

type strictSession struct {
	prev   uint64
	held   *heldReq
	cache  map[uint64][]byte
	ended  bool
	parked int
}

type heldReq struct {
	rid  uint64
	wake chan struct{} // closed to answer the held request (empty)
}

// newStrictCM starts a strict connection manager; wrap, if not nil, puts a
// handler in front of it.
func newStrictCM(t *testing.T, wrap func(*strictCM) http.Handler) *strictCM {
	t.Helper()
	s := &strictCM{t: t, wait: 2 * time.Second, requests: 2, sessions: map[string]*strictSession{}, seen: map[uint64]int{}}
	var h http.Handler = s
	if wrap != nil {
		h = wrap(s)
	}
	s.hs = httptest.NewServer(h)
	t.Cleanup(s.hs.Close)
	return s
}

func (s *strictCM) url() string { return s.hs.URL + "/http-bind" }

func (s *strictCM) violate(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// report returns the violations and the most requests in flight at once.
func (s *strictCM) report() (violations []string, maxInflight int, arrivals []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...), s.maxInflight, append([]uint64(nil), s.arrivals...)
}

func (s *strictCM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	b, err := bosh.ParseBody(raw)
	if err != nil {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if b.SID == "" {
		s.nextSID++
		sid := "strict-" + strconv.Itoa(s.nextSID)
		s.sessions[sid] = &strictSession{prev: b.RID, cache: map[uint64][]byte{}}
		s.mu.Unlock()
		reply(w, fmt.Sprintf(" sid='%s' wait='%d' hold='1' requests='%d' inactivity='30' polling='2' ver='1.11' from='%s' authid='a-%s'",
			sid, int(s.wait/time.Second), s.requests, testDomain, sid),
			"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>")
		return
	}
	sess := s.sessions[b.SID]
	s.arrivals = append(s.arrivals, b.RID)
	s.seen[b.RID]++
	attempt := s.seen[b.RID]
	s.inflight++
	s.maxInflight = max(s.maxInflight, s.inflight)
	if s.inflight > s.requests {
		s.violate("%d requests in flight, the session allows %d", s.inflight, s.requests)
	}
	defer func() { s.mu.Lock(); s.inflight--; s.mu.Unlock() }()
	cut := ""
	if s.cut != nil {
		cut = s.cut(b.RID, attempt)
	}
	switch {
	case sess == nil || sess.ended:
		s.mu.Unlock()
		reply(w, " type='terminate' condition='item-not-found'", "")
		return
	case cut == "before":
		s.mu.Unlock()
		hangUp(w)
		return
	case b.RID <= sess.prev:
		cached, ok := sess.cache[b.RID]
		if !ok && sess.held != nil && sess.held.rid == b.RID {
			// Retransmission of the held request: it takes the old one's place.
			old := sess.held
			sess.held = &heldReq{rid: b.RID, wake: make(chan struct{})}
			close(old.wake)
			s.holdLocked(w, r, sess, sess.held)
			return
		}
		s.mu.Unlock()
		if !ok {
			s.mu.Lock()
			s.violate("rid %d repeated but neither cached nor held", b.RID)
			s.mu.Unlock()
			reply(w, " type='terminate' condition='item-not-found'", "")
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(cached)
		return
	case b.RID > sess.prev+uint64(s.requests):
		s.violate("rid %d beyond the window (last processed %d, requests %d)", b.RID, sess.prev, s.requests)
		sess.ended = true
		s.mu.Unlock()
		reply(w, " type='terminate' condition='item-not-found'", "")
		return
	case b.RID > sess.prev+1:
		s.violate("rid %d arrived before rid %d (payload %d restart %v type %q)", b.RID, sess.prev+1, len(b.Payload), b.Restart, b.Type)
		sess.parked++
		s.mu.Unlock()
		select { // parked: never processed
		case <-time.After(s.wait):
		case <-r.Context().Done():
			return
		}
		s.mu.Lock()
		sess.ended = true
		s.mu.Unlock()
		reply(w, " type='terminate' condition='item-not-found'", "")
		return
	}
	// In order: process it.
	sess.prev = b.RID
	var out []string
	if old := sess.held; old != nil {
		// hold='1': the newer request releases the held one.
		sess.held = nil
		close(old.wake)
	}
	if b.Restart {
		out = append(out, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>")
	}
	for _, el := range b.Payload {
		e := string(el)
		switch {
		case strings.HasPrefix(e, "<auth"):
			out = append(out, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
		case strings.HasPrefix(e, "<iq") && strings.Contains(e, "xmpp-bind"):
			out = append(out, "<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>1001@"+testDomain+"/r</jid></bind></iq>")
		case strings.HasPrefix(e, "<message"):
			out = append(out, e)
		}
	}
	if b.Type == "terminate" {
		sess.ended = true
		body := render(" type='terminate'", strings.Join(out, ""))
		sess.cache[b.RID] = body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(body)
		return
	}
	if len(out) > 0 {
		body := render("", strings.Join(out, ""))
		sess.cache[b.RID] = body
		s.mu.Unlock()
		if cut == "after" {
			hangUp(w)
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(body)
		return
	}
	h := &heldReq{rid: b.RID, wake: make(chan struct{})}
	sess.held = h
	if cut == "after" {
		// Processed and held, then the connection breaks: the
		// retransmission finds it held.
		s.mu.Unlock()
		hangUp(w)
		return
	}
	s.holdLocked(w, r, sess, h)
}

// holdLocked holds h until a newer request releases it or wait passes,
// then answers it empty and caches the answer. s.mu is held on entry and
// released.
func (s *strictCM) holdLocked(w http.ResponseWriter, r *http.Request, sess *strictSession, h *heldReq) {
	s.mu.Unlock()
	select {
	case <-h.wake:
	case <-time.After(s.wait):
	case <-r.Context().Done():
		return
	}
	s.mu.Lock()
	if sess.held == h {
		sess.held = nil
	}
	body := render("", "")
	sess.cache[h.rid] = body
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(body)
}

func render(attrs, payload string) []byte {
	var b bytes.Buffer
	if payload == "" {
		fmt.Fprintf(&b, "<body%s xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams'/>", attrs, nsBind)
	} else {
		fmt.Fprintf(&b, "<body%s xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams'>%s</body>", attrs, nsBind, payload)
	}
	return b.Bytes()
}

func hangUp(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// jitterClient is an HTTP client whose connections sleep a random 0–8 ms
// before each write, so that two requests started together on two
// connections reach the server in either order, as they did against
// ejabberd over loopback.
func jitterClient(t *testing.T) *http.Client {
	t.Helper()
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &jitterConn{Conn: c}, nil
		},
		MaxIdleConnsPerHost: 4,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

type jitterConn struct{ net.Conn }

func (c *jitterConn) Write(p []byte) (int, error) {
	time.Sleep(time.Duration(rand.IntN(8000)) * time.Microsecond)
	return c.Conn.Write(p)
}

// strictLogin runs what mellium does at login over c: header, auth,
// restart, bind, initial presence, a message round trip, then the
// unavailable presence and </stream:stream> written back to back while a
// long-poll is held (the terminate beside the presence) after idle, and
// Close.
func strictLogin(t *testing.T, c *bosh.Conn, idle time.Duration) error {
	t.Helper()
	steps := []struct{ write, want string }{
		{clientHead, "</stream:features>"},
		{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>", "<success"},
		{clientHead, "</stream:features>"},
		{"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>", "</iq>"},
		{"<presence/><message id='m1'><body>hi</body></message>", "id='m1'"},
	}
	buf := make([]byte, 4096)
	for _, st := range steps {
		if _, err := c.Write([]byte(st.write)); err != nil {
			return fmt.Errorf("write %.30q: %w", st.write, err)
		}
		var got bytes.Buffer
		_ = c.SetReadDeadline(time.Now().Add(4 * time.Second))
		for !strings.Contains(got.String(), st.want) {
			n, err := c.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				return fmt.Errorf("after %.30q, waiting for %q: %w", st.write, st.want, err)
			}
		}
	}
	// Idle long enough for a long-poll to be held, then leave.
	time.Sleep(idle)
	if _, err := c.Write([]byte("<presence type='unavailable'/>")); err != nil {
		return err
	}
	if _, err := c.Write([]byte("</stream:stream>")); err != nil {
		return err
	}
	return c.Close()
}

func TestStrictServerNeverSeesRIDsOutOfOrder(t *testing.T) {
	const logins = 15
	s := newStrictCM(t, nil)
	client := jitterClient(t)
	for i := range logins {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		nc, err := bosh.Dial(ctx, bosh.Config{URL: s.url(), Domain: testDomain, HTTPClient: client, CloseTimeout: time.Second})
		cancel()
		if err != nil {
			t.Fatalf("login %d: Dial: %v", i, err)
		}
		c := nc.(*bosh.Conn)
		start := time.Now()
		err = strictLogin(t, c, 50*time.Millisecond)
		c.Close()
		if err != nil {
			t.Errorf("login %d: %v", i, err)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("login %d took %v", i, el)
		}
	}
	violations, maxInflight, _ := s.report()
	for _, v := range violations {
		t.Errorf("strict server: %s", v)
	}
	if maxInflight > 2 {
		t.Errorf("at most %d requests in flight, the server allows 2", maxInflight)
	}
}

func TestStrictServerTerminateAfterUnavailableIsLast(t *testing.T) {
	s := newStrictCM(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := bosh.Dial(ctx, bosh.Config{URL: s.url(), Domain: testDomain, HTTPClient: jitterClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := strictLogin(t, nc.(*bosh.Conn), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	violations, _, arrivals := s.report()
	for _, v := range violations {
		t.Errorf("strict server: %s", v)
	}
	for i := 1; i < len(arrivals); i++ {
		if arrivals[i] < arrivals[i-1] {
			t.Errorf("rid %d arrived after rid %d (arrivals %v)", arrivals[i], arrivals[i-1], arrivals)
		}
	}
}

// TestStrictServerRetransmitOnCutConnection cuts the connection of one
// request, before or after the server processed it: the client sends the
// same rid again, and the strict server either processes it then or
// replays its cached answer; the login completes with no rid out of order.
func TestStrictServerRetransmitOnCutConnection(t *testing.T) {
	for _, when := range []string{"before", "after"} {
		for _, which := range []string{"auth", "restart", "held poll"} {
			t.Run(when+"/"+which, func(t *testing.T) {
				var target uint64
				var mu sync.Mutex
				// The handler in front finds the rid of the chosen request
				// by watching what is sent.
				s := newStrictCM(t, func(s *strictCM) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						raw, _ := io.ReadAll(r.Body)
						if b, err := bosh.ParseBody(raw); err == nil && b.SID != "" {
							mu.Lock()
							if target == 0 {
								switch {
								case which == "auth" && len(b.Payload) > 0 && bytes.HasPrefix(b.Payload[0], []byte("<auth")),
									which == "restart" && b.Restart,
									which == "held poll" && len(b.Payload) == 0 && !b.Restart && b.Type == "":
									target = b.RID
								}
							}
							mu.Unlock()
						}
						r.Body = io.NopCloser(bytes.NewReader(raw))
						s.ServeHTTP(w, r)
					})
				})
				s.cut = func(rid uint64, attempt int) string {
					mu.Lock()
					defer mu.Unlock()
					if rid == target && attempt == 1 {
						return when
					}
					return ""
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				nc, err := bosh.Dial(ctx, bosh.Config{URL: s.url(), Domain: testDomain, HTTPClient: jitterClient(t)})
				if err != nil {
					t.Fatal(err)
				}
				// Idle long enough for the retransmission (250 ms backoff).
				if err := strictLogin(t, nc.(*bosh.Conn), 600*time.Millisecond); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				tgt := target
				mu.Unlock()
				s.mu.Lock()
				attempts := s.seen[tgt]
				s.mu.Unlock()
				if tgt == 0 || attempts < 2 {
					t.Errorf("%s request (rid %d) sent %d times, want a retransmission with the same rid", which, tgt, attempts)
				}
				violations, _, _ := s.report()
				for _, v := range violations {
					t.Errorf("strict server: %s", v)
				}
			})
		}
	}
}
