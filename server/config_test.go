package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// writeFile writes content into dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testCert makes a self-signed certificate valid until notAfter and writes
// it as PEM files and as a PKCS12 keystore protected by "changeit".
func testCert(t *testing.T, dir string, notAfter time.Time) (certPEM, keyPEM, p12 string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter, DNSNames: []string{"relay.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPEM = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyPEM = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
	data, err := pkcs12.Modern.Encode(key, leaf, nil, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	p12 = writeFile(t, dir, "relay.p12", string(data))
	return certPEM, keyPEM, p12
}

func noEnv(string) string { return "" }

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(LoadOptions{File: filepath.Join(t.TempDir(), "absent.env"), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPSPort != 1125 || cfg.TLSEnabled || cfg.HTTPPort != 0 {
		t.Errorf("port/tls defaults: got %d tls=%v http=%d, want 1125 plain HTTP", cfg.HTTPSPort, cfg.TLSEnabled, cfg.HTTPPort)
	}
	if cfg.SessionGrace != 30*time.Second || cfg.RingSize != 1024 || cfg.TicketTTL != 30*time.Second || cfg.XMPPResource != "finesse-relay" {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
}

func TestLoadConfigSSOUtilityKeysAndPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "relay.env", `# SSO Utility keys, original spellings
ids1_url=https://ids-pub.example.com:8553
ids2_url = https://ids-sub.example.com:8553
redirect_base_uri="https://relay.example.com:1125"
client_id=abc123
allowedOrigins=https://finesse-a.example.com:8445, https://FINESSE-B.example.com:8445
export FINESSE_A_HOST=finesse-a.example.com
FINESSE_B_HOST=finesse-b.example.com
FINESSE_B_XMPP_TRANSPORT=tls
SESSION_GRACE=10s
`)
	env := map[string]string{"SESSION_GRACE": "20s", "ALLOWED_ORIGINS": ""}
	cfg, err := LoadConfig(LoadOptions{
		File: file, FileRequired: true,
		Getenv: func(k string) string { return env[k] },
		Set:    map[string]string{"SESSION_GRACE": "40s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.IdSURLs) != 2 || cfg.IdSURLs[1].Host != "ids-sub.example.com:8553" {
		t.Errorf("IdS nodes: %v", cfg.IdSURLs)
	}
	if got := cfg.RedirectURL.String(); got != "https://relay.example.com:1125/idscallback" {
		t.Errorf("redirect: %s", got)
	}
	if got := cfg.PublicURL.String(); got != "https://relay.example.com:1125" {
		t.Errorf("public URL: %s", got)
	}
	if strings.Join(cfg.AllowedOrigins, " ") != "https://finesse-a.example.com:8445 https://finesse-b.example.com:8445" {
		t.Errorf("origins: %v", cfg.AllowedOrigins)
	}
	if cfg.SessionGrace != 40*time.Second {
		t.Errorf("flag must win over env and file: grace %v", cfg.SessionGrace)
	}
	if len(cfg.Sides) != 2 || cfg.Sides[0].XMPPPort != 8445 || cfg.Sides[1].XMPPTransport != "tls" || cfg.Sides[1].XMPPPort != 5223 {
		t.Errorf("sides: %+v", cfg.Sides)
	}
	env["SESSION_GRACE"] = "20s"
	cfg, err = LoadConfig(LoadOptions{File: file, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SessionGrace != 20*time.Second {
		t.Errorf("env must win over file: grace %v", cfg.SessionGrace)
	}
}

func TestLoadConfigCertificates(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, p12 := testCert(t, dir, time.Now().Add(24*time.Hour))
	expDir := t.TempDir()
	_, _, expiredP12 := testCert(t, expDir, time.Now().Add(-time.Hour))

	tests := []struct {
		name    string
		set     map[string]string
		wantKey string // "" = success
	}{
		{"pkcs12", map[string]string{"server.ssl.key-store": p12, "server.ssl.key-store-password": "changeit"}, ""},
		{"pem", map[string]string{"server.ssl.key-store-type": "PEM", "server.ssl.certificate": certPEM, "server.ssl.certificate-private-key": keyPEM}, ""},
		{"wrong keystore password", map[string]string{"server.ssl.key-store": p12, "server.ssl.key-store-password": "nope"}, "server.ssl.key-store-password"},
		{"missing keystore", map[string]string{"server.ssl.key-store": filepath.Join(dir, "absent.p12")}, "server.ssl.key-store"},
		{"not a keystore", map[string]string{"server.ssl.key-store": certPEM}, "server.ssl.key-store"},
		{"pem without key", map[string]string{"server.ssl.certificate": certPEM}, "server.ssl.certificate"},
		{"enabled without cert", map[string]string{"server.ssl.enabled": "true"}, "server.ssl.enabled"},
		{"expired", map[string]string{"server.ssl.key-store": expiredP12, "server.ssl.key-store-password": "changeit"}, "server.ssl.key-store"},
		{"http port without tls", map[string]string{"server.http.port": "8080"}, "server.http.port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(LoadOptions{File: filepath.Join(dir, "absent.env"), Getenv: noEnv, Set: tt.set})
			if tt.wantKey == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !cfg.TLSEnabled || cfg.Certificate == nil {
					t.Fatal("TLS must be on with a certificate")
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key != tt.wantKey {
				t.Fatalf("want a ConfigError naming %q, got %v", tt.wantKey, err)
			}
		})
	}
}

func TestLoadConfigRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		file    string
		set     map[string]string
		wantKey string
	}{
		{"unknown key in file", "FINESSE_HOST=x\n", nil, "relay.env:1"},
		{"line without =", "# c\nFINESSE_A_HOST\n", nil, "relay.env:2"},
		{"unknown flag key", "", map[string]string{"nope": "1"}, "nope"},
		{"malformed IdS URL", "", map[string]string{"IDS_URL": "ids.example.com:8553"}, "IDS_URL"},
		{"IdS without client id", "", map[string]string{"IDS_URL": "https://ids:8553", "REDIRECT_URI": "https://r/idscallback"}, "client_id"},
		{"IdS without redirect", "", map[string]string{"IDS_URL": "https://ids:8553", "client_id": "x"}, "REDIRECT_URI"},
		{"bad port", "", map[string]string{"server.port": "70000"}, "server.port"},
		{"bad origin", "", map[string]string{"allowedOrigins": "finesse.example.com"}, "allowedOrigins"},
		{"origin with path", "", map[string]string{"allowedOrigins": "https://f.example.com/desktop"}, "allowedOrigins"},
		{"desktop resource", "", map[string]string{"XMPP_RESOURCE": "Desktop"}, "XMPP_RESOURCE"},
		{"bad transport", "", map[string]string{"FINESSE_A_HOST": "f", "FINESSE_A_XMPP_TRANSPORT": "xmpp"}, "FINESSE_A_XMPP_TRANSPORT"},
		{"host with port", "", map[string]string{"FINESSE_A_HOST": "f.example.com:8445"}, "FINESSE_A_HOST"},
		{"B without A", "", map[string]string{"FINESSE_B_HOST": "f"}, "FINESSE_A_HOST"},
		{"bad duration", "", map[string]string{"SESSION_GRACE": "30"}, "SESSION_GRACE"},
		{"bad CA file", "", map[string]string{"CA_FILE": filepath.Join(dir, "none.pem")}, "CA_FILE"},
		{"bad log level", "", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"unknown ACTIVE_INSTANCES", "", map[string]string{"ACTIVE_INSTANCES": "all"}, "ACTIVE_INSTANCES"},
		{"many without a shared store", "", map[string]string{"ACTIVE_INSTANCES": "many", "STORE": "file:/tmp/x.db"}, "ACTIVE_INSTANCES"},
		{"lease too short", "", map[string]string{"AGENT_LEASE_TTL": "1s"}, "AGENT_LEASE_TTL"},
		{"lease past Finesse's presence window", "", map[string]string{"AGENT_LEASE_TTL": "60s"}, "AGENT_LEASE_TTL"},
		{"pprof without a separate metrics listener", "", map[string]string{"PPROF": "true"}, "PPROF"},
		{"pprof not a boolean", "", map[string]string{"PPROF": "on please", "METRICS_LISTEN": "127.0.0.1:9125"}, "PPROF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, t.TempDir(), "relay.env", tt.file)
			_, err := LoadConfig(LoadOptions{File: file, Getenv: noEnv, Set: tt.set})
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("want a ConfigError, got %v", err)
			}
			if !strings.HasSuffix(ce.Key, tt.wantKey) {
				t.Fatalf("error names %q, want %q (%v)", ce.Key, tt.wantKey, err)
			}
			if strings.Contains(ce.Error(), "\n") {
				t.Fatalf("error must be one line: %q", ce.Error())
			}
		})
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	cfg, err := LoadConfig(LoadOptions{File: filepath.Join(t.TempDir(), "x"), Getenv: noEnv,
		Set: map[string]string{"INSECURE_SKIP_VERIFY": "true", "allowedOrigins": "*"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 2 {
		t.Fatalf("want two warnings (insecure TLS, wildcard origin), got %q", cfg.Warnings)
	}
}

func TestRunExitStatus(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	tests := []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"port in use", []string{"serve", "--listen", "127.0.0.1:" + port}, exitConfig, "server.port"},
		{"unknown key", []string{"serve", "--set", "bogus=1"}, exitConfig, "bogus"},
		{"missing config file", []string{"serve", "--config", "/nonexistent/relay.env"}, exitConfig, "/nonexistent/relay.env"},
		{"unknown command", []string{"frobnicate"}, exitConfig, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb strings.Builder
			got := run(t.Context(), tt.args, &out, &errb, noEnv)
			if got != tt.want || !strings.Contains(errb.String(), tt.msg) {
				t.Fatalf("exit %d (want %d), stderr %q (want it to mention %q)", got, tt.want, errb.String(), tt.msg)
			}
		})
	}
}
