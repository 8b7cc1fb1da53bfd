package main

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
)

// testBackendBody is the SSO Utility's answer, kept for drop-in monitoring.
const testBackendBody = "system is working fine"

func handleTestBackend(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(testBackendBody))
}

func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness answers /readyz: 200 once the configuration is loaded and the
// listeners are up, 503 before that and while shutting down.
type readiness struct{ ready atomic.Bool }

func (rd *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if !rd.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// apiError is the JSON error body of every relay endpoint.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{apiErrorBody{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
