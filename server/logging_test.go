package main

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestRedactingLoggerNeverWritesSecrets(t *testing.T) {
	const (
		jwt      = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMDAxIn0.c2lnbmF0dXJlLXZhbHVl"
		password = "s3cr3t-Passw0rd"
		code     = "AuthC0de-777"
		cookie   = "relay_session=abcdef0123456789"
	)
	var buf strings.Builder
	for _, format := range []string{"json", "console"} {
		log, err := newLogger("debug", format, &syncBuffer{&buf})
		if err != nil {
			t.Fatal(err)
		}
		log = log.With(zap.String("authToken", jwt))
		log.Info("calling Finesse with Authorization: Bearer "+jwt,
			zap.String("password", password),
			zap.String("Authorization", "Basic MTAwMTpkZW1v"),
			zap.String("url", "https://relay/idscallback?code="+code+"&state=xyz"),
			zap.String("Cookie", cookie),
			zap.String("refresh_token", "rt-value"),
			zap.Error(errors.New("token "+jwt+" rejected")),
			zap.Strings("headers", []string{"Authorization: Bearer " + jwt}),
			zap.Any("req", map[string]string{"note": "Bearer " + jwt}),
			zap.String("agent", "1001"),
		)
	}
	out := buf.String()
	for _, secret := range []string{jwt, password, code, cookie, "rt-value", "MTAwMTpkZW1v"} {
		if strings.Contains(out, secret) {
			t.Errorf("log output contains secret %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, `"agent":"1001"`) {
		t.Errorf("ordinary fields must survive redaction:\n%s", out)
	}
	if !strings.Contains(out, redacted) {
		t.Errorf("want the %s marker in the output", redacted)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Bearer abc.def-ghi", "Bearer " + redacted},
		{"basic QWxhZGRpbjpvcGVu", "basic " + redacted},
		{"/idscallback?code=x1&state=y2", "/idscallback?code=" + redacted + "&state=" + redacted},
		{"/ws?ticket=T0k3n", "/ws?ticket=" + redacted},
		{"nothing secret here", "nothing secret here"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// syncBuffer adapts a strings.Builder to zapcore.WriteSyncer.
type syncBuffer struct{ b *strings.Builder }

func (s *syncBuffer) Write(p []byte) (int, error) { return s.b.Write(p) }
func (s *syncBuffer) Sync() error                 { return nil }
