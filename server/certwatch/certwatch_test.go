package certwatch

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// selfSigned makes a certificate for host expiring at notAfter.
func selfSigned(t *testing.T, host string, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsServer is an httptest TLS server presenting a certificate that expires
// at notAfter.
func tlsServer(t *testing.T, host string, notAfter time.Time) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t, host, notAfter)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func gauge(t *testing.T, w *Watcher, name string) float64 {
	t.Helper()
	return testutil.ToFloat64(w.expiry.WithLabelValues(name))
}

func TestProbesEndpointsAndStaticCertificates(t *testing.T) {
	soon := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	later := time.Now().Add(400 * 24 * time.Hour).Truncate(time.Second)
	expired := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	a := tlsServer(t, "finesse-a.example.com", soon)
	b := tlsServer(t, "finesse-b.example.com", expired)
	ids := tlsServer(t, "ids.example.com", later)
	serverCert := selfSigned(t, "relay.example.com", later)

	reg := prometheus.NewRegistry()
	w, err := New(reg, []Target{
		{Name: "server", Cert: LeafOf(&serverCert)},
		{Name: "finesse_a", Addr: a.Listener.Addr().String(), ServerName: "finesse-a.example.com"},
		{Name: "finesse_b", Addr: b.Listener.Addr().String()},
		{Name: "ids", Addr: ids.Listener.Addr().String()},
		{Name: "unused"}, // no certificate configured: ignored
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.ProbeAll(context.Background())
	for name, want := range map[string]time.Time{"server": later, "finesse_a": soon, "finesse_b": expired, "ids": later} {
		if got := gauge(t, w, name); got != float64(want.Unix()) {
			t.Errorf("%s = %v, want %v (%s)", name, got, want.Unix(), want)
		}
	}
	if n := testutil.CollectAndCount(reg, MetricName); n != 4 {
		t.Errorf("%d series, want 4 (the empty target is not one)", n)
	}
}

func TestFailedProbeKeepsTheLastValueAndRunStops(t *testing.T) {
	notAfter := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	srv := tlsServer(t, "finesse-a.example.com", notAfter)
	addr := srv.Listener.Addr().String()
	dialed := make(chan struct{}, 16)
	reg := prometheus.NewRegistry()
	w, err := New(reg, []Target{{Name: "finesse_a", Addr: addr}}, Options{
		Interval: 20 * time.Millisecond, Timeout: time.Second,
		Dial: func(ctx context.Context, network, a string) (net.Conn, error) {
			dialed <- struct{}{}
			return (&net.Dialer{}).DialContext(ctx, network, a)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-dialed
	deadline := time.Now().Add(5 * time.Second)
	for gauge(t, w, "finesse_a") != float64(notAfter.Unix()) {
		if time.Now().After(deadline) {
			t.Fatal("the first probe never set the gauge")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.Close() // Finesse goes away: probes fail from now on
	for i := 0; i < 3; i++ {
		select {
		case <-dialed:
		case <-time.After(5 * time.Second):
			t.Fatal("Run stopped probing")
		}
	}
	if got := gauge(t, w, "finesse_a"); got != float64(notAfter.Unix()) {
		t.Fatalf("after failed probes the gauge is %v, want the last known %v", got, notAfter.Unix())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestProbeErrorsNameTheTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A plain TCP server that closes at once: the handshake fails.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	defer ln.Close()
	w, err := New(prometheus.NewRegistry(), nil, Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.probe(context.Background(), Target{Name: "ids", Addr: ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "ids") {
		t.Fatalf("err = %v, want one naming the address and the target", err)
	}
}

func TestNewRefusesDuplicatesAndDoubleRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg, []Target{{Name: "ids", Addr: "a:1"}, {Name: "ids", Addr: "b:1"}}, Options{}); err == nil {
		t.Fatal("a repeated name must be refused")
	}
	if _, err := New(reg, nil, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg, nil, Options{}); err == nil || !strings.Contains(err.Error(), MetricName) {
		t.Fatalf("second registration: err = %v", err)
	}
	if LeafOf(nil) != nil || LeafOf(&tls.Certificate{}) != nil {
		t.Fatal("LeafOf of nothing must be nil")
	}
}
