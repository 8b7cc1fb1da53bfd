package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSimCommandWritesAUsableRelayEnv: the relay.env that `sim` writes
// loads as the relay's configuration and points at the running simulator.
func TestSimCommandWritesAUsableRelayEnv(t *testing.T) {
	for _, transport := range []string{"websocket", "tls"} {
		t.Run(transport, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			var stdout, stderr bytes.Buffer
			done := make(chan int, 1)
			go func() {
				done <- cmdSim(ctx, []string{"--dir", dir, "--agents", "3", "--transport", transport, "--relay-url", "http://127.0.0.1:9999"}, &stdout, &stderr)
			}()
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, err := os.Stat(filepath.Join(dir, simEndpointsFile)); err == nil {
					break
				}
				if time.Now().After(deadline) {
					cancel()
					t.Fatalf("no endpoints.json; stderr: %s", stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			cfg, err := LoadConfig(LoadOptions{File: filepath.Join(dir, simEnvFile), FileRequired: true, Getenv: func(string) string { return "" }})
			if err != nil {
				cancel()
				t.Fatalf("relay.env does not load: %v", err)
			}
			cancel()
			if code := <-done; code != exitOK {
				t.Fatalf("sim exit %d: %s", code, stderr.String())
			}
			if cfg.RootCAs == nil || len(cfg.Sides) != 2 || cfg.Sides[0].XMPPTransport != transport || cfg.RedirectURL.String() != "http://127.0.0.1:9999/idscallback" {
				t.Errorf("config: CA %v, sides %+v, redirect %v", cfg.RootCAs != nil, cfg.Sides, cfg.RedirectURL)
			}
			if strings.Contains(stdout.String(), cfg.ClientSecret) || !strings.Contains(stdout.String(), "client_secret=(in the file)") {
				t.Errorf("stdout shows the client secret:\n%s", stdout.String())
			}
			if !strings.Contains(stdout.String(), "CA file: "+filepath.Join(dir, simCAFile)) {
				t.Errorf("stdout does not name the CA file:\n%s", stdout.String())
			}
		})
	}
}

func TestSimCommandRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--transport", "smoke"}, {"--agents", "0"}, {"--relay-url", "ftp://x"}, {"extra"}} {
		var stdout, stderr bytes.Buffer
		if code := cmdSim(context.Background(), args, &stdout, &stderr); code != exitConfig {
			t.Errorf("%v: exit %d, want %d", args, code, exitConfig)
		}
	}
}
