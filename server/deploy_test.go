package main

// Tests of what operators install and watch: the systemd notifications of
// serve, the unit file, the Compose file's variables, and the metrics the
// Grafana dashboard and the Prometheus alerts name.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"finesse-relay/server/certwatch"
)

// startServe runs "serve" with HTTPS on a free port and env as the process
// environment; it returns the base URL and a stop function that ends serve
// gracefully and checks its exit status.
func startServe(t *testing.T, env map[string]string) (string, *http.Client, func()) {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM, _ := testCert(t, dir, time.Now().Add(90*24*time.Hour))
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		exit <- run(ctx, []string{"serve", "--config", writeFile(t, dir, "relay.env", ""),
			"--listen", "127.0.0.1:" + strconv.Itoa(port),
			"--set", "server.ssl.certificate=" + certPEM, "--set", "server.ssl.certificate-private-key=" + keyPEM,
			"--set", "LOG_FORMAT=json", "--set", "STORE=memory"}, io.Discard, &syncBuffer{&stderr}, func(k string) string { return env[k] })
	}()
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // #nosec G402 -- the test's own self-signed certificate
		Timeout:   5 * time.Second,
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-exit:
			if code != exitOK {
				t.Errorf("serve exit status %d\n%s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return "https://127.0.0.1:" + strconv.Itoa(port), client, stop
}

func TestServeNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	sd, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	next := func(what string) string {
		t.Helper()
		_ = sd.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		n, err := sd.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		return string(buf[:n])
	}
	// WatchdogSec=400ms: a WATCHDOG=1 every 200 ms.
	base, client, stop := startServe(t, map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "400000"})

	msg := next("READY=1")
	if !strings.HasPrefix(msg, "READY=1\n") || !strings.Contains(msg, "STATUS=serving on https://") {
		t.Fatalf("first notification %q, want READY=1 with a status", msg)
	}
	rsp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	if rsp.StatusCode != http.StatusOK {
		t.Fatalf("after READY=1, /readyz = %d, want 200", rsp.StatusCode)
	}
	for i := 0; i < 2; i++ {
		if msg := next("WATCHDOG=1"); msg != "WATCHDOG=1" {
			t.Fatalf("while running: %q, want WATCHDOG=1", msg)
		}
	}
	stop()
	for {
		msg := next("STOPPING=1")
		if msg == "WATCHDOG=1" {
			continue // a ping sent just before the shutdown began
		}
		if !strings.HasPrefix(msg, "STOPPING=1\n") {
			t.Fatalf("on shutdown: %q, want STOPPING=1", msg)
		}
		break
	}
}

func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is missing (Debian package systemd); CI must run this test")
		}
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	unit, err := os.ReadFile("../configs/systemd/finesse-relay.service")
	if err != nil {
		t.Fatal(err)
	}
	// systemd-analyze verify checks that ExecStart's program exists; the
	// package installs it at /usr/bin/finesse-relay (scripts/package-test.sh
	// verifies the installed unit as is). Here a stand-in takes its place.
	dir := t.TempDir()
	bin := writeFile(t, dir, "finesse-relay", "#!/bin/sh\n")
	if err := os.Chmod(bin, 0o755); err != nil { // #nosec G302 -- an executable stand-in
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/finesse-relay serve --config /etc/finesse-relay/relay.env\n") {
		t.Fatal("the unit's ExecStart is not the packaged binary with the packaged config")
	}
	path := writeFile(t, dir, "finesse-relay.service", strings.ReplaceAll(string(unit), "/usr/bin/finesse-relay", bin))
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput() // #nosec G204 -- fixed tool, test-made path
	// verify exits 0 on unknown keys and bad values (it only warns), so any
	// output is a failure.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "User=finesse-relay", "ProtectSystem=strict", "NoNewPrivileges=true",
		"StateDirectory=finesse-relay", "LimitNOFILE=65536", "EnvironmentFile=/etc/finesse-relay/relay.env"} {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
}

// envNames are every environment variable name the relay reads.
func envNames() map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		for _, n := range append([]string{k.name}, k.aliases...) {
			m[envName(n)] = true
		}
	}
	return m
}

func TestComposeSetsOnlyKnownKeys(t *testing.T) {
	data, err := os.ReadFile("../configs/compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Profiles    []string  `yaml:"profiles"`
			Environment yaml.Node `yaml:"environment"`
			Volumes     []string  `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	known := envNames()
	relays := map[string]map[string]string{}
	for name, svc := range doc.Services {
		if name == "redis" {
			continue
		}
		env := map[string]string{}
		switch svc.Environment.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(svc.Environment.Content); i += 2 {
				env[svc.Environment.Content[i].Value] = svc.Environment.Content[i+1].Value
			}
		case yaml.SequenceNode:
			for _, n := range svc.Environment.Content {
				k, v, _ := strings.Cut(n.Value, "=")
				env[k] = v
			}
		case 0:
		default:
			t.Fatalf("service %s: environment is neither a map nor a list", name)
		}
		if len(env) == 0 {
			t.Errorf("service %s sets no variable: the test would prove nothing", name)
		}
		for k := range env {
			if !known[k] {
				t.Errorf("service %s sets %s, which is not a configuration key (see configs/relay.env.example)", name, k)
			}
		}
		relays[name] = env
	}
	for _, tc := range []struct{ svc, key, want string }{
		{"relay", "STORE", "file:/var/lib/finesse-relay/finesse-relay.db"},
		{"relay-a", "STORE", "redis://redis:6379/0"},
		{"relay-b", "STORE", "redis://redis:6379/0"},
		{"relay-a", "SESSION_KEY_FILE", "/run/secrets/session_key"},
		{"relay-b", "SESSION_KEY_FILE", "/run/secrets/session_key"},
	} {
		if got := relays[tc.svc][tc.key]; got != tc.want {
			t.Errorf("%s: %s=%q, want %q", tc.svc, tc.key, got, tc.want)
		}
	}
	if relays["relay-a"]["INSTANCE_ID"] == relays["relay-b"]["INSTANCE_ID"] {
		t.Error("the two HA instances need distinct INSTANCE_IDs")
	}
	for _, svc := range []string{"redis", "relay-a", "relay-b"} {
		if p := doc.Services[svc].Profiles; len(p) != 1 || p[0] != "ha" {
			t.Errorf("service %s: profiles %q, want [ha]", svc, p)
		}
	}
	for _, want := range []string{"./relay.env:/etc/finesse-relay/relay.env:ro", "./certs:/etc/finesse-relay/certs:ro", "relay-data:/var/lib/finesse-relay"} {
		if !contains(doc.Services["relay"].Volumes, want) {
			t.Errorf("service relay lacks the volume %q", want)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// metricRef matches the relay's metric names inside PromQL.
var metricRef = regexp.MustCompile(`\bfinesse_relay_[a-z0-9_]+`)

// dashboardAndAlertMetrics returns every finesse_relay_* name the dashboard
// and the alert rules use, with where it appears. (Only the relay's own
// namespace is checked: "up" in the alerts is Prometheus' scrape result,
// which no exporter serves.)
func dashboardAndAlertMetrics(t *testing.T) map[string]string {
	t.Helper()
	names := map[string]string{}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "expr" || k == "query" || k == "definition" {
					if s, ok := c.(string); ok {
						for _, n := range metricRef.FindAllString(s, -1) {
							names[n] = where
						}
					}
				}
				walk(where, c)
			}
		case []any:
			for _, c := range x {
				walk(where, c)
			}
		}
	}
	dash, err := os.ReadFile("../configs/grafana/finesse-relay.json")
	if err != nil {
		t.Fatal(err)
	}
	var d any
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	walk("configs/grafana/finesse-relay.json", d)
	rules, err := os.ReadFile("../configs/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var r any
	if err := yaml.Unmarshal(rules, &r); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	walk("configs/prometheus/alerts.yml", r)
	if len(names) < 10 {
		t.Fatalf("only %d metric names found in the dashboard and rules: the extraction is broken", len(names))
	}
	return names
}

// servedMetricNames are the metric families the relay's /metrics serves:
// those with samples in a scrape, and the vectors registered on the same
// registry that have no labelled series yet (e.g. credential failures
// before the first failure), which /metrics serves as soon as one exists.
func servedMetricNames(t *testing.T, scrape string, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	served := map[string]bool{}
	for _, line := range strings.Split(scrape, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			served[f[2]] = true
		}
	}
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			served[m[1]] = true
		}
	}
	return served
}

func TestDashboardAndAlertMetricsExist(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, _ := testCert(t, dir, time.Now().Add(90*24*time.Hour))
	cfg, err := LoadConfig(LoadOptions{NoFile: true, Getenv: noEnv, Set: map[string]string{
		"LISTEN_HOST": "127.0.0.1", "server.port": strconv.Itoa(freePort(t)), "STORE": "memory",
		"server.ssl.certificate": certPEM, "server.ssl.certificate-private-key": keyPEM,
	}})
	if err != nil {
		t.Fatal(err)
	}
	app, err := NewApp(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runSupervised(ctx, cfg, app, testLogger(t), noEnv) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 5 * time.Second} // #nosec G402 -- the test's own certificate
	var scrape string
	for deadline := time.Now().Add(10 * time.Second); ; {
		rsp, err := client.Get("https://" + app.Addr().String() + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(rsp.Body)
			rsp.Body.Close()
			scrape = string(b)
			if strings.Contains(scrape, `cert="server"`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed the serving certificate's expiry (err %v):\n%s", err, scrape)
		}
		time.Sleep(20 * time.Millisecond)
	}
	served := servedMetricNames(t, scrape, app.reg)
	if !served[certwatch.MetricName] {
		t.Fatalf("%s is not served", certwatch.MetricName)
	}
	used := dashboardAndAlertMetrics(t)
	var missing []string
	for name, where := range used {
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suf); ok && served[b] {
				base = b
			}
		}
		if !served[base] {
			missing = append(missing, name+" in "+where)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("named by the dashboard or the alerts but not served by /metrics:\n  %s", strings.Join(missing, "\n  "))
	}
}

func TestCertTargets(t *testing.T) {
	cfg, err := LoadConfig(LoadOptions{NoFile: true, Getenv: noEnv, Set: map[string]string{
		"FINESSE_A_HOST": "fa.example.com", "FINESSE_B_HOST": "fb.example.com", "FINESSE_B_HTTPS_PORT": "443",
		"IDS_URL": "https://ids1.example.com:8553", "ids2_url": "https://ids2.example.com",
		"client_id": "relay", "client_secret": "s", "REDIRECT_URI": "https://relay.example.com:1125/idscallback",
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tg := range certTargets(cfg) {
		if tg.Cert != nil || tg.Addr != "" {
			got = append(got, tg.Name+"="+tg.Addr)
		}
	}
	want := []string{"finesse_a=fa.example.com:8445", "finesse_b=fb.example.com:443", "ids=ids1.example.com:8553", "ids_2=ids2.example.com:443"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("targets %q, want %q (no serving certificate without TLS)", got, want)
	}
}
