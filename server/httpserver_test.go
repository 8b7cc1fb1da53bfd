package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// The plain-HTTP redirect keeps the configured host whatever request-target
// a client sends: an opaque or "*" target (no browser sends one) must not be
// appended after the host, where it would change it.
func TestRedirectHandlerKeepsConfiguredHost(t *testing.T) {
	public := &url.URL{Scheme: "https", Host: "relay.example.test:8443"}
	for _, tc := range []struct {
		name string
		url  *url.URL
		want string
	}{
		{"path and query", &url.URL{Path: "/healthz", RawQuery: "x=1"}, "https://relay.example.test:8443/healthz?x=1"},
		{"absolute form", &url.URL{Scheme: "http", Host: "evil.test", Path: "/y"}, "https://relay.example.test:8443/y"},
		{"double slash path", &url.URL{Path: "//evil.test/z"}, "https://relay.example.test:8443//evil.test/z"},
		{"opaque target", &url.URL{Scheme: "http", Opaque: "evil.test"}, "https://relay.example.test:8443/"},
		{"asterisk", &url.URL{Path: "*"}, "https://relay.example.test:8443/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.URL = tc.url
			w := httptest.NewRecorder()
			redirectHandler(public).ServeHTTP(w, r)
			if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != tc.want {
				t.Errorf("%s: %d → %q, want 308 → %q", tc.url, w.Code, w.Header().Get("Location"), tc.want)
			}
		})
	}
}
