package main

import (
	"net/http"
	"sync/atomic"

	"finesse-relay/httpx"
)

// testBackendBody is the SSO Utility's answer, kept for drop-in monitoring.
const testBackendBody = "system is working fine"

func handleTestBackend(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(testBackendBody))
}

func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness answers /readyz: 200 once the configuration is loaded and the
// listeners are up, 503 before that and while shutting down.
type readiness struct{ ready atomic.Bool }

func (rd *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if !rd.ready.Load() {
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
