package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"finesse-relay/server/sim"
	"finesse-relay/xmpp"
	"finesse-relay/xmpp/finesse"
)

// Password is the simulator's password of every user.
const Password = "demo"

// DirectResource is the XMPP resource of the direct (baseline) client, next
// to the relay's own session of the same agent.
const DirectResource = "bench-direct"

// Wait bounds one sign-in, one tab handshake and one event.
const Wait = 30 * time.Second

// AgentIDs are the simulator's first n agents (1001 upward, without the
// supervisor 2001), as the simulator numbers them.
func AgentIDs(n int) []string {
	ids := make([]string, 0, n)
	for id := sim.FirstAgentID; len(ids) < n; id++ {
		if s := strconv.Itoa(id); s != sim.SupervisorID {
			ids = append(ids, s)
		}
	}
	return ids
}

// StateBody is the PUT body of the i-th state change (READY, NOT_READY in
// turn).
func StateBody(i int) string {
	if i%2 == 0 {
		return "<User><state>READY</state></User>"
	}
	return "<User><state>NOT_READY</state></User>"
}

// LoginBody signs an agent in to Finesse (state LOGIN with an extension).
func LoginBody(agent string) string {
	return "<User><state>LOGIN</state><extension>5" + agent + "</extension></User>"
}

// Upstream is the simulated Finesse as a client sees it: REST with the
// agents' own credentials, direct XMPP sessions and the control API.
type Upstream struct {
	Endpoints sim.Endpoints
	Transport string // XMPP transport of direct clients
	TLS       *tls.Config
	HTTP      *http.Client
}

// NewUpstream trusts caPEM and keeps up to 1024 idle connections.
func NewUpstream(ep sim.Endpoints, caPEM []byte, transport string) (*Upstream, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("bench: the simulator's CA certificate did not parse")
	}
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &Upstream{
		Endpoints: ep, Transport: transport, TLS: tc,
		HTTP: &http.Client{Timeout: Wait, Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 1024, MaxIdleConns: 1024}},
	}, nil
}

// SetState PUTs body on side's User/agent with the agent's own Basic
// credentials and returns the requestId of the 202.
func (u *Upstream) SetState(ctx context.Context, side int, agent, body string) (string, error) {
	s := u.Endpoints.Sides[side]
	url := "https://" + net.JoinHostPort(s.Host, strconv.Itoa(s.HTTPSPort)) + finesse.APIPrefix + "User/" + agent
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(agent, Password)
	req.Header.Set("Content-Type", "application/xml")
	rsp, err := u.HTTP.Do(req)
	if err != nil {
		return "", err
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(rsp.Body, 4<<10))
	if rsp.StatusCode != http.StatusAccepted || rsp.Header.Get("requestId") == "" {
		return "", fmt.Errorf("PUT User/%s on side %s: %d %s", agent, s.Name, rsp.StatusCode, bytes.TrimSpace(b))
	}
	return rsp.Header.Get("requestId"), nil
}

// Control POSTs a JSON body to the simulator's control API (path such as
// "/sim/sides/A").
func (u *Upstream) Control(ctx context.Context, path, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.Endpoints.ControlURL+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	rsp, err := u.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("simulator control %s: %w", path, err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(rsp.Body, 4<<10))
	if rsp.StatusCode/100 != 2 {
		return fmt.Errorf("simulator control %s: %d %s", path, rsp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// Direct is an xmpp.Client signed in as an agent on side A with its own
// resource: the baseline the relay is compared with.
type Direct struct {
	c    *xmpp.Client
	done chan struct{}
}

// DialDirect signs agent in on side A and calls onUpdate for every
// notification until Close.
func (u *Upstream) DialDirect(ctx context.Context, agent string, onUpdate func(finesse.Update)) (*Direct, error) {
	side := u.Endpoints.Sides[0]
	var addr string
	switch u.Transport {
	case "tcp":
		addr = net.JoinHostPort(side.Host, strconv.Itoa(side.XMPPPort))
	case "tls":
		addr = net.JoinHostPort(side.Host, strconv.Itoa(side.XMPPTLSPort))
	case "bosh":
		addr = side.BOSHURL
	default:
		addr = side.WebSocketURL
	}
	tc := u.TLS.Clone()
	tc.ServerName = side.Host
	c, err := xmpp.Dial(ctx, xmpp.Config{
		Transport: xmpp.Transport(u.Transport), Address: addr,
		Domain: side.XMPPDomain, PubSubDomain: side.PubSubDomain, TLSConfig: tc,
		Username: agent, Password: Password, Resource: DirectResource,
		OnUpdate: onUpdate,
	})
	if err != nil {
		return nil, fmt.Errorf("direct XMPP client for %s: %w", agent, err)
	}
	d := &Direct{c: c, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		_ = c.Run(context.WithoutCancel(ctx)) // outlives the dial's ctx: ended by Close
	}()
	return d, nil
}

// Close ends the session and waits for Run to return.
func (d *Direct) Close() {
	_ = d.c.Close()
	<-d.done
}

// Relay is a client of the relay's browser API.
type Relay struct {
	Base string // http://host:port
	HTTP *http.Client
}

// NewRelay returns a client of the relay at base.
func NewRelay(base string) *Relay {
	return &Relay{Base: strings.TrimSuffix(base, "/"), HTTP: &http.Client{Timeout: Wait, Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxIdleConns: 1024}}}
}

// SignIn is the answer to POST /api/v1/sessions.
type SignIn struct {
	Session string `json:"session"`
	Ticket  string `json:"ticket"`
}

// SignIn signs agent in through the relay (non-SSO, as the tab's form).
func (r *Relay) SignIn(ctx context.Context, agent string) (SignIn, error) {
	body := fmt.Sprintf(`{"loginId":%q,"password":%q}`, agent, Password)
	var out SignIn
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Base+"/api/v1/sessions", strings.NewReader(body))
		if err != nil {
			return out, err
		}
		req.Header.Set("Content-Type", "application/json")
		rsp, err := r.HTTP.Do(req)
		if err != nil {
			return out, fmt.Errorf("sign-in %s: %w", agent, err)
		}
		b, _ := io.ReadAll(io.LimitReader(rsp.Body, 16<<10))
		_ = rsp.Body.Close()
		// 503 only while the relay's Manager is starting.
		if rsp.StatusCode == http.StatusServiceUnavailable && attempt < 50 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if rsp.StatusCode != http.StatusCreated || json.Unmarshal(b, &out) != nil || out.Ticket == "" {
			return out, fmt.Errorf("sign-in %s: %d %s", agent, rsp.StatusCode, bytes.TrimSpace(b))
		}
		return out, nil
	}
}

// Ticket asks the relay for another WebSocket ticket of a session.
func (r *Relay) Ticket(ctx context.Context, session string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Base+"/api/v1/tickets", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+session)
	rsp, err := r.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("ticket: %w", err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(rsp.Body, 16<<10))
	var out SignIn
	if rsp.StatusCode != http.StatusCreated || json.Unmarshal(b, &out) != nil || out.Ticket == "" {
		return "", fmt.Errorf("ticket: %d %s", rsp.StatusCode, bytes.TrimSpace(b))
	}
	return out.Ticket, nil
}

// Msg is the part of a relay message the bench looks at. Data is kept raw:
// the direct client does not decode the object either.
type Msg struct {
	Type      string          `json:"type"`
	Seq       int64           `json:"seq"`
	Node      string          `json:"node"`
	Event     string          `json:"event"`
	RequestID string          `json:"requestId"`
	Upstream  string          `json:"upstream"`
	Side      string          `json:"side"`
	Resumed   bool            `json:"resumed"`
	Stream    string          `json:"stream"`
	Data      json.RawMessage `json:"data"`
}

// OnMsg receives a tab's message, its size and its arrival time (read and
// decoded, as a browser would).
type OnMsg func(m *Msg, size int, at time.Time)

// Tab is one browser tab: a gorilla WebSocket client of the relay whose
// reader goroutine decodes every message.
type Tab struct {
	ws        *websocket.Conn
	done      chan struct{}
	closeCode atomic.Int32 // set when the relay closed the connection

	mu       sync.Mutex
	lastSeq  int64  // highest seq seen
	stream   string // welcome.stream
	gaps     int    // seqs skipped on the stream (lost messages)
	resumed  int    // welcomes with resumed:true after the first
	snapshot int    // welcomes with resumed:false after the first
}

// OpenTab connects with ticket (since < -1: no resume), waits for the
// welcome and for the status "up" (on side when side is not empty), then
// reads in the background until Close.
func (r *Relay) OpenTab(ctx context.Context, ticket string, onMsg OnMsg) (*Tab, error) {
	return r.openTab(ctx, ticket, nil, onMsg)
}

// Resume opens a new connection for the tab old (closed) with since and
// stream set from what old saw; the new Tab carries old's counters on. It
// returns after the welcome (the upstream may be down meanwhile).
func (r *Relay) Resume(ctx context.Context, ticket string, old *Tab, onMsg OnMsg) (*Tab, error) {
	return r.openTab(ctx, ticket, old, onMsg)
}

func (r *Relay) openTab(ctx context.Context, ticket string, old *Tab, onMsg OnMsg) (*Tab, error) {
	url := strings.Replace(r.Base, "http", "ws", 1) + "/ws?ticket=" + ticket
	t := &Tab{done: make(chan struct{}), lastSeq: -2}
	if old != nil {
		old.mu.Lock()
		t.lastSeq, t.stream, t.gaps, t.resumed, t.snapshot = old.lastSeq, old.stream, old.gaps, old.resumed, old.snapshot
		old.mu.Unlock()
		url += "&since=" + strconv.FormatInt(t.lastSeq, 10) + "&stream=" + t.stream
	}
	d := websocket.Dialer{HandshakeTimeout: Wait}
	ws, rsp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		if rsp != nil {
			return nil, fmt.Errorf("tab: %w (HTTP %d)", err, rsp.StatusCode)
		}
		return nil, fmt.Errorf("tab: %w", err)
	}
	t.ws = ws
	_ = ws.SetReadDeadline(time.Now().Add(Wait))
	for up := false; !up; {
		_, b, err := ws.ReadMessage()
		if err != nil {
			_ = ws.Close()
			return nil, fmt.Errorf("tab: waiting for the welcome and status up: %w", err)
		}
		var m Msg
		if err := json.Unmarshal(b, &m); err != nil {
			_ = ws.Close()
			return nil, fmt.Errorf("tab: not JSON: %.64q", b)
		}
		t.account(&m, old != nil)
		up = (m.Type == "status" && m.Upstream == "up") || (old != nil && m.Type == "welcome")
		if onMsg != nil {
			onMsg(&m, len(b), time.Now())
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	go t.read(onMsg)
	return t, nil
}

// account tracks seqs: a gap is a message lost on the stream.
func (t *Tab) account(m *Msg, resuming bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch m.Type {
	case "welcome":
		if resuming {
			if m.Resumed {
				t.resumed++
			} else {
				t.snapshot++
			}
		}
		if !m.Resumed {
			t.lastSeq = m.Seq // a fresh snapshot follows
		}
		t.stream = m.Stream
	case "event", "status", "state":
		if t.lastSeq >= -1 && m.Seq > t.lastSeq+1 {
			t.gaps += int(m.Seq - t.lastSeq - 1)
		}
		t.lastSeq = max(t.lastSeq, m.Seq)
	}
}

func (t *Tab) read(onMsg OnMsg) {
	defer close(t.done)
	for {
		_, b, err := t.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				t.closeCode.Store(int32(ce.Code)) // #nosec G115 -- a close code is 16 bits on the wire (gorilla decodes it as a uint16)
			}
			return
		}
		var m Msg
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		at := time.Now()
		t.account(&m, false)
		if onMsg != nil {
			onMsg(&m, len(b), at)
		}
	}
}

// Counters reports the seqs lost on the stream and the resumes answered
// with a replay and with a snapshot.
func (t *Tab) Counters() (gaps, resumed, snapshot int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gaps, t.resumed, t.snapshot
}

// ClosedByRelay reports whether the relay ended the connection.
func (t *Tab) ClosedByRelay() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// CloseCode is the WebSocket close code the relay sent (0: none yet).
func (t *Tab) CloseCode() int { return int(t.closeCode.Load()) }

// Drop closes the TCP connection without a close frame, as a browser
// that loses its network does, and waits for the reader.
func (t *Tab) Drop() {
	_ = t.ws.NetConn().Close()
	<-t.done
}

// Close closes the connection and waits for the reader.
func (t *Tab) Close() {
	_ = t.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = t.ws.Close()
	<-t.done
}
