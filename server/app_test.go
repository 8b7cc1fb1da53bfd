package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestServeHTTPSWithRedirectAndGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, _ := testCert(t, dir, time.Now().Add(24*time.Hour))
	httpsPort, httpPort := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		exit <- run(ctx, []string{"serve", "--config", writeFile(t, dir, "relay.env", "STORE=file:"+filepath.Join(dir, "relay.db")+"\n"),
			"--listen", "127.0.0.1:" + strconv.Itoa(httpsPort),
			"--set", "server.http.port=" + strconv.Itoa(httpPort),
			"--set", "server.ssl.certificate=" + certPEM, "--set", "server.ssl.certificate-private-key=" + keyPEM,
			"--set", "LOG_FORMAT=json"}, io.Discard, &syncBuffer{&stderr}, noEnv)
	}()
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // #nosec G402 -- the test's own self-signed certificate
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       2 * time.Second,
	}
	base := "https://127.0.0.1:" + strconv.Itoa(httpsPort)
	var rsp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if rsp, err = client.Get(base + "/testbackend"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("HTTPS never answered: %v\n%s", err, stderr.String())
	}
	body, _ := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	if rsp.StatusCode != http.StatusOK || string(body) != testBackendBody {
		t.Fatalf("GET /testbackend over HTTPS: %d %q", rsp.StatusCode, body)
	}
	rsp, err = client.Get("http://127.0.0.1:" + strconv.Itoa(httpPort) + "/healthz?x=1")
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	if want := base + "/healthz?x=1"; rsp.StatusCode != http.StatusPermanentRedirect || rsp.Header.Get("Location") != want {
		t.Fatalf("plain HTTP: %d → %q, want 308 → %q", rsp.StatusCode, rsp.Header.Get("Location"), want)
	}
	cancel() // what SIGINT/SIGTERM do in main
	select {
	case code := <-exit:
		if code != exitOK {
			t.Fatalf("graceful shutdown exit status %d, want 0\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("the shutdown is logged:\n%s", stderr.String())
	}
}
