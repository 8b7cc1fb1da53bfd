package gadget

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wireMsg is any server → browser message.
type wireMsg struct {
	Type      string          `json:"type"`
	Seq       *int64          `json:"seq"`
	Node      string          `json:"node"`
	Event     string          `json:"event"`
	Source    string          `json:"source"`
	RequestID string          `json:"requestId"`
	Data      json.RawMessage `json:"data"`
	Agent     string          `json:"agent"`
	Roles     []string        `json:"roles"`
	Resumed   bool            `json:"resumed"`
	Heartbeat float64         `json:"heartbeat"`
	Stream    string          `json:"stream"`
	Upstream  string          `json:"upstream"`
	Side      string          `json:"side"`
	Host      string          `json:"host"`
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	ID        string          `json:"id"`
	OK        bool            `json:"ok"`
}

func (m wireMsg) seq(t testing.TB) int64 {
	t.Helper()
	if m.Seq == nil {
		t.Fatalf("%s message without seq", m.Type)
	}
	return *m.Seq
}

// harness is a Gateway with one Stream behind an httptest server.
type harness struct {
	t       testing.TB
	srv     *httptest.Server
	gw      *Gateway
	tickets *Tickets
	stream  *Stream
	reg     *prometheus.Registry
	metrics *Metrics
}

func newHarness(t testing.TB, gcfg GatewayConfig, scfg StreamConfig) *harness {
	t.Helper()
	return newHarnessTickets(t, nil, gcfg, scfg)
}

// testSession is the relay session the harness issues its tickets to.
const testSession = "session-1"

// newHarnessTickets is newHarness with the Tickets the harness issues from
// (nil: a default one), which is also the Gateway's unless gcfg names one.
func newHarnessTickets(t testing.TB, tickets *Tickets, gcfg GatewayConfig, scfg StreamConfig) *harness {
	t.Helper()
	h := &harness{t: t, reg: prometheus.NewRegistry()}
	h.metrics = NewMetrics(h.reg)
	if h.tickets = tickets; h.tickets == nil {
		h.tickets = NewTickets(TicketsConfig{})
	}
	if gcfg.Tickets == nil {
		gcfg.Tickets = h.tickets
	}
	gcfg.Metrics = h.metrics
	scfg.Metrics = h.metrics
	h.gw = NewGateway(gcfg)
	h.stream = NewStream(scfg)
	h.stream.SetIdentity("1001", []string{"Agent"})
	h.srv = httptest.NewServer(h.gw)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.gw.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		h.srv.Close()
	})
	return h
}

// wsURL returns the /ws URL with a fresh ticket (or the given one) and query.
func (h *harness) wsURL(ticket string, extra url.Values) string {
	if ticket == "" {
		ticket = h.ticket(testSession)
	}
	q := url.Values{"ticket": {ticket}}
	for k, v := range extra {
		q[k] = v
	}
	return "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/ws?" + q.Encode()
}

// ticket issues a ticket of h.stream for session; it fails the test on error.
func (h *harness) ticket(session string) string {
	h.t.Helper()
	tk, _, err := h.tickets.Issue(h.stream, session)
	if err != nil {
		h.t.Fatalf("Issue: %v", err)
	}
	return tk
}

type client struct {
	t  testing.TB
	ws *websocket.Conn
}

// dial opens a connection; it fails the test on error.
func (h *harness) dial(extra url.Values) *client {
	h.t.Helper()
	c, rsp, err := h.tryDial(h.wsURL("", extra), nil)
	if err != nil {
		h.t.Fatalf("dial: %v (%s)", err, rspText(rsp))
	}
	return c
}

func (h *harness) tryDial(u string, hdr http.Header) (*client, *http.Response, error) {
	ws, rsp, err := websocket.DefaultDialer.Dial(u, hdr)
	if err != nil {
		return nil, rsp, err
	}
	c := &client{t: h.t, ws: ws}
	h.t.Cleanup(func() { _ = ws.Close() })
	return c, rsp, nil
}

// httpError reads {"error":{"code","message"}} from a refused dial.
func httpError(t testing.TB, rsp *http.Response) (status int, code, msg string) {
	t.Helper()
	if rsp == nil {
		t.Fatal("no HTTP response")
	}
	defer rsp.Body.Close()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.NewDecoder(rsp.Body).Decode(&body); err != nil {
		t.Fatalf("error body: %v", err)
	}
	return rsp.StatusCode, body.Error.Code, body.Error.Message
}

func rspText(rsp *http.Response) string {
	if rsp == nil {
		return "no response"
	}
	return rsp.Status
}

// next reads one message (5 s at most).
func (c *client) next() wireMsg {
	c.t.Helper()
	m, err := c.read(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func (c *client) read(d time.Duration) (wireMsg, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(d))
	mt, b, err := c.ws.ReadMessage()
	if err != nil {
		return wireMsg{}, err
	}
	if mt != websocket.TextMessage {
		return wireMsg{}, errors.New("binary frame")
	}
	var m wireMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return wireMsg{}, err
	}
	return m, nil
}

// expect reads one message and checks its type.
func (c *client) expect(typ string) wireMsg {
	c.t.Helper()
	m := c.next()
	if m.Type != typ {
		c.t.Fatalf("got %s message %+v, want %s", m.Type, m, typ)
	}
	return m
}

// send writes one text frame.
func (c *client) send(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// expectClose reads until the connection closes and checks the close code;
// messages before it are returned.
func (c *client) expectClose(code int) []wireMsg {
	c.t.Helper()
	var got []wireMsg
	for {
		m, err := c.read(10 * time.Second)
		if err == nil {
			got = append(got, m)
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended with %v, want close %d", err, code)
		}
		if ce.Code != code {
			c.t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, code)
		}
		return got
	}
}

// metric returns the value of a counter or gauge in reg (0 if absent).
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// eventually polls cond for up to 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func since(n int64) url.Values { return url.Values{"since": {strconv.FormatInt(n, 10)}} }

// userData is a stand-in Finesse object.
type userData struct {
	LoginID string `json:"loginId"`
	State   string `json:"state"`
}
