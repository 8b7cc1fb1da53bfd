package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"finesse-relay/server/sim"
)

func TestCheckCommandExplainsWhatItFinds(t *testing.T) {
	s, err := sim.New(sim.Config{Fast: true, CallInterval: -1, ClientID: "check-test", ClientSecret: "s",
		RedirectURIs: []string{"https://relay.test:1125/idscallback"}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	ep := s.Endpoints()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, ep.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", writeFile(t, t.TempDir(), "relay.env", ""),
		"--set", "IDS_URL=" + ep.IdSURL, "--set", "client_id=check-test",
		"--set", "REDIRECT_URI=https://relay.test:1125/idscallback",
		"--set", "allowedOrigins=https://finesse-a.test:8445"}
	for _, side := range ep.Sides {
		p := "FINESSE_" + side.Name + "_"
		args = append(args, "--set", p+"HOST="+side.Host, "--set", p+"HTTPS_PORT="+strconv.Itoa(side.HTTPSPort))
	}

	var out, errb strings.Builder
	if code := run(ctx, append([]string{"check", "--set", "CA_FILE=" + ca}, args...), &out, &errb, noEnv); code != exitOK {
		t.Fatalf("healthy simulator: exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"side A SystemInfo: IN_SERVICE", "side B SystemInfo: IN_SERVICE", "certificate trusted", "IdS", "all checks passed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if code := run(ctx, append([]string{"check"}, args...), &out, &errb, noEnv); code != exitFail {
		t.Fatalf("without the CA: exit %d, want %d\n%s", code, exitFail, out.String())
	}
	if !strings.Contains(out.String(), "unknown CA: put that CA in CA_FILE") {
		t.Errorf("an untrusted certificate must name CA_FILE:\n%s", out.String())
	}

	// INSECURE_SKIP_VERIFY turns the certificate probe's verification off
	// too (the relay would connect), with a warning instead of a failure.
	out.Reset()
	if code := run(ctx, append([]string{"check", "--set", "INSECURE_SKIP_VERIFY=true"}, args...), &out, &errb, noEnv); code != exitOK {
		t.Fatalf("INSECURE_SKIP_VERIFY=true without the CA: exit %d, want %d\n%s", code, exitOK, out.String())
	}
	if !strings.Contains(out.String(), "NOT verified (INSECURE_SKIP_VERIFY=true)") {
		t.Errorf("the skipped verification must be said:\n%s", out.String())
	}

	s.SetSideInService("A", false)
	out.Reset()
	run(ctx, append([]string{"check", "--set", "CA_FILE=" + ca}, args...), &out, &errb, noEnv)
	if !strings.Contains(out.String(), "side A SystemInfo: OUT_OF_SERVICE") {
		t.Errorf("an out-of-service side must be reported:\n%s", out.String())
	}
}

func TestHelpExitsZero(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "commands:"},
		{[]string{"-h"}, "commands:"},
		{[]string{"help"}, "commands:"},
		{[]string{"serve", "-h"}, "-config"},
		{[]string{"serve", "--help"}, "-config"},
		{[]string{"demo", "-h"}, "-rona"},
		{[]string{"check", "--help"}, "-set"},
		{[]string{"bench", "-h"}, "bench"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb strings.Builder
			if code := run(context.Background(), tc.args, &out, &errb, noEnv); code != exitOK {
				t.Fatalf("exit %d, want 0; stderr %s", code, errb.String())
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("stdout lacks %q:\n%s", tc.want, out.String())
			}
		})
	}
}

func TestDemoWritesItsCA(t *testing.T) {
	path, cleanup, err := writeDemoCA([]byte("-----BEGIN CERTIFICATE-----\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.HasPrefix(string(b), "-----BEGIN") {
		t.Fatalf("CA file %s: %v %q", path, err, b)
	}
	cleanup()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("CA file %s left behind after cleanup: %v", path, err)
	}
}
