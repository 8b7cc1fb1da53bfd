package boshd_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"finesse-relay/server/sim/boshd"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	domain     = "finesse.example"
	nsBind     = "http://jabber.org/protocol/httpbind"
	nsSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	serverHead = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='" + domain + "' id='stream-1'>"
	features   = "<stream:features><mechanisms xmlns='" + nsSASL + "'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
)

// fixture is a boshd.Server behind an httptest.Server.
type fixture struct {
	t      *testing.T
	srv    *boshd.Server
	hs     *httptest.Server
	client *http.Client
}

func newFixture(t *testing.T, cfg boshd.Config) *fixture {
	t.Helper()
	if cfg.Domain == "" {
		cfg.Domain = domain
	}
	srv := boshd.New(cfg)
	hs := httptest.NewServer(srv)
	tr := &http.Transport{}
	f := &fixture{t: t, srv: srv, hs: hs, client: &http.Client{Transport: tr}}
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		tr.CloseIdleConnections()
	})
	return f
}

// resp is a parsed response body.
type resp struct {
	status  int
	raw     string
	attrs   map[string]string
	payload string // inner XML
}

func (f *fixture) post(body string) resp {
	f.t.Helper()
	r, err := f.client.Post(f.hs.URL, "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		f.t.Fatalf("POST: %v", err)
	}
	defer r.Body.Close()
	data, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Fatalf("reading response: %v", err)
	}
	return parseResp(f.t, r.StatusCode, data)
}

// postAsync posts in the background.
func (f *fixture) postAsync(body string) <-chan resp {
	ch := make(chan resp, 1)
	go func() {
		r, err := f.client.Post(f.hs.URL, "text/xml; charset=utf-8", strings.NewReader(body))
		if err != nil {
			ch <- resp{status: -1, raw: err.Error()}
			return
		}
		defer r.Body.Close()
		data, _ := io.ReadAll(r.Body)
		ch <- parseResp(nil, r.StatusCode, data)
	}()
	return ch
}

func parseResp(t *testing.T, status int, data []byte) resp {
	var b struct {
		XMLName xml.Name
		Attrs   []xml.Attr `xml:",any,attr"`
		Inner   string     `xml:",innerxml"`
	}
	r := resp{status: status, raw: string(data), attrs: map[string]string{}}
	if err := xml.Unmarshal(data, &b); err != nil {
		if t != nil {
			t.Fatalf("response %q is not XML: %v", data, err)
		}
		return r
	}
	if b.XMLName.Space != nsBind || b.XMLName.Local != "body" {
		if t != nil {
			t.Fatalf("response root %v, want {%s}body", b.XMLName, nsBind)
		}
	}
	for _, a := range b.Attrs {
		r.attrs[a.Name.Local] = a.Value
	}
	r.payload = b.Inner
	return r
}

func wait(t *testing.T, ch <-chan resp, d time.Duration) resp {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("no response within %v", d)
		return resp{}
	}
}

// accept returns the next session's conn.
func (f *fixture) accept() net.Conn {
	f.t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := f.srv.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	select {
	case c := <-ch:
		if c == nil {
			f.t.Fatal("Accept failed")
		}
		f.t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		f.t.Fatal("no session accepted")
		return nil
	}
}

// readUntil reads from c until the data read contains want.
func readUntil(t *testing.T, c net.Conn, want string) string {
	t.Helper()
	var b bytes.Buffer
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for !strings.Contains(b.String(), want) {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			t.Fatalf("reading the XMPP side for %q: %v (got %q)", want, err, b.String())
		}
	}
	return b.String()
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("writing the XMPP side: %v", err)
	}
}

func creation(rid uint64, extra string) string {
	return fmt.Sprintf("<body content='text/xml; charset=utf-8' hold='1' rid='%d' to='%s' ver='1.6' wait='60' xml:lang='en' xmpp:version='1.0' xmlns='%s' xmlns:xmpp='urn:xmpp:xbosh'%s/>", rid, domain, nsBind, extra)
}

func req(rid uint64, sid, attrs, payload string) string {
	if payload == "" {
		return fmt.Sprintf("<body rid='%d' sid='%s'%s xmlns='%s'/>", rid, sid, attrs, nsBind)
	}
	return fmt.Sprintf("<body rid='%d' sid='%s'%s xmlns='%s'>%s</body>", rid, sid, attrs, nsBind, payload)
}

// session creates a session whose XMPP side answered with serverHead and
// features.
func (f *fixture) session(rid uint64) (sid string, c net.Conn) {
	f.t.Helper()
	ch := f.postAsync(creation(rid, ""))
	c = f.accept()
	readUntil(f.t, c, "<stream:stream")
	write(f.t, c, serverHead+features)
	r := wait(f.t, ch, 5*time.Second)
	if r.attrs["sid"] == "" {
		f.t.Fatalf("creation response without sid: %s", r.raw)
	}
	return r.attrs["sid"], c
}

func TestSessionCreation(t *testing.T) {
	f := newFixture(t, boshd.Config{Wait: 20 * time.Second, Hold: 1, Inactivity: 30 * time.Second})
	ch := f.postAsync(creation(100, ""))
	c := f.accept()
	head := readUntil(t, c, ">")
	for _, want := range []string{"<stream:stream", "xmlns='jabber:client'", "to='" + domain + "'", "version='1.0'", "xmlns:stream='http://etherx.jabber.org/streams'"} {
		if !strings.Contains(head, want) {
			t.Errorf("stream header %q lacks %s", head, want)
		}
	}
	select {
	case r := <-ch:
		t.Fatalf("creation answered before the XMPP server's header: %s", r.raw)
	case <-time.After(100 * time.Millisecond):
	}
	write(t, c, serverHead+features)
	r := wait(t, ch, 5*time.Second)
	want := map[string]string{"wait": "20", "hold": "1", "requests": "2", "inactivity": "30", "ver": "1.6",
		"from": domain, "authid": "stream-1", "version": "1.0", "restartlogic": "true"}
	for k, v := range want {
		if r.attrs[k] != v {
			t.Errorf("creation response %s=%q, want %q (%s)", k, r.attrs[k], v, r.raw)
		}
	}
	if len(r.attrs["sid"]) < 16 {
		t.Errorf("sid %q is too short to be unguessable", r.attrs["sid"])
	}
	if !strings.Contains(r.payload, "<stream:features") || !strings.Contains(r.payload, "<mechanism>PLAIN</mechanism>") {
		t.Errorf("creation response lacks the features: %s", r.raw)
	}
	// The features must be parseable on their own terms inside the body:
	// the stream prefix resolves to the streams namespace.
	var body struct {
		Features struct {
			Mechanisms []string `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms>mechanism"`
		} `xml:"http://etherx.jabber.org/streams features"`
	}
	if err := xml.Unmarshal([]byte(r.raw), &body); err != nil || len(body.Features.Mechanisms) != 1 {
		t.Errorf("features not in the streams namespace (err %v): %s", err, r.raw)
	}
	if f.srv.Sessions() != 1 {
		t.Errorf("Sessions() = %d, want 1", f.srv.Sessions())
	}
}

func TestCreationClampsHoldAndWait(t *testing.T) {
	f := newFixture(t, boshd.Config{Wait: 20 * time.Second, Hold: 2})
	ch := f.postAsync(strings.Replace(strings.Replace(creation(1, ""), "hold='1'", "hold='5'", 1), "wait='60'", "wait='7'", 1))
	c := f.accept()
	readUntil(t, c, ">")
	write(t, c, serverHead+features)
	r := wait(t, ch, 5*time.Second)
	if r.attrs["hold"] != "2" || r.attrs["wait"] != "7" || r.attrs["requests"] != "3" {
		t.Errorf("hold=%s wait=%s requests=%s, want 2, 7, 3", r.attrs["hold"], r.attrs["wait"], r.attrs["requests"])
	}
}

func TestAuthPassthroughAndRestart(t *testing.T) {
	f := newFixture(t, boshd.Config{})
	sid, c := f.session(10)

	auth := "<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>"
	ch := f.postAsync(req(11, sid, "", auth))
	got := readUntil(t, c, "</auth>")
	if !strings.Contains(got, auth) {
		t.Errorf("XMPP side got %q, want the auth element unchanged", got)
	}
	write(t, c, "<success xmlns='"+nsSASL+"'/>")
	r := wait(t, ch, 5*time.Second)
	if !strings.Contains(r.payload, "success") {
		t.Fatalf("auth response %s lacks <success/>", r.raw)
	}

	ch = f.postAsync(req(12, sid, " to='"+domain+"' xml:lang='en' xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh'", ""))
	head := readUntil(t, c, ">")
	if !strings.Contains(head, "<stream:stream") || !strings.Contains(head, "to='"+domain+"'") {
		t.Fatalf("restart did not send a new stream header: %q", head)
	}
	write(t, c, strings.Replace(serverHead, "stream-1", "stream-2", 1)+
		"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>")
	r = wait(t, ch, 5*time.Second)
	if !strings.Contains(r.payload, "urn:ietf:params:xml:ns:xmpp-bind") {
		t.Errorf("restart response %s lacks the new features", r.raw)
	}
	if strings.Contains(r.payload, "stream:stream") {
		t.Errorf("restart response %s leaks the server's stream header", r.raw)
	}
}

func TestLongPollReturnsOnStanza(t *testing.T) {
	f := newFixture(t, boshd.Config{Wait: 20 * time.Second})
	sid, c := f.session(20)
	start := time.Now()
	ch := f.postAsync(req(21, sid, "", ""))
	time.Sleep(100 * time.Millisecond)
	msg := "<message from='pubsub." + domain + "' to='1001@" + domain + "'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>"
	write(t, c, msg)
	r := wait(t, ch, 5*time.Second)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("long-poll returned after %v, want right after the stanza", el)
	}
	if !strings.Contains(r.payload, "<message xmlns='jabber:client'") {
		t.Errorf("payload %q: want the message qualified with jabber:client", r.payload)
	}
	var body struct {
		Msg struct {
			From string `xml:"from,attr"`
		} `xml:"jabber:client message"`
	}
	if err := xml.Unmarshal([]byte(r.raw), &body); err != nil || body.Msg.From != "pubsub."+domain {
		t.Errorf("message not in jabber:client (err %v): %s", err, r.raw)
	}
}

func TestWaitTimeoutReturnsEmptyBody(t *testing.T) {
	f := newFixture(t, boshd.Config{Wait: time.Second})
	sid, _ := f.session(30)
	start := time.Now()
	r := f.post(req(31, sid, "", ""))
	el := time.Since(start)
	if el < 900*time.Millisecond || el > 3*time.Second {
		t.Errorf("empty poll returned after %v, want about the 1 s wait", el)
	}
	if r.status != 200 || strings.TrimSpace(r.payload) != "" || r.attrs["type"] != "" {
		t.Errorf("got %d %s, want 200 and an empty body", r.status, r.raw)
	}
}

func TestHoldReleasesOldest(t *testing.T) {
	f := newFixture(t, boshd.Config{Wait: 20 * time.Second, Hold: 1})
	sid, _ := f.session(40)
	first := f.postAsync(req(41, sid, "", ""))
	time.Sleep(100 * time.Millisecond)
	second := f.postAsync(req(42, sid, "", ""))
	r := wait(t, first, 2*time.Second)
	if strings.TrimSpace(r.payload) != "" {
		t.Errorf("released request carried %q", r.payload)
	}
	select {
	case r := <-second:
		t.Errorf("second request answered although hold=1 allows it to wait: %s", r.raw)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestRIDReplayGetsCachedResponse(t *testing.T) {
	f := newFixture(t, boshd.Config{Wait: 20 * time.Second})
	sid, c := f.session(50)
	ch := f.postAsync(req(51, sid, "", "<iq type='get' id='q1' xmlns='jabber:client'/>"))
	readUntil(t, c, "id='q1'")
	write(t, c, "<iq type='result' id='q1'/>")
	r1 := wait(t, ch, 5*time.Second)
	if !strings.Contains(r1.payload, "q1") {
		t.Fatalf("first answer lacks the result: %s", r1.raw)
	}
	r2 := f.post(req(51, sid, "", "<iq type='get' id='q1' xmlns='jabber:client'/>"))
	if r2.raw != r1.raw {
		t.Errorf("replayed rid got %s, want the cached %s", r2.raw, r1.raw)
	}
	// The payload went to the XMPP server once only.
	ch = f.postAsync(req(52, sid, "", "<presence xmlns='jabber:client'/>"))
	got := readUntil(t, c, "<presence")
	if strings.Contains(got, "q1") {
		t.Errorf("the replayed payload reached the XMPP server again: %q", got)
	}
	write(t, c, "<message id='m'/>")
	wait(t, ch, 5*time.Second)
}

func TestOutOfOrderRIDsAreProcessedInOrder(t *testing.T) {
	f := newFixture(t, boshd.Config{Wait: 5 * time.Second, Hold: 1, Requests: 2})
	sid, c := f.session(60)
	second := f.postAsync(req(62, sid, "", "<message id='two' xmlns='jabber:client'/>"))
	time.Sleep(100 * time.Millisecond)
	first := f.postAsync(req(61, sid, "", "<message id='one' xmlns='jabber:client'/>"))
	got := readUntil(t, c, "id='two'")
	if i1, i2 := strings.Index(got, "id='one'"), strings.Index(got, "id='two'"); i1 < 0 || i1 > i2 {
		t.Errorf("XMPP side got %q, want message one before two", got)
	}
	write(t, c, "<message id='back'/>")
	r1, r2 := wait(t, first, 6*time.Second), wait(t, second, 6*time.Second)
	if !strings.Contains(r1.payload+r2.payload, "back") {
		t.Errorf("neither response carries the answer: %s / %s", r1.raw, r2.raw)
	}
}

func TestBadSIDAndWindow(t *testing.T) {
	f := newFixture(t, boshd.Config{Wait: 5 * time.Second})
	r := f.post(req(1, "no-such-sid", "", ""))
	if r.attrs["type"] != "terminate" || r.attrs["condition"] != "item-not-found" {
		t.Errorf("unknown sid: %s, want terminate item-not-found", r.raw)
	}
	sid, c := f.session(70)
	r = f.post(req(75, sid, "", ""))
	if r.attrs["type"] != "terminate" || r.attrs["condition"] != "item-not-found" {
		t.Errorf("rid beyond the window: %s, want terminate item-not-found", r.raw)
	}
	// The session is gone: the XMPP side sees its conn closed.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("XMPP side after the session ended: %v, want EOF", err)
	}
	if n := f.srv.Sessions(); n != 0 {
		t.Errorf("Sessions() = %d after item-not-found, want 0", n)
	}
}

func TestClientTerminate(t *testing.T) {
	f := newFixture(t, boshd.Config{Wait: 20 * time.Second})
	sid, c := f.session(80)
	held := f.postAsync(req(81, sid, "", ""))
	time.Sleep(50 * time.Millisecond)
	r := f.post(req(82, sid, " type='terminate'", "<presence type='unavailable' xmlns='jabber:client'/>"))
	if r.attrs["type"] != "terminate" || r.attrs["condition"] != "" {
		t.Errorf("terminate answered %s, want type='terminate' without condition", r.raw)
	}
	if h := wait(t, held, 2*time.Second); h.attrs["type"] != "terminate" {
		t.Errorf("held request answered %s, want terminate", h.raw)
	}
	got := readUntil(t, c, "</stream:stream>")
	if !strings.Contains(got, "type='unavailable'") {
		t.Errorf("XMPP side got %q, want the unavailable presence before the stream end", got)
	}
	c.Close()
	if n := f.srv.Sessions(); n != 0 {
		t.Errorf("Sessions() = %d after terminate, want 0", n)
	}
	r = f.post(req(83, sid, "", ""))
	if r.attrs["condition"] != "item-not-found" {
		t.Errorf("request after terminate: %s, want item-not-found", r.raw)
	}
}

func TestServerEndsStream(t *testing.T) {
	tests := []struct {
		name, write, cond, payload string
		close                      bool
	}{
		{"stream end", "</stream:stream>", "", "", false},
		{"stream error", "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>", "remote-stream-error", "conflict", false},
		{"conn closed", "", "remote-connection-failed", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, boshd.Config{Wait: 20 * time.Second})
			sid, c := f.session(90)
			ch := f.postAsync(req(91, sid, "", ""))
			time.Sleep(50 * time.Millisecond)
			if tt.write != "" {
				write(t, c, tt.write)
			}
			if tt.close {
				c.Close()
			}
			r := wait(t, ch, 5*time.Second)
			if r.attrs["type"] != "terminate" || r.attrs["condition"] != tt.cond {
				t.Errorf("got %s, want terminate condition %q", r.raw, tt.cond)
			}
			if !strings.Contains(r.payload, tt.payload) {
				t.Errorf("payload %q lacks %q", r.payload, tt.payload)
			}
		})
	}
}

func TestInactivityExpiry(t *testing.T) {
	f := newFixture(t, boshd.Config{Wait: time.Second, Inactivity: time.Second})
	sid, c := f.session(100)
	// No request in flight from now on.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err := io.ReadAll(c)
	if el := time.Since(start); el < 800*time.Millisecond || el > 4*time.Second {
		t.Errorf("session closed after %v, want about the 1 s inactivity", el)
	}
	if err != nil && !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("XMPP side: %v, want EOF", err)
	}
	if r := f.post(req(101, sid, "", "")); r.attrs["condition"] != "item-not-found" {
		t.Errorf("request to the expired session: %s, want item-not-found", r.raw)
	}
}

func TestRefusedRequests(t *testing.T) {
	f := newFixture(t, boshd.Config{MaxBodySize: 1024})
	tests := []struct {
		name, body string
		status     int
		cond       string
	}{
		{"oversized", req(1, "x", "", "<message xmlns='jabber:client'><body>"+strings.Repeat("a", 2000)+"</body></message>"), 413, "policy-violation"},
		{"not xml", "<body rid='1'", 400, "bad-request"},
		{"wrong root", "<foo xmlns='" + nsBind + "' rid='1'/>", 400, "bad-request"},
		{"no rid", "<body xmlns='" + nsBind + "' to='" + domain + "'/>", 400, "bad-request"},
		{"doctype", "<!DOCTYPE body [<!ENTITY a 'b'>]><body rid='1' xmlns='" + nsBind + "'/>", 400, "bad-request"},
		{"wrong host", strings.Replace(creation(1, ""), domain, "other.example", 1), 200, "host-unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.post(tt.body)
			if r.status != tt.status || r.attrs["type"] != "terminate" || r.attrs["condition"] != tt.cond {
				t.Errorf("got %d %s, want %d terminate %s", r.status, r.raw, tt.status, tt.cond)
			}
		})
	}
	r, err := f.client.Get(f.hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", r.StatusCode)
	}
}

func TestCloseAnswersHeldRequests(t *testing.T) {
	f := newFixture(t, boshd.Config{Wait: 20 * time.Second})
	sid, c := f.session(110)
	ch := f.postAsync(req(111, sid, "", ""))
	time.Sleep(50 * time.Millisecond)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.srv.Close() }()
	r := wait(t, ch, 5*time.Second)
	if r.attrs["type"] != "terminate" || r.attrs["condition"] != "system-shutdown" {
		t.Errorf("held request at Close: %s, want terminate system-shutdown", r.raw)
	}
	wg.Wait()
	if _, err := f.srv.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the XMPP side is still open after Close")
	}
}
