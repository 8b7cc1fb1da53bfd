//go:build !windows

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"finesse-relay/server/signin"
	"finesse-relay/server/sim"
)

// childEnv makes the test binary run the relay's `serve` command instead of
// the tests (TestMain): a relay in its own process that a test can
// SIGTERM or SIGKILL.
const childEnv = "FINESSE_RELAY_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "serve" {
		ctx, stop := signalContext()
		code := run(ctx, os.Args[len(os.Args)-2:], os.Stdout, os.Stderr, os.Getenv)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	notifySignals(ch)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// relayProcess is a relay `serve` in a child process over a file store,
// pointed at a simulator that lives in the test process and outlives it.
type relayProcess struct {
	t      *testing.T
	base   string
	config string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

func startSimForRestart(t *testing.T, port string, forcedLogout time.Duration) (*sim.Sim, string) {
	t.Helper()
	base := "http://127.0.0.1:" + port
	secret := randomToken()
	s, err := sim.New(sim.Config{Fast: true, Seed: 7, CallInterval: -1, PlainIdS: true, ClientID: demoClientID, ClientSecret: secret,
		RedirectURIs: []string{base + "/idscallback"}, ForcedLogoutDelay: forcedLogout, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, secret
}

// writeRelayConfig writes the env file a `serve` of the simulator needs.
func writeRelayConfig(t *testing.T, dir string, s *sim.Sim, secret, port string) string {
	t.Helper()
	ep := s.Endpoints()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, ep.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + port
	lines := []string{
		"LISTEN_HOST=127.0.0.1", "server.port=" + port, "PUBLIC_URL=" + base,
		"IDS_URL=" + ep.IdSURL, "REDIRECT_URI=" + base + "/idscallback",
		"client_id=" + demoClientID, "client_secret=" + secret, "CA_FILE=" + ca,
		"STORE=file:" + filepath.Join(dir, "relay.db"), "LOG_FORMAT=json", "LOG_LEVEL=warn",
		"SESSION_GRACE=30s",
	}
	for _, side := range ep.Sides {
		p := "FINESSE_" + side.Name + "_"
		lines = append(lines, p+"HOST="+side.Host, p+"HTTPS_PORT="+strconv.Itoa(side.HTTPSPort),
			p+"XMPP_TRANSPORT=websocket", p+"XMPP_PORT="+strconv.Itoa(side.HTTPSPort))
	}
	path := filepath.Join(dir, "relay.env")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startRelayProcess(t *testing.T, config, port string) *relayProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--config", config)
	cmd.Env = append(os.Environ(), childEnv+"=serve")
	cmd.Args = []string{os.Args[0], "--config", config}
	logs, _ := os.Create(config + ".log")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rp := &relayProcess{t: t, base: "http://127.0.0.1:" + port, config: config, cmd: cmd, exited: make(chan struct{})}
	go func() { rp.err = cmd.Wait(); logs.Close(); close(rp.exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-rp.exited })
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if rsp, err := http.Get(rp.base + "/readyz"); err == nil {
			rsp.Body.Close()
			if rsp.StatusCode == http.StatusOK {
				return rp
			}
		}
		select {
		case <-rp.exited:
			b, _ := os.ReadFile(config + ".log")
			t.Fatalf("relay exited at start: %v\n%s", rp.err, b)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("relay not ready within 15 s")
	return nil
}

// stop signals the relay and waits for it to exit.
func (rp *relayProcess) stop(sig syscall.Signal) {
	rp.t.Helper()
	_ = rp.cmd.Process.Signal(sig)
	select {
	case <-rp.exited:
	case <-time.After(20 * time.Second):
		rp.t.Fatal("relay did not exit after the signal")
	}
}

// browserTab is what a browser keeps across a relay restart.
type browserTab struct {
	name    string
	bearer  string // gadget / script session token
	cookie  string // the relay page's HttpOnly session cookie
	lastSeq int64
	stream  string
}

// ticket asks for a fresh ticket with the tab's existing session.
func (b *browserTab) ticket(t *testing.T, base string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/tickets", nil)
	if b.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+b.bearer)
	} else {
		req.AddCookie(&http.Cookie{Name: signin.SessionCookie, Value: b.cookie})
		req.Header.Set(signin.CSRFHeader, "1")
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	var body struct {
		Ticket string `json:"ticket"`
	}
	_ = json.NewDecoder(rsp.Body).Decode(&body)
	return body.Ticket, rsp.StatusCode
}

// connect opens the tab's WebSocket (resuming when it saw messages before)
// and reads the welcome and the User state.
func (b *browserTab) connect(t *testing.T, base, agentID string) *websocket.Conn {
	t.Helper()
	tk, status := b.ticket(t, base)
	if status != http.StatusCreated {
		t.Fatalf("%s: POST /api/v1/tickets answered %d (the tab would have to sign in again)", b.name, status)
	}
	q := ""
	if b.stream != "" {
		q = fmt.Sprintf("&since=%d&stream=%s", b.lastSeq, b.stream)
	}
	c, _, err := websocket.DefaultDialer.Dial(strings.Replace(base, "http", "ws", 1)+"/ws?ticket="+tk+q, nil)
	if err != nil {
		t.Fatalf("%s: dial: %v", b.name, err)
	}
	var welcome struct {
		Type   string `json:"type"`
		Seq    int64  `json:"seq"`
		Stream string `json:"stream"`
		Agent  string `json:"agent"`
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.ReadJSON(&welcome); err != nil || welcome.Type != "welcome" || welcome.Agent != agentID {
		t.Fatalf("%s: welcome %+v %v", b.name, welcome, err)
	}
	b.lastSeq, b.stream = welcome.Seq, welcome.Stream
	m := next(t, c, func(m wsMsg) bool { return m.Type == "state" && m.Node == "/finesse/api/User/"+agentID })
	if m.Seq > b.lastSeq {
		b.lastSeq = m.Seq
	}
	return c
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// ssoSignIn runs the relay page's SSO sign-in through the simulated IdS
// and returns the relay's session cookie.
func ssoSignIn(t *testing.T, base, user string) string {
	t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	rsp, err := noRedirect.Get(base + "/login?return=/")
	if err != nil || rsp.StatusCode != http.StatusFound {
		t.Fatalf("/login: %v %v", rsp, err)
	}
	rsp.Body.Close()
	state := rsp.Cookies()
	authURL := rsp.Header.Get("Location")
	page, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(string(b), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	form.Set("username", user)
	form.Set("password", "demo")
	u, _ := url.Parse(authURL)
	rsp, err = noRedirect.PostForm(u.Scheme+"://"+u.Host+u.Path, form)
	if err != nil || rsp.StatusCode != http.StatusFound {
		t.Fatalf("IdS form: %v %v", rsp, err)
	}
	rsp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, rsp.Header.Get("Location"), nil)
	for _, c := range state {
		req.AddCookie(c)
	}
	rsp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	for _, c := range rsp.Cookies() {
		if c.Name == signin.SessionCookie && c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("no session cookie after the SSO callback (%d %s)", rsp.StatusCode, rsp.Header.Get("Location"))
	return ""
}

// A relay restart (SIGTERM for an upgrade, or SIGKILL for a crash) signs
// no one out: a password agent, a gadget (token) agent and an SSO agent
// with two tabs each get tickets with their old sessions and resume; no
// credential is asked again; Finesse (the simulator, with a short forced
// logout delay) logs no one out.
func TestRestartSignsNoOneOut(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			port := strconv.Itoa(freePort(t))
			const forcedLogout = 6 * time.Second
			s, secret := startSimForRestart(t, port, forcedLogout)
			dir := t.TempDir()
			config := writeRelayConfig(t, dir, s, secret, port)
			relay := startRelayProcess(t, config, port)
			st := &stack{base: relay.base, sim: s}

			pw := st.signIn(t, "1001")
			access, _, err := s.IdS().IssueForTest("agent1002", demoClientID)
			if err != nil {
				t.Fatal(err)
			}
			gadget := st.postSession(t, "/api/v1/sessions", fmt.Sprintf(`{"loginId":"1002","authToken":%q}`, access), "")
			sso := ssoSignIn(t, relay.base, "agent1003")
			tabs := map[string][]*browserTab{
				"1001": {{name: "password tab 1", bearer: pw.Session}, {name: "password tab 2", bearer: pw.Session}},
				"1002": {{name: "gadget 1", bearer: gadget.Session}, {name: "gadget 2", bearer: gadget.Session}},
				"1003": {{name: "SSO tab 1", cookie: sso}, {name: "SSO tab 2", cookie: sso}},
			}
			for id, ts := range tabs {
				for _, tab := range ts {
					tab.connect(t, relay.base, id).Close()
				}
			}
			// The agents sign in to the phone and go READY: a forced logout
			// (reason 255) would show as LOGOUT.
			for id, session := range map[string]string{"1001": pw.Session, "1002": gadget.Session} {
				if code, _, body := st.finesse(t, session, http.MethodPut, "User/"+id, "<User><state>LOGIN</state><extension>5"+id+"</extension></User>"); code != http.StatusAccepted {
					t.Fatalf("PUT LOGIN %s: %d %s", id, code, body)
				}
				waitUserState(t, st, session, id, "NOT_READY")
			}
			if code, _, body := st.finesse(t, pw.Session, http.MethodPut, "User/1001", `<User><state>READY</state></User>`); code != http.StatusAccepted {
				t.Fatalf("PUT READY: %d %s", code, body)
			}
			waitUserState(t, st, pw.Session, "1001", "READY")

			// Nothing secret is readable in the bbolt file: the password,
			// the gadget's Finesse token, the relay session tokens.
			db, err := os.ReadFile(filepath.Join(dir, "relay.db"))
			if err != nil {
				t.Fatal(err)
			}
			for what, secret := range map[string]string{"the password": `"demo"`, "the gadget's token": access,
				"a relay session token": pw.Session, "the SSO cookie": sso} {
				if bytes.Contains(db, []byte(secret)) {
					t.Fatalf("%s is readable in the bbolt file", what)
				}
			}

			restartAt := time.Now()
			relay.stop(sig)
			relay = startRelayProcess(t, config, port)
			// The relay re-opens every agent's upstream session by itself,
			// before any browser comes back.
			waitSessionsUp(t, relay.base, 3)
			t.Logf("%s: all 3 agent sessions up again %v after the restart began", sig, time.Since(restartAt).Round(time.Millisecond))
			// Past Finesse's presence window, still with no browser: nobody
			// was logged out.
			time.Sleep(time.Until(restartAt.Add(forcedLogout + time.Second)))
			for id, want := range map[string]string{"1001": "READY", "1002": "NOT_READY"} {
				if u, _ := s.UserState(id); u != want {
					t.Errorf("agent %s is %s after the restart, want %s (no forced logout)", id, u, want)
				}
			}
			// Every tab comes back with its old session: no credential asked.
			for id, ts := range tabs {
				for _, tab := range ts {
					c := tab.connect(t, relay.base, id)
					next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
					c.Close()
				}
			}
		})
	}
}

// waitSessionsUp polls /metrics until n agent sessions are up.
func waitSessionsUp(t *testing.T, base string, n int) {
	t.Helper()
	want := fmt.Sprintf(`finesse_relay_sessions{state="up"} %d`, n)
	deadline := time.Now().Add(15 * time.Second)
	for {
		rsp, err := http.Get(base + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(rsp.Body)
			rsp.Body.Close()
			if strings.Contains(string(b), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %d sessions up within 15 s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitUserState polls the agent's state through the relay's REST proxy.
func waitUserState(t *testing.T, st *stack, session, id, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, body := st.finesse(t, session, http.MethodGet, "User/"+id, "")
		if strings.Contains(body, "<state>"+want+"</state>") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s not %s: %s", id, want, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
