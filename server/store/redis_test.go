package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"finesse-relay/internal/redistest"
)

// redisURL returns FINESSE_REDIS_URL (scripts/redis-start.sh prints one).
// Without it the test fails under CI and is skipped elsewhere.
func redisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("FINESSE_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("FINESSE_REDIS_URL is not set: scripts/test.sh starts redis-server with scripts/redis-start.sh")
		}
		t.Skip("FINESSE_REDIS_URL not set: run export FINESSE_REDIS_URL=$(scripts/redis-start.sh)")
	}
	return u
}

// testPrefix is a key prefix of the test's own, so tests and packages
// sharing one redis-server do not see each other's keys.
func testPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "finesse-relay-test:" + hex.EncodeToString(b) + ":"
}

func openRedisHarness(t *testing.T) harness {
	u := redisURL(t)
	s, err := OpenRedis(context.Background(), u, RedisOptions{Prefix: testPrefix()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deleteAll(t, u, s.prefix)
		_ = s.Close()
	})
	return harness{s, time.Sleep, redisTTL}
}

// deleteAll removes every key under prefix, through a client of its own
// (the test may have closed the store).
func deleteAll(t testing.TB, url, prefix string) {
	c, err := OpenRedis(context.Background(), url, RedisOptions{Prefix: prefix})
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer c.Close()
	ctx := context.Background()
	iter := c.c.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		c.c.Del(ctx, iter.Val())
	}
}

func TestRedisKeyLayout(t *testing.T) {
	u := redisURL(t)
	ctx := context.Background()
	prefix := testPrefix()
	s, err := OpenRedis(ctx, u+"?key_prefix="+prefix, RedisOptions{Prefix: "ignored:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer deleteAll(t, u, prefix)
	if err := s.Put(ctx, "sess:1", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, "agent:7", 10, 0, 41)
	if _, _, err := s.Acquire(ctx, "agent:7", "relay-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key, typ string
		ttl      bool
	}{
		{prefix + "k:sess:1", "string", true},
		{prefix + "s:agent:7", "stream", true},
		{prefix + "l:agent:7", "string", true},
		{prefix + "f:agent:7", "string", true},
	}
	for _, c := range checks {
		typ, err := s.c.Type(ctx, c.key).Result()
		if err != nil || typ != c.typ {
			t.Errorf("TYPE %s = %q, %v; want %s", c.key, typ, err, c.typ)
		}
		if pttl, _ := s.c.PTTL(ctx, c.key).Result(); c.ttl && pttl <= 0 {
			t.Errorf("%s has no expiry (PTTL %v)", c.key, pttl)
		}
	}
	msgs, err := s.c.XRange(ctx, prefix+"s:agent:7", "-", "+").Result()
	if err != nil || len(msgs) != 2 || msgs[0].ID != "1-0" || msgs[1].ID != "42-0" {
		t.Fatalf("stream ids = %v, %v; want 1-0 and 42-0 (seq+1)", msgs, err)
	}
}

func TestRedisOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dead := freeAddr(t)
	tests := []struct {
		name, url string
		says      []string
		unavail   bool
	}{
		{"nothing listening", "redis://:hunter2@" + dead + "/0?dial_timeout=200ms&max_retries=-1", []string{"redis://:xxxxx@" + dead + "/0", "unavailable", "connection refused"}, true},
		{"bad option", "redis://127.0.0.1:1/0?bogus=1", []string{"unexpected option: bogus"}, false},
		{"bad scheme", "http://127.0.0.1/", []string{"invalid URL scheme"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenRedis(ctx, tt.url, RedisOptions{})
			if err == nil {
				s.Close()
				t.Fatal("OpenRedis succeeded")
			}
			for _, w := range tt.says {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
			if errors.Is(err, ErrUnavailable) != tt.unavail {
				t.Errorf("error %v: ErrUnavailable = %v, want %v", err, !tt.unavail, tt.unavail)
			}
		})
	}
}

// freeAddr returns a loopback address nothing listens on (just freed).
func freeAddr(t testing.TB) string { return redistest.FreeAddr(t) }

// startPrivateRedis starts a redis-server of the test's own without
// persistence (same skip/fail rule as the shared server).
func startPrivateRedis(t testing.TB, args ...string) *redistest.Server {
	redisURL(t)
	if len(args) == 0 {
		args = []string{"--port", "{port}"}
	}
	return redistest.Start(t, append(args, "--save", "", "--appendonly", "no")...)
}

// TestRedisOutage: with Redis down every call fails with ErrUnavailable
// (promptly); when it is back the same store works again by itself.
func TestRedisOutage(t *testing.T) {
	p := startPrivateRedis(t)
	ctx := context.Background()
	s, err := OpenRedis(ctx, "redis://"+p.Addr+"/0?dial_timeout=300ms&read_timeout=500ms&max_retries=1", RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "before", []byte("1"), time.Minute); err != nil {
		t.Fatal(err)
	}

	// A Read waiting when Redis goes away returns an error, not a hang.
	waitErr := make(chan error, 1)
	go func() {
		_, err := s.Read(ctx, "agent:1", 0, 10, 30*time.Second)
		waitErr <- err
	}()
	time.Sleep(200 * time.Millisecond)
	p.Kill()

	calls := []struct {
		name string
		call func() error
	}{
		{"Put", func() error { return s.Put(ctx, "k", []byte("v"), time.Minute) }},
		{"Get", func() error { _, err := s.Get(ctx, "before"); return err }},
		{"Take", func() error { _, err := s.Take(ctx, "before"); return err }},
		{"Incr", func() error { _, err := s.Incr(ctx, "n", 1, time.Minute); return err }},
		{"Append", func() error { return s.Append(ctx, "agent:1", Entry{Seq: 1}, 10, time.Minute) }},
		{"Acquire", func() error { _, _, err := s.Acquire(ctx, "agent:1", "a", time.Minute); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
	}
	for _, c := range calls {
		t0 := time.Now()
		err := c.call()
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", c.name, err)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("%s with Redis down took %v", c.name, d)
		}
	}
	select {
	case err := <-waitErr:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("waiting Read when Redis went down: %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("a waiting Read hung when Redis went down")
	}

	p.Start() // empty: no persistence
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the store did not recover within 10 s of Redis coming back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.Put(ctx, "after", []byte("2"), time.Minute); err != nil {
		t.Fatalf("Put after recovery: %v", err)
	}
	if v, err := s.Get(ctx, "after"); err != nil || string(v) != "2" {
		t.Fatalf("Get after recovery = %q, %v", v, err)
	}
	appendAll(t, s, "agent:1", 10, 1)
}

// TestRedisSentinel: with master_name the URL names Sentinels, and the
// store finds the primary through them.
func TestRedisSentinel(t *testing.T) {
	primary := startPrivateRedis(t)
	_, pport, _ := net.SplitHostPort(primary.Addr)
	conf := filepath.Join(t.TempDir(), "sentinel.conf") // Sentinel rewrites its config
	if err := os.WriteFile(conf, []byte("sentinel monitor relay-primary 127.0.0.1 "+pport+" 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel := startPrivateRedis(t, conf, "--sentinel", "--port", "{port}")
	ctx := context.Background()
	s, err := OpenRedis(ctx, "redis://"+sentinel.Addr+"/0?master_name=relay-primary&addr="+freeAddr(t), RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "via-sentinel", []byte("yes"), time.Minute); err != nil {
		t.Fatal(err)
	}
	direct, err := OpenRedis(ctx, "redis://"+primary.Addr+"/0", RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if v, err := direct.Get(ctx, "via-sentinel"); err != nil || string(v) != "yes" {
		t.Fatalf("the primary holds %q, %v; want the value written through Sentinel", v, err)
	}
}

// TestRedisTLS: rediss:// with the caller's trust store; without it the
// server's certificate is refused.
func TestRedisTLS(t *testing.T) {
	dir := t.TempDir()
	pool := writeTestCert(t, dir)
	p := startPrivateRedis(t, "--port", "0", "--tls-port", "{port}",
		"--tls-cert-file", filepath.Join(dir, "cert.pem"), "--tls-key-file", filepath.Join(dir, "key.pem"),
		"--tls-auth-clients", "no")
	ctx := context.Background()
	url := "rediss://" + p.Addr + "/0?dial_timeout=2s&max_retries=-1"
	s, err := OpenRedis(ctx, url, RedisOptions{TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "over-tls", []byte("1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenRedis(ctx, url, RedisOptions{}); err == nil {
		s.Close()
		t.Fatal("a self-signed server certificate was accepted without the caller's trust store")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("error %q does not mention the certificate", err)
	}
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its
// key to dir and returns a pool trusting it.
func writeTestCert(t *testing.T, dir string) *x509.CertPool {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "relay test redis"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}
