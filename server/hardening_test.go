package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"finesse-relay/gadget"
)

// startTLSRelay runs `serve` with a self-signed certificate, a plain HTTP
// redirect port and the extra --set flags; it returns the HTTPS and HTTP
// ports once HTTPS answers, and stops the relay when the test ends.
func startTLSRelay(t *testing.T, sets ...string) (httpsPort, httpPort int) {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM, _ := testCert(t, dir, time.Now().Add(24*time.Hour))
	httpsPort, httpPort = freePort(t), freePort(t)
	args := []string{"serve", "--config", writeFile(t, dir, "relay.env", "STORE=file:"+filepath.Join(dir, "relay.db")+"\n"),
		"--listen", "127.0.0.1:" + strconv.Itoa(httpsPort),
		"--set", "server.http.port=" + strconv.Itoa(httpPort),
		"--set", "server.ssl.certificate=" + certPEM, "--set", "server.ssl.certificate-private-key=" + keyPEM,
		"--set", "LOG_FORMAT=json"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	var stderr strings.Builder
	go func() { exit <- run(ctx, args, io.Discard, &syncBuffer{&stderr}, noEnv) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exit:
		case <-time.After(20 * time.Second):
			t.Error("serve did not return")
		}
	})
	c := insecureClient(nil)
	for i := 0; ; i++ {
		rsp, err := c.Get("https://127.0.0.1:" + strconv.Itoa(httpsPort) + "/testbackend")
		if err == nil {
			rsp.Body.Close()
			return httpsPort, httpPort
		}
		if i == 200 {
			t.Fatalf("HTTPS never answered: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// insecureClient trusts the test's self-signed certificate; tc adjusts the
// TLS client configuration. It never follows redirects.
func insecureClient(tc func(*tls.Config)) *http.Client {
	cfg := &tls.Config{InsecureSkipVerify: true} // #nosec G402 -- the test's own self-signed certificate
	if tc != nil {
		tc(cfg)
	}
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       5 * time.Second,
	}
}

// Issue 12: TLS 1.2 offered CBC suites; no HSTS when TLS is on; the plain
// HTTP redirect built its Location from the Host header.
func TestTLSHardening(t *testing.T) {
	httpsPort, httpPort := startTLSRelay(t, "PUBLIC_URL=https://relay.example.test:8443")
	base := "https://127.0.0.1:" + strconv.Itoa(httpsPort)

	t.Run("cipher suites", func(t *testing.T) {
		tests := []struct {
			name string
			tc   func(*tls.Config)
			ok   bool
		}{
			{"TLS 1.3", func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }, true},
			{"TLS 1.2 ECDHE AES-GCM", func(c *tls.Config) {
				c.MaxVersion = tls.VersionTLS12
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
			}, true},
			{"TLS 1.2 ECDHE ChaCha20", func(c *tls.Config) {
				c.MaxVersion = tls.VersionTLS12
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
			}, true},
			{"TLS 1.2 CBC-SHA", func(c *tls.Config) {
				c.MaxVersion = tls.VersionTLS12
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
			}, false},
			{"TLS 1.2 CBC-SHA256", func(c *tls.Config) {
				c.MaxVersion = tls.VersionTLS12
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256} // #nosec G402 -- offered to prove the relay refuses it
			}, false},
			{"TLS 1.1", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }, false},
		}
		for _, tt := range tests {
			rsp, err := insecureClient(tt.tc).Get(base + "/healthz")
			if err == nil {
				rsp.Body.Close()
			}
			if (err == nil) != tt.ok {
				t.Errorf("%s: err = %v, want accepted=%v", tt.name, err, tt.ok)
			}
		}
	})

	t.Run("HSTS and nosniff over TLS", func(t *testing.T) {
		for _, path := range []string{"/", "/testbackend", "/static/relay-client.js", "/api/v1/tickets"} {
			rsp, err := insecureClient(nil).Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			rsp.Body.Close()
			if got := rsp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
				t.Errorf("%s: Strict-Transport-Security %q", path, got)
			}
			if rsp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: no X-Content-Type-Options", path)
			}
		}
	})

	t.Run("redirect from the configured public URL", func(t *testing.T) {
		for _, host := range []string{"evil.com", "evil.com:443", "relay.example.test", ""} {
			req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/healthz?x=1", nil)
			req.Host = host
			rsp, err := insecureClient(nil).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			rsp.Body.Close()
			if want := "https://relay.example.test:8443/healthz?x=1"; rsp.StatusCode != http.StatusPermanentRedirect || rsp.Header.Get("Location") != want {
				t.Errorf("Host %q: %d → %q, want 308 → %q", host, rsp.StatusCode, rsp.Header.Get("Location"), want)
			}
		}
	})
}

// Without TLS the relay sends no HSTS (it would pin browsers to a scheme
// the relay does not serve).
func TestNoHSTSWithoutTLS(t *testing.T) {
	st := startStack(t, stackOptions{})
	rsp, err := http.Get(st.base + "/testbackend")
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	if rsp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS over plain HTTP")
	}
}

// stubListener is a listener that only has an address (setupMetrics looks
// at it to tell loopback from public).
type stubListener struct{ addr net.Addr }

func (l stubListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (l stubListener) Close() error              { return nil }
func (l stubListener) Addr() net.Addr            { return l.addr }

// Issue 12: /metrics was open on the public port.
func TestMetricsAccess(t *testing.T) {
	dir := t.TempDir()
	token := "s3cr3t-metrics-token-0123456789"
	tokenFile := writeFile(t, dir, "metrics.token", token+"\n")
	public := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 1125}
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1125}
	type probe struct {
		auth string
		want int
	}
	tests := []struct {
		name       string
		addr       net.Addr
		listen     bool
		tokenFile  string
		public     []probe // GET /metrics on the public port
		separate   []probe // GET /metrics on METRICS_LISTEN
		warns      bool
		wantErrKey string
	}{
		{name: "public port, nothing configured: not served, warned", addr: public,
			public: []probe{{"", 404}}, warns: true},
		{name: "loopback port, nothing configured: open", addr: loopback,
			public: []probe{{"", 200}}},
		{name: "token on the public port", addr: public, tokenFile: tokenFile,
			public: []probe{{"", 401}, {"Bearer wrong", 401}, {"Basic " + token, 401}, {"Bearer " + token, 200}}},
		{name: "token on a loopback port still required", addr: loopback, tokenFile: tokenFile,
			public: []probe{{"", 401}, {"Bearer " + token, 200}}},
		{name: "separate listener", addr: public, listen: true,
			public: []probe{{"", 404}}, separate: []probe{{"", 200}}},
		{name: "separate listener with token", addr: public, listen: true, tokenFile: tokenFile,
			public: []probe{{"Bearer " + token, 404}}, separate: []probe{{"", 401}, {"Bearer " + token, 200}}},
		{name: "short token", addr: public, tokenFile: writeFile(t, dir, "short", "abc"), wantErrKey: "METRICS_TOKEN_FILE"},
		{name: "missing token file", addr: public, tokenFile: dir + "/absent", wantErrKey: "METRICS_TOKEN_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, m := newRegistry()
			cfg := &Config{MetricsTokenFile: tt.tokenFile}
			if tt.listen {
				cfg.MetricsListen = "127.0.0.1:0"
			}
			a := &App{cfg: cfg, reg: reg, metrics: m, mux: http.NewServeMux(), main: stubListener{tt.addr}}
			err := a.setupMetrics()
			if tt.wantErrKey != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrKey) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErrKey)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.publicMetrics != nil { // what routes() does with it
				a.mux.Handle("GET /metrics", a.publicMetrics)
			}
			if a.metricsLn != nil {
				defer a.metricsLn.Close()
			}
			if tt.listen != (a.metricsLn != nil) {
				t.Fatalf("separate listener bound = %v, want %v", a.metricsLn != nil, tt.listen)
			}
			if warned := len(cfg.Warnings) > 0; warned != tt.warns {
				t.Errorf("warnings %q, want warned=%v", cfg.Warnings, tt.warns)
			}
			check := func(where string, h http.Handler, ps []probe) {
				for _, p := range ps {
					req, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
					if p.auth != "" {
						req.Header.Set("Authorization", p.auth)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != p.want {
						t.Errorf("%s, Authorization %q: %d, want %d", where, p.auth, rec.Code, p.want)
					}
					if rec.Code == 200 && !strings.Contains(rec.Body.String(), "go_goroutines") {
						t.Errorf("%s: not the Prometheus exposition", where)
					}
				}
			}
			check("public port", a.mux, tt.public)
			if a.metricsMux != nil {
				check("METRICS_LISTEN", a.metricsMux, tt.separate)
			}
		})
	}
}

// Issue 12, hole 6: after DELETE /api/v1/sessions the WebSocket opened with
// that session kept receiving events. Another sign-in of the same agent
// keeps its own.
func TestEndToEndSignOutClosesThatSessionsSockets(t *testing.T) {
	st := startStack(t, stackOptions{})
	out := st.signIn(t, "1001")
	stay := st.signIn(t, "1001")
	c1 := st.open(t, out.Ticket, "")
	c2 := st.open(t, stay.Ticket, "")
	next(t, c1, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
	next(t, c2, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })
	spare := st.ticket(t, out.Session) // issued before the sign-out

	req, _ := http.NewRequest(http.MethodDelete, st.base+"/api/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+out.Session)
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	if rsp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE /api/v1/sessions: %d", rsp.StatusCode)
	}
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c1.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, gadget.CloseSignedOut) {
				t.Fatalf("signed-out socket: %v, want close 4100", err)
			}
			break
		}
	}
	if _, rsp, err := st.dial(t, spare, "", nil); err == nil || rsp == nil || rsp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a ticket issued before the sign-out must be refused: %v", err)
	}
	code, rid, _ := st.finesse(t, stay.Session, http.MethodPut, "User/1001", "<User><state>LOGIN</state><extension>51001</extension></User>")
	if code != http.StatusAccepted {
		t.Fatalf("the other sign-in: %d", code)
	}
	next(t, c2, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid })
}

// Issue 12, hole 3, through the API: tickets per relay session are capped.
func TestEndToEndTicketCap(t *testing.T) {
	st := startStack(t, stackOptions{relay: func(c *Config) { c.MaxTicketsPerSession = 3 }})
	a := st.signIn(t, "1001") // its answer carries the first ticket
	st.ticket(t, a.Session)
	st.ticket(t, a.Session)
	req, _ := http.NewRequest(http.MethodPost, st.base+"/api/v1/tickets", nil)
	req.Header.Set("Authorization", "Bearer "+a.Session)
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	if rsp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "too_many_tickets") || rsp.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth outstanding ticket: %d %s", rsp.StatusCode, body)
	}
	b := st.signIn(t, "1002") // another session is not affected
	c := st.open(t, b.Ticket, "")
	next(t, c, func(m wsMsg) bool { return m.Type == "welcome" })
	c = st.open(t, a.Ticket, "") // redeeming frees a slot
	next(t, c, func(m wsMsg) bool { return m.Type == "welcome" })
	st.ticket(t, a.Session)
}
