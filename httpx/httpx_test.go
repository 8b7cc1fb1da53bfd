package httpx

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

func TestOrigins(t *testing.T) {
	policy := NewOrigins("https://finesse-a.example.com:8445", "https://Desk.example", "http://lab:80/")
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://finesse-a.example.com:8445", true},
		{"HTTPS://FINESSE-A.example.com:8445/", true},
		{"https://finesse-a.example.com", false},
		{"https://desk.example:443", true},
		{"https://desk.example", true},
		{"http://desk.example", false},
		{"http://lab", true},
		{"http://lab:80", true},
		{"null", false},
		{"", false},
		{"https://desk.example.evil.com", false},
		{"https://desk.example/path", false},
	}
	for _, tc := range tests {
		if got := policy.Allows(tc.origin); got != tc.want {
			t.Errorf("Allows(%q) = %v, want %v", tc.origin, got, tc.want)
		}
	}
	if NewOrigins().Allows("https://x") {
		t.Error("empty policy allowed an origin")
	}
	anyPolicy := NewOrigins("*")
	if !anyPolicy.Allows("null") || !anyPolicy.AllowsAny() {
		t.Error(`"*" must allow every origin, null included`)
	}
}

func TestNormalizeOriginIPv6(t *testing.T) {
	if got := NormalizeOrigin("https://[::1]:443"); got != "https://[::1]" {
		t.Errorf("got %q", got)
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, 429, "too_many_attempts", "wait")
	if rec.Code != 429 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d headers %v", rec.Code, rec.Header())
	}
	var b ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Code != "too_many_attempts" || b.Error.Message != "wait" {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
}
