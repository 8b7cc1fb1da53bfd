package xmpp

// Integration tests against the real test peers: Prosody + Dovecot + fake
// IdS (scripts/peer/start.sh, env file in FINESSE_PEER_ENV) and ejabberd +
// extauth + fake IdS, configured like a strict Notification Service
// (scripts/peer/ejabberd-start.sh, env file in FINESSE_EJABBERD_ENV). The
// tests named PeerServers run against both; the others against Prosody.
// They skip without the env file, except in CI (CI set), where every peer
// is required.
//
//	scripts/peer/start.sh; scripts/peer/ejabberd-start.sh
//	FINESSE_PEER_ENV=/tmp/finesse-relay-peer/env FINESSE_EJABBERD_ENV=/tmp/finesse-relay-ejabberd/env \
//	  go test -race -run Peer -bench Peer ./xmpp/

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	mxmpp "mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"finesse-relay/xmpp/finesse"
)

// peer is the parsed env file of a running test peer.
type peer struct {
	name  string // "prosody" or "ejabberd"
	env   map[string]string
	users map[string]string // loginId -> static password
	roots *x509.CertPool
}

// peerServers are the XMPP servers the tests can run against: name, the
// variable naming its env file, and the script that starts it.
var peerServers = []struct{ name, envVar, script string }{
	{"prosody", "FINESSE_PEER_ENV", "scripts/peer/start.sh"},
	{"ejabberd", "FINESSE_EJABBERD_ENV", "scripts/peer/ejabberd-start.sh"},
}

// loadPeer loads the Prosody peer.
func loadPeer(tb testing.TB) *peer { return loadServer(tb, "prosody") }

// forEachServer runs fn as a subtest per XMPP server (prosody, ejabberd).
func forEachServer(t *testing.T, fn func(t *testing.T, p *peer)) {
	for _, s := range peerServers {
		t.Run(s.name, func(t *testing.T) { fn(t, loadServer(t, s.name)) })
	}
}

func loadServer(tb testing.TB, name string) *peer {
	tb.Helper()
	var envVar, script string
	for _, s := range peerServers {
		if s.name == name {
			envVar, script = s.envVar, s.script
		}
	}
	path := os.Getenv(envVar)
	if path == "" {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s peer required in CI: start %s and set %s to its env file", name, script, envVar)
		}
		tb.Skipf("%s not set: start %s and set %s to its env file to run against %s", envVar, script, envVar, name)
	}
	f, err := os.Open(path)
	if err != nil {
		tb.Fatalf("peer env: %v", err)
	}
	defer f.Close()
	p := &peer{name: name, env: map[string]string{}, users: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		p.env[k] = strings.Trim(v, `"'`)
	}
	for _, k := range []string{"FINESSE_DOMAIN", "XMPP_ADDR", "XMPP_TLS_ADDR", "WS_URL", "WSS_URL", "FINESSE_CA_CERT", "FINESSE_ADMIN_PASS"} {
		if p.env[k] == "" {
			tb.Fatalf("peer env %s: %s missing", path, k)
		}
	}
	for _, u := range strings.Fields(p.env["PEER_USERS"]) {
		id, pass, _ := strings.Cut(u, ":")
		p.users[id] = pass
	}
	pem, err := os.ReadFile(p.env["FINESSE_CA_CERT"])
	if err != nil {
		tb.Fatalf("peer CA: %v", err)
	}
	p.roots = x509.NewCertPool()
	if !p.roots.AppendCertsFromPEM(pem) {
		tb.Fatal("peer CA: no certificate")
	}
	return p
}

// config returns a Config for loginId over transport ("tcp", "tls", "ws",
// "wss", "bosh").
func (p *peer) config(tb testing.TB, transport, user, pass, resource string) Config {
	tb.Helper()
	cfg := Config{
		Domain:    p.env["FINESSE_DOMAIN"],
		TLSConfig: &tls.Config{RootCAs: p.roots, ServerName: p.env["FINESSE_DOMAIN"]},
		Username:  user,
		Password:  pass,
		Resource:  resource,
	}
	switch transport {
	case "tcp":
		cfg.Transport, cfg.Address = TransportTCP, p.env["XMPP_ADDR"]
	case "tls":
		cfg.Transport, cfg.Address = TransportTLS, p.env["XMPP_TLS_ADDR"]
	case "ws":
		cfg.Transport, cfg.Address, cfg.AllowInsecure = TransportWebSocket, p.env["WS_URL"], true
	case "wss":
		cfg.Transport, cfg.Address = TransportWebSocket, p.env["WSS_URL"]
	case "bosh":
		cfg.Transport, cfg.Address = TransportBOSH, p.env["BOSH_TLS_URL"]
	case "bosh-http":
		cfg.Transport, cfg.Address, cfg.AllowInsecure = TransportBOSH, p.env["BOSH_URL"], true
	default:
		tb.Fatalf("unknown transport %q", transport)
	}
	return cfg
}

// newToken registers a fresh IdS token for loginId with the fake IdS.
func (p *peer) newToken(tb testing.TB, loginID string) string {
	tb.Helper()
	base := p.env["IDS_BASE_URL"]
	if base == "" {
		for _, t := range strings.Fields(p.env["PEER_TOKENS"]) {
			if tok, id, _ := strings.Cut(t, ":"); id == loginID {
				return tok
			}
		}
		tb.Skipf("no token for %s and no fake IdS to add one", loginID)
	}
	tok := fmt.Sprintf("tok-%s-%d", loginID, time.Now().UnixNano())
	resp, err := http.PostForm(base+"/tokens", url.Values{"token": {tok}, "username": {loginID}})
	if err != nil {
		tb.Fatalf("add token: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("add token: HTTP %s", resp.Status)
	}
	return tok
}

// running is a Client served by Run in the background.
type running struct {
	*Client
	updates chan finesse.Update
	runErr  chan error
}

// start dials cfg and runs the client until the test ends. Without an
// OnUpdate of cfg's own, updates go to the running's channel.
func start(tb testing.TB, cfg Config) *running {
	tb.Helper()
	r := &running{updates: make(chan finesse.Update, 1024), runErr: make(chan error, 1)}
	if cfg.OnUpdate == nil {
		cfg.OnUpdate = func(u finesse.Update) {
			select {
			case r.updates <- u:
			default:
				tb.Error("updates channel full")
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		tb.Fatalf("Dial %s %s: %v", cfg.Transport, cfg.Address, err)
	}
	r.Client = c
	go func() { r.runErr <- c.Run(context.Background()) }()
	tb.Cleanup(func() { _ = c.Close(); <-r.runErr })
	return r
}

// waitUpdate waits for the Update carrying requestID.
func (r *running) waitUpdate(tb testing.TB, requestID string) finesse.Update {
	tb.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case u := <-r.updates:
			if u.RequestID == requestID {
				return u
			}
		case err := <-r.runErr:
			tb.Fatalf("session ended while waiting for %s: %v", requestID, err)
		case <-timeout:
			tb.Fatalf("no update with requestId %s within 5 s", requestID)
		}
	}
}

// publisher is the admin session that plays Finesse's part: it publishes
// Updates and manages subscriptions of other JIDs.
func (p *peer) publisher(tb testing.TB) *running {
	tb.Helper()
	return start(tb, p.config(tb, "tls", "admin", p.env["FINESSE_ADMIN_PASS"], fmt.Sprintf("publisher-%d", time.Now().UnixNano())))
}

// publish publishes update on node, escaped (as Cisco does) or inline.
func (c *Client) publish(ctx context.Context, node string, update []byte, inline bool) error {
	var inner xml.TokenReader = xmlstream.Token(xml.CharData(update))
	if inline {
		inner = xml.NewDecoder(strings.NewReader(string(update)))
	}
	payload := xmlstream.Wrap(
		xmlstream.Wrap(
			xmlstream.Wrap(
				xmlstream.Wrap(inner, xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "notification"}}),
				xml.StartElement{Name: xml.Name{Local: "item"}}),
			xml.StartElement{Name: xml.Name{Local: "publish"}, Attr: []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}}),
		xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "pubsub"}})
	return c.iq(ctx, stanza.SetIQ, payload, nil)
}

// createNode creates node (the admin does, as Finesse creates its nodes:
// the strict peer auto-creates nothing).
func (c *Client) createNode(ctx context.Context, node string) error {
	payload := xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "create"}, Attr: []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}}),
		xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "pubsub"}})
	return c.iq(ctx, stanza.SetIQ, payload, nil)
}

// newNode returns a fresh node created by pub.
func newNode(tb testing.TB, pub *running) string {
	tb.Helper()
	node := uniqueNode()
	if err := pub.createNode(ctx5(tb), node); err != nil {
		tb.Fatalf("create node %s: %v", node, err)
	}
	return node
}

// subscribeOther subscribes another JID (admin only, like Finesse's own
// default subscriptions).
func (c *Client) subscribeOther(ctx context.Context, node, who string) error {
	return c.iq(ctx, stanza.SetIQ, pubsubOp("subscribe", node, who, ""), nil)
}

func (c *Client) unsubscribeOther(ctx context.Context, node, who string) error {
	return c.iq(ctx, stanza.SetIQ, pubsubOp("unsubscribe", node, who, ""), nil)
}

func userUpdate(node, loginID, state, requestID string) []byte {
	return finesse.EncodeUpdate(finesse.Update{
		Node:      node,
		Event:     finesse.EventPut,
		Source:    finesse.UserNode(loginID),
		RequestID: requestID,
		Data: []byte("<user><loginId>" + loginID + "</loginId><firstName>Tom &amp; Jerry</firstName><state>" +
			state + "</state></user>"),
	})
}

var nodeSeq atomic.Int64

// uniqueNode returns a node name no other test (or earlier run) uses.
func uniqueNode() string {
	return fmt.Sprintf("/finesse/api/Team/%d%03d/Users", time.Now().Unix(), nodeSeq.Add(1))
}

func ctx5(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func TestPeerServersTransportsAndAuth(t *testing.T) {
	forEachServer(t, testTransportsAndAuth)
}

func testTransportsAndAuth(t *testing.T, p *peer) {
	pub := p.publisher(t)
	for _, transport := range []string{"tcp", "tls", "ws", "wss", "bosh", "bosh-http"} {
		for _, auth := range []string{"token", "password"} {
			t.Run(transport+"/"+auth, func(t *testing.T) {
				pass := p.users["1002"]
				if auth == "token" {
					pass = p.newToken(t, "1002")
				}
				resource := "relay-" + transport + "-" + auth
				cfg := p.config(t, transport, "1002", pass, resource)
				updates := make(chan finesse.Update, 16)
				cfg.OnUpdate = func(u finesse.Update) {
					if u.Replayed && !strings.HasPrefix(u.RequestID, "req-") {
						return // last items of nodes other runs subscribed, replayed on presence
					}
					updates <- u
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := Dial(ctx, cfg)
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				want := "1002@" + p.env["FINESSE_DOMAIN"] + "/" + resource
				if c.JID() != want {
					t.Errorf("JID() = %q, want %q (our named resource)", c.JID(), want)
				}
				runErr := make(chan error, 1)
				go func() { runErr <- c.Run(context.Background()) }()

				node := newNode(t, pub)
				if err := c.Subscribe(ctx, node); err != nil {
					t.Fatalf("Subscribe: %v", err)
				}
				reqID := "req-" + transport + "-" + auth
				if err := pub.publish(ctx, node, userUpdate(node, "1002", "READY", reqID), false); err != nil {
					t.Fatalf("publish: %v", err)
				}
				select {
				case u := <-updates:
					if u.Node != node || u.RequestID != reqID || u.Event != finesse.EventPut || u.Replayed {
						t.Errorf("update = %+v, want node %s requestId %s PUT", u, node, reqID)
					}
					if !strings.Contains(string(u.Data), "<state>READY</state>") || !strings.Contains(string(u.Data), "Tom &amp; Jerry") {
						t.Errorf("update data = %s", u.Data)
					}
				case err := <-runErr:
					t.Fatalf("Run ended: %v", err)
				case <-time.After(5 * time.Second):
					t.Fatal("no update within 5 s")
				}
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				if err := <-runErr; !errors.Is(err, ErrClosed) {
					t.Errorf("Run = %v, want ErrClosed", err)
				}
			})
		}
	}
}

func TestPeerServersWrongTokenRefused(t *testing.T) {
	forEachServer(t, testWrongTokenRefused)
}

func testWrongTokenRefused(t *testing.T, p *peer) {
	for _, transport := range []string{"tls", "wss", "bosh"} {
		t.Run(transport, func(t *testing.T) {
			cfg := p.config(t, transport, "1002", "not-a-valid-token", "relay-bad")
			c, err := Dial(ctx5(t), cfg)
			if err == nil {
				c.Close()
				t.Fatal("Dial with a wrong token succeeded")
			}
			var se *SessionError
			if !errors.Is(err, ErrAuth) || !errors.As(err, &se) || se.Reason != ReasonAuth {
				t.Fatalf("Dial = %v, want a ReasonAuth SessionError", err)
			}
			if strings.Contains(err.Error(), "not-a-valid-token") {
				t.Errorf("error text contains the token: %v", err)
			}
		})
	}
	t.Run("token of another agent", func(t *testing.T) {
		tok := p.newToken(t, "1003")
		_, err := Dial(ctx5(t), p.config(t, "tls", "1002", tok, "relay-bad"))
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("Dial = %v, want ErrAuth", err)
		}
	})
}

func TestPeerInlineUpdate(t *testing.T) {
	p := loadPeer(t)
	pub := p.publisher(t)
	c := start(t, p.config(t, "tls", "1002", p.users["1002"], "relay-inline"))
	node := uniqueNode()
	if err := c.Subscribe(ctx5(t), node); err != nil {
		t.Fatal(err)
	}
	if err := pub.publish(ctx5(t), node, userUpdate(node, "1002", "NOT_READY", "inline-1"), true); err != nil {
		t.Fatal(err)
	}
	u := c.waitUpdate(t, "inline-1")
	if got := string(u.Data); !strings.HasPrefix(got, "<user>") || !strings.Contains(got, "<state>NOT_READY</state>") || !strings.Contains(got, "Tom &amp; Jerry") {
		t.Errorf("inline update data = %s", got)
	}
}

func TestPeerPruneStaleSubscriptions(t *testing.T) {
	p := loadPeer(t)
	pub := p.publisher(t)
	domain := p.env["FINESSE_DOMAIN"]
	stale, kept := uniqueNode(), uniqueNode()
	ctx := ctx5(t)

	// An earlier session of the relay subscribed two nodes and died
	// without unsubscribing.
	old := start(t, p.config(t, "tls", "1002", p.users["1002"], "relay-prune"))
	for _, n := range []string{stale, kept} {
		if err := old.Subscribe(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	_ = old.sess.Conn().Close()
	if err := <-old.runErr; !errors.Is(err, ErrStream) {
		t.Fatalf("old session Run = %v, want ErrStream", err)
	}
	old.runErr <- nil // for the cleanup

	// The desktop and Finesse itself hold subscriptions to the same node.
	desk := p.rawSession(t, "1002", p.users["1002"], "desktop")
	if err := desk.iq(ctx, stanza.SetIQ, pubsubOp("subscribe", stale, desk.jid.String(), ""), nil); err != nil {
		t.Fatalf("desktop subscribe: %v", err)
	}
	bare := "1002@" + domain
	if err := pub.subscribeOther(ctx, stale, bare); err != nil {
		t.Fatalf("bare subscribe: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = pub.unsubscribeOther(ctx, stale, bare)
		_ = pub.unsubscribeOther(ctx, stale, desk.jid.String())
	})

	c := start(t, p.config(t, "tls", "1002", p.users["1002"], "relay-prune"))
	removed, err := c.PruneSubscriptions(ctx, []string{kept})
	if err != nil {
		t.Fatalf("PruneSubscriptions: %v", err)
	}
	if removed != 1 {
		t.Errorf("removed = %d, want 1", removed)
	}
	subs, err := c.Subscriptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	has := func(node, who string) bool {
		for _, s := range subs {
			if s.Node == node && s.JID == who {
				return true
			}
		}
		return false
	}
	if has(stale, c.JID()) {
		t.Errorf("stale subscription of %s to %s still there: %+v", c.JID(), stale, subs)
	}
	if !has(kept, c.JID()) {
		t.Errorf("kept subscription of %s to %s gone: %+v", c.JID(), kept, subs)
	}
	if !has(stale, desk.jid.String()) {
		t.Errorf("desktop subscription removed: %+v", subs)
	}
	if !has(stale, bare) {
		t.Errorf("bare JID subscription removed: %+v", subs)
	}
	if _, err := c.PruneSubscriptions(ctx, nil); err != nil { // leave nothing behind
		t.Fatal(err)
	}
}

func TestPeerCloseUnsubscribes(t *testing.T) {
	p := loadPeer(t)
	ctx := ctx5(t)
	observer := start(t, p.config(t, "tls", "1003", p.users["1003"], "relay-observer"))
	c := start(t, p.config(t, "wss", "1003", p.users["1003"], "relay-closing"))
	node := uniqueNode()
	if err := c.Subscribe(ctx, node); err != nil {
		t.Fatal(err)
	}
	mine := func() bool {
		subs, err := observer.Subscriptions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			if s.Node == node && s.JID == c.JID() {
				return true
			}
		}
		return false
	}
	if !mine() {
		t.Fatal("subscription not listed before Close")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if mine() {
		t.Error("subscription still listed after Close")
	}
}

func TestPeerConflict(t *testing.T) {
	p := loadPeer(t)
	first := start(t, p.config(t, "tls", "1003", p.users["1003"], "relay-conflict"))
	second := start(t, p.config(t, "wss", "1003", p.users["1003"], "relay-conflict"))
	select {
	case err := <-first.runErr:
		if !errors.Is(err, ErrConflict) {
			t.Errorf("first session Run = %v, want ErrConflict", err)
		}
		first.runErr <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("first session not replaced within 5 s")
	}
	if second.JID() != first.JID() {
		t.Errorf("second JID %s, first %s", second.JID(), first.JID())
	}
}

func TestPeerPings(t *testing.T) {
	p := loadPeer(t)
	cfg := p.config(t, "tcp", "1003", p.users["1003"], "relay-ping")
	cfg.PingInterval = 100 * time.Millisecond
	c := start(t, cfg)
	time.Sleep(550 * time.Millisecond)
	select {
	case err := <-c.runErr:
		t.Fatalf("Run ended: %v", err)
	default:
	}
	if st := c.Stats(); st.Pings < 3 {
		t.Errorf("Stats().Pings = %d after 550 ms at 100 ms, want >= 3", st.Pings)
	}
}

// rawSession logs in with mellium directly, binding any resource (even
// "desktop", which Dial refuses), and serves the stream until the test
// ends. It stands in for the Finesse desktop.
func (p *peer) rawSession(tb testing.TB, user, pass, resource string) *Client {
	tb.Helper()
	cfg, err := p.config(tb, "tls", user, pass, "placeholder").normalize()
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Resource = resource
	ctx := ctx5(tb)
	ls := &linkState{}
	lk, err := dialLink(ctx, cfg, ls)
	if err != nil {
		tb.Fatal(err)
	}
	origin := jid.MustParse(user + "@" + cfg.Domain + "/" + resource)
	features := []mxmpp.StreamFeature{saslPlain(user, pass), bindNamed(resource), sessionInfo()}
	sess, err := mxmpp.NewSession(ctx, jid.MustParse(cfg.Domain), origin, lk.conn, lk.state,
		mxmpp.NewNegotiator(func(*mxmpp.Session, *mxmpp.StreamConfig) mxmpp.StreamConfig {
			return mxmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		tb.Fatal(err)
	}
	c := &Client{cfg: cfg, sess: sess, jid: sess.LocalAddr(), pubsub: jid.MustParse(cfg.PubSubDomain), life: context.Background()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sess.Serve(nil)
	}()
	tb.Cleanup(func() {
		_ = sess.Close()
		_ = sess.Conn().Close()
		<-done
	})
	return c
}

// BenchmarkPeerPublishToUpdate measures publish -> OnUpdate through
// Prosody: from sending the admin's publish IQ (over direct TLS) to the
// agent's OnUpdate call, per agent transport. This is the "direct XMPP
// client" baseline of the relay's figures.
func BenchmarkPeerPublishToUpdate(b *testing.B) {
	p := loadPeer(b)
	pub := p.publisher(b)
	for _, transport := range []string{"tls", "wss", "bosh"} {
		b.Run(transport, func(b *testing.B) {
			var mu sync.Mutex
			got := map[string]chan struct{}{}
			cfg := p.config(b, transport, "1002", p.users["1002"], "relay-bench-"+transport)
			cfg.OnUpdate = func(u finesse.Update) {
				mu.Lock()
				ch := got[u.RequestID]
				delete(got, u.RequestID)
				mu.Unlock()
				if ch != nil {
					close(ch)
				}
			}
			c := start(b, cfg)
			node := uniqueNode()
			if err := c.Subscribe(ctx5(b), node); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			run := strconv.FormatInt(time.Now().UnixNano(), 36)
			b.ResetTimer()
			for i := range b.N {
				id := "bench-" + run + "-" + strconv.Itoa(i)
				ch := make(chan struct{})
				mu.Lock()
				got[id] = ch
				mu.Unlock()
				errc := make(chan error, 1)
				go func() { errc <- pub.publish(ctx, node, userUpdate(node, "1002", "READY", id), false) }()
				select {
				case <-ch:
				case <-time.After(5 * time.Second):
					b.Fatalf("update %s not received", id)
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPeerDial measures Dial (connect, TLS, SASL PLAIN checked by
// Dovecot, bind, presence) and Close per transport, with a static password.
func BenchmarkPeerDial(b *testing.B) {
	p := loadPeer(b)
	for _, transport := range []string{"tcp", "tls", "wss", "bosh"} {
		b.Run(transport, func(b *testing.B) {
			cfg := p.config(b, transport, "1003", p.users["1003"], "relay-dial-"+transport)
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c, err := Dial(ctx, cfg)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPeerServersReplayedLastItem publishes an item, then subscribes: a
// server that re-sends the node's last item (ejabberd as configured, like
// Finesse's Openfire) delivers it marked Replayed; the next publish is a
// live update. Prosody sends no replay by default; if it does, it must be
// marked too.
func TestPeerServersReplayedLastItem(t *testing.T) {
	forEachServer(t, func(t *testing.T, p *peer) {
		pub := p.publisher(t)
		node := newNode(t, pub)
		if err := pub.publish(ctx5(t), node, userUpdate(node, "1002", "NOT_READY", "before-subscribe"), false); err != nil {
			t.Fatalf("publish: %v", err)
		}
		c := start(t, p.config(t, "tls", "1002", p.users["1002"], "relay-replay"))
		if err := c.Subscribe(ctx5(t), node); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		wantReplay := p.env["PEER_STRICT_PUBSUB"] == "1"
		timeout := time.After(time.Second)
	wait:
		for {
			select {
			case u := <-c.updates:
				if u.Node != node {
					continue // replays of other nodes this user is subscribed to
				}
				if u.RequestID != "before-subscribe" || !u.Replayed {
					t.Errorf("update after subscribe: requestId %q Replayed %v, want the replayed last item", u.RequestID, u.Replayed)
				}
				break wait
			case <-timeout:
				if wantReplay {
					t.Fatal("no replay of the last item within 1 s of subscribing")
				}
				break wait
			}
		}
		if err := pub.publish(ctx5(t), node, userUpdate(node, "1002", "READY", "after-subscribe"), false); err != nil {
			t.Fatalf("publish: %v", err)
		}
		if u := c.waitUpdate(t, "after-subscribe"); u.Replayed {
			t.Error("a live update was marked Replayed")
		}
	})
}

// TestPeerServersBOSHLoginLoop logs in and out over BOSH 50 times per
// server and scheme (http, https), each Dial+Close bounded by 5 s: a
// client that lets a later rid overtake an earlier one stalls here against
// ejabberd. It logs the timings.
func TestPeerServersBOSHLoginLoop(t *testing.T) {
	const n = 50
	forEachServer(t, func(t *testing.T, p *peer) {
		for _, transport := range []string{"bosh-http", "bosh"} {
			t.Run(transport, func(t *testing.T) {
				cfg := p.config(t, transport, "1003", p.users["1003"], "relay-loop")
				var times []time.Duration
				failures := 0
				for i := range n {
					start := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					c, err := Dial(ctx, cfg)
					if err == nil {
						done := make(chan error, 1)
						go func() { done <- c.Close() }()
						select {
						case err = <-done:
						case <-ctx.Done():
							err = fmt.Errorf("Close still running after 5 s")
							<-done
						}
					}
					cancel()
					if err != nil {
						failures++
						t.Errorf("login %d: %v", i, err)
						continue
					}
					times = append(times, time.Since(start))
				}
				slices.Sort(times)
				if len(times) > 0 {
					t.Logf("%s %s: %d/%d logins+close succeeded; min %v, median %v, p90 %v, max %v",
						p.name, transport, n-failures, n, times[0].Round(time.Millisecond), times[len(times)/2].Round(time.Millisecond),
						times[len(times)*9/10].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
				}
			})
		}
	})
}
