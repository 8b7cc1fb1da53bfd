package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestAnswers(t *testing.T) {
	ids := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("token") == "tok-1002" {
			_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "username": "1002"})
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"active": false})
	}))
	defer ids.Close()
	c := &checker{passwords: map[string]string{"1002": "pass:1002", "admin": "adminpass"}, introspect: ids.URL, client: &http.Client{Timeout: 5 * time.Second}}
	tests := []struct {
		req  string
		want bool
	}{
		{"auth:1002:finesse.local:pass:1002", true}, // a password may contain ':'
		{"auth:1002:finesse.local:wrong", false},
		{"auth:1002:finesse.local:tok-1002", true},
		{"auth:1003:finesse.local:tok-1002", false}, // another user's token
		{"auth:1002:finesse.local:", false},
		{"isuser:1002:finesse.local", true},
		{"isuser:9999:finesse.local", false},
		{"setpass:1002:finesse.local:x", false},
		{"tryregister:new:finesse.local:x", false},
		{"garbage", false},
	}
	for _, tt := range tests {
		t.Run(tt.req, func(t *testing.T) {
			if got := c.answer(tt.req); got != tt.want {
				t.Errorf("answer(%q) = %v, want %v", tt.req, got, tt.want)
			}
		})
	}
}

func TestServeFraming(t *testing.T) {
	c := &checker{passwords: map[string]string{"1001": "p"}}
	var in bytes.Buffer
	for _, req := range []string{"auth:1001:d:p", "auth:1001:d:x"} {
		_ = binary.Write(&in, binary.BigEndian, uint16(len(req)))
		in.WriteString(req)
	}
	in.Write([]byte{0, 9, 'a'}) // truncated request
	var out bytes.Buffer
	if err := c.serve(&in, &out); err == nil {
		t.Fatal("serve of a truncated request returned nil")
	}
	if want := []byte{0, 2, 0, 1, 0, 2, 0, 0}; !bytes.Equal(out.Bytes(), want) {
		t.Errorf("answers % x, want % x", out.Bytes(), want)
	}
}
