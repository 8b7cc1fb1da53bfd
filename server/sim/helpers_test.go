package sim

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"finesse-relay/xmpp/finesse"
)

// fakeSide records what the model publishes on one side.
type fakeSide struct {
	mu    sync.Mutex
	pubs  []finesse.Update
	drops int
	wake  chan struct{}
}

func newFakeSide() *fakeSide { return &fakeSide{wake: make(chan struct{}, 1)} }

func (f *fakeSide) Publish(node string, doc []byte) {
	u, err := finesse.ParseUpdate(node, doc)
	if err != nil {
		panic("sim published a malformed Update: " + err.Error() + "\n" + string(doc))
	}
	f.mu.Lock()
	f.pubs = append(f.pubs, u)
	f.mu.Unlock()
	f.signal()
}

func (f *fakeSide) DropAll() {
	f.mu.Lock()
	f.drops++
	f.mu.Unlock()
	f.signal()
}

func (f *fakeSide) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fakeSide) all() []finesse.Update {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]finesse.Update(nil), f.pubs...)
}

func (f *fakeSide) dropCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.drops
}

// waitFor returns the first publication (from index from on) that
// matches, failing the test after timeout.
func (f *fakeSide) waitFor(t *testing.T, timeout time.Duration, what string, match func(finesse.Update) bool) finesse.Update {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for _, u := range f.all() {
			if match(u) {
				return u
			}
		}
		select {
		case <-f.wake:
		case <-deadline:
			t.Fatalf("no publication %s within %v; got:\n%s", what, timeout, dump(f.all()))
			return finesse.Update{}
		}
	}
}

// none asserts that nothing matching appears within d.
func (f *fakeSide) none(t *testing.T, d time.Duration, what string, match func(finesse.Update) bool) {
	t.Helper()
	time.Sleep(d)
	for _, u := range f.all() {
		if match(u) {
			t.Fatalf("unexpected publication %s: %s %s %s", what, u.Node, u.Event, u.Data)
		}
	}
}

// flush waits until everything the model published so far has reached
// both fake sides, then forgets it.
func (e *testEnv) flush() {
	e.t.Helper()
	marker := "marker-" + newID()
	e.m.out.push(outItem{sides: bothSides, node: marker, doc: finesse.EncodeUpdate(finesse.Update{Event: finesse.EventPut})})
	for _, f := range e.sides {
		f.waitFor(e.t, wait, "the flush marker", func(u finesse.Update) bool { return u.Node == marker })
		f.reset()
	}
}

func (f *fakeSide) reset() {
	f.mu.Lock()
	f.pubs = nil
	f.mu.Unlock()
}

func dump(us []finesse.Update) string {
	var b strings.Builder
	for _, u := range us {
		b.WriteString("  " + u.Node + " " + string(u.Event) + " src=" + u.Source + " req=" + u.RequestID + " " + string(u.Data) + "\n")
	}
	return b.String()
}

// testEnv is a model with fake notifiers and its REST API on side A (and
// B) over plain HTTP.
type testEnv struct {
	t     *testing.T
	m     *model
	sides [2]*fakeSide
	rest  [2]*httptest.Server
}

func newEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	cfg.Fast = true
	if cfg.Agents == 0 {
		cfg.Agents = 5
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	tm := cfg.timings()
	tm.cti = time.Millisecond
	m := newModel(cfg, tm)
	m.verify = func(tok string) (string, error) {
		if id, ok := strings.CutPrefix(tok, "valid-token-"); ok {
			return id, nil
		}
		return "", errBadCredentials
	}
	for i := range m.side {
		name := []string{"a", "b"}[i]
		m.side[i] = sideInfo{host: "127.0.0.1", httpsPort: 8445 + i, xmppPort: 5222, xmppTLSPort: 5223,
			xmppDomain: "finesse-" + name + ".demo.local", pubsubDomain: "pubsub.finesse-" + name + ".demo.local"}
	}
	e := &testEnv{t: t, m: m, sides: [2]*fakeSide{newFakeSide(), newFakeSide()}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.out.run(ctx, [2]notifier{e.sides[0], e.sides[1]}) }()
	for i := range e.rest {
		e.rest[i] = httptest.NewServer(&restHandler{m: m, side: i})
	}
	t.Cleanup(func() {
		for _, s := range e.rest {
			s.Close()
		}
		http.DefaultClient.CloseIdleConnections()
		m.tmr.closeAll()
		cancel()
		<-done
	})
	return e
}

// do runs f with the model lock held.
func (e *testEnv) do(f func(m *model)) {
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	f(e.m)
}

func (e *testEnv) state(id string) string {
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	return e.m.users[id].state
}

// waitState polls until id is in state.
func (e *testEnv) waitState(id, state string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if e.state(id) == state {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("user %s in state %s, want %s after %v", id, e.state(id), state, timeout)
}

// login signs id in (NOT_READY) directly in the model, with an XMPP
// presence on side A so the presence rule leaves it alone.
func (e *testEnv) login(id string) {
	e.do(func(m *model) {
		u := m.users[id]
		m.presence(sideA, id, true)
		m.applyUserChange(u, userChange{State: stateLogin, Extension: u.ext}, false, "")
	})
}

func (e *testEnv) ready(id string) {
	e.login(id)
	e.do(func(m *model) { m.applyUserChange(m.users[id], userChange{State: stateReady}, false, "") })
}

// request is one REST call; auth is "id:password", "Bearer tok" or "".
func (e *testEnv) request(side int, method, path, auth, body string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.rest[side].URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	switch {
	case strings.HasPrefix(auth, "Bearer "):
		req.Header.Set("Authorization", auth)
	case auth != "":
		id, pw, _ := strings.Cut(auth, ":")
		req.SetBasicAuth(id, pw)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/xml")
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	return rsp, string(b)
}

// must asserts the status of a REST call and returns the body.
func (e *testEnv) must(status int, method, path, auth, body string, hdr ...string) (string, http.Header) {
	e.t.Helper()
	rsp, b := e.request(sideA, method, path, auth, body, hdr...)
	if rsp.StatusCode != status {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, rsp.StatusCode, status, b)
	}
	return b, rsp.Header
}

// Matchers for publications.
func onNode(node string, ev finesse.Event) func(finesse.Update) bool {
	return func(u finesse.Update) bool { return u.Node == node && u.Event == ev }
}

func userState(id, state string) func(finesse.Update) bool {
	return func(u finesse.Update) bool {
		if u.Node != finesse.UserNode(id) || u.Event != finesse.EventPut {
			return false
		}
		x, err := finesse.ParseUser(u.Data)
		return err == nil && x.State == state
	}
}

func withReq(reqID string, f func(finesse.Update) bool) func(finesse.Update) bool {
	return func(u finesse.Update) bool { return u.RequestID == reqID && f(u) }
}

// dialogPut matches a Dialog PUT on id's Dialogs node where id's own
// participant is in partState.
func dialogPut(id, ext, partState string) func(finesse.Update) bool {
	return func(u finesse.Update) bool {
		if u.Node != finesse.DialogsNode(id) || u.Event != finesse.EventPut {
			return false
		}
		d, err := finesse.ParseDialog(u.Data)
		if err != nil {
			return false
		}
		p := participantOf(d, ext)
		return p != nil && p.State == partState
	}
}

func participantOf(d *finesse.Dialog, addr string) *finesse.Participant {
	for i := range d.Participants {
		if d.Participants[i].MediaAddress == addr {
			return &d.Participants[i]
		}
	}
	return nil
}

const wait = 3 * time.Second

// xmlBody formats a User state request.
func stateBody(state string, extra ...string) string {
	b := "<User><state>" + state + "</state>"
	for i := 0; i+1 < len(extra); i += 2 {
		b += "<" + extra[i] + ">" + extra[i+1] + "</" + extra[i] + ">"
	}
	return b + "</User>"
}

func actionBody(action, target string, extra ...string) string {
	b := "<Dialog><requestedAction>" + action + "</requestedAction>"
	if target != "" {
		b += "<targetMediaAddress>" + target + "</targetMediaAddress>"
	}
	for _, x := range extra {
		b += x
	}
	return b + "</Dialog>"
}
