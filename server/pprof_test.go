package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// PPROF=true serves Go's profiles on METRICS_LISTEN, never on the public
// port; without PPROF neither serves them.
func TestPprofOnlyOnTheMetricsListener(t *testing.T) {
	get := func(t *testing.T, url, auth string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		rsp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer rsp.Body.Close()
		b, _ := io.ReadAll(rsp.Body)
		return rsp.StatusCode, b
	}
	gzipped := func(b []byte) bool { return bytes.HasPrefix(b, []byte{0x1f, 0x8b}) } // profile.proto is gzipped
	paths := []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"}

	t.Run("PPROF=true", func(t *testing.T) {
		token := "pprof-test-token-0123456789abcdef"
		tokenFile := writeFile(t, t.TempDir(), "metrics.token", token)
		st := startStack(t, stackOptions{relay: func(c *Config) {
			c.MetricsListen, c.PProf, c.MetricsTokenFile = "127.0.0.1:0", true, tokenFile
		}})
		metrics := "http://" + st.app.metricsLn.Addr().String()
		for _, p := range paths {
			if code, _ := get(t, st.base+p, token); code != http.StatusNotFound {
				t.Errorf("public port GET %s: %d, want 404", p, code)
			}
		}
		if code, _ := get(t, metrics+"/debug/pprof/heap", ""); code != http.StatusUnauthorized {
			t.Errorf("metrics listener without the token: %d, want 401", code)
		}
		if code, b := get(t, metrics+"/debug/pprof/heap", token); code != http.StatusOK || !gzipped(b) {
			t.Errorf("metrics listener GET /debug/pprof/heap: %d, %d bytes, want 200 and a gzipped profile", code, len(b))
		}
		if code, b := get(t, metrics+"/debug/pprof/profile?seconds=1", token); code != http.StatusOK || !gzipped(b) {
			t.Errorf("metrics listener GET /debug/pprof/profile: %d, %q, want 200 and a gzipped profile", code, b[:min(len(b), 200)])
		}
		if code, b := get(t, metrics+"/debug/pprof/goroutine?debug=1", token); code != http.StatusOK || !strings.Contains(string(b), "goroutine profile") {
			t.Errorf("metrics listener GET /debug/pprof/goroutine?debug=1: %d", code)
		}
		if code, _ := get(t, metrics+"/debug/pprof/cmdline", token); code == http.StatusOK {
			t.Error("/debug/pprof/cmdline is served: --set may carry a secret")
		}
		if code, _ := get(t, metrics+"/metrics", token); code != http.StatusOK {
			t.Errorf("metrics listener GET /metrics: %d", code)
		}
	})

	t.Run("PPROF=false", func(t *testing.T) {
		st := startStack(t, stackOptions{relay: func(c *Config) { c.MetricsListen = "127.0.0.1:0" }})
		metrics := "http://" + st.app.metricsLn.Addr().String()
		for _, base := range []string{st.base, metrics} {
			if code, _ := get(t, base+"/debug/pprof/heap", ""); code != http.StatusNotFound {
				t.Errorf("%s/debug/pprof/heap without PPROF: %d, want 404", base, code)
			}
		}
	})
}

// check refuses PPROF=true without METRICS_LISTEN, naming PPROF.
func TestCheckRefusesPprofWithoutMetricsListen(t *testing.T) {
	var out, errb strings.Builder
	args := []string{"check", "--config", writeFile(t, t.TempDir(), "relay.env", "PPROF=true\n")}
	if code := run(context.Background(), args, &out, &errb, noEnv); code != exitConfig {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitConfig, out.String(), errb.String())
	}
	if msg := out.String() + errb.String(); !strings.Contains(msg, "PPROF") || !strings.Contains(msg, "METRICS_LISTEN") {
		t.Errorf("the refusal names neither PPROF nor METRICS_LISTEN: %q", msg)
	}
}
