package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// maxControlBody bounds a control API request body.
const maxControlBody = 4 << 10

// controlHandler serves the control API (plain HTTP, loopback, JSON):
//
//	POST /sim/calls                  {"queue":"5001","from":"5551234567"} → {"dialogId":"…"}
//	POST /sim/chats                  {"user":"1001"} → {"dialogId":"…"} (409: not READY in chat)
//	POST /sim/sides/{A|B}            {"inService":false}
//	POST /sim/sides/{A|B}/drop-xmpp
//	POST /sim/ids                    {"available":false}
//	POST /sim/ids/revoke             {"user":"agent1001"}
//	POST /sim/ids/token              {"user":"agent1001"} → {"access_token","refresh_token"}
//	GET  /sim/users/{id}             → the user's live state
//
// Errors are {"error":"…"} with 400 (bad body), 404 (unknown side, queue,
// user) or 503 (queue full).
func (s *Sim) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sim/calls", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Queue, From string }
		if !readJSON(w, r, &req) {
			return
		}
		id, err := s.PlaceCall(req.Queue, req.From)
		if err != nil {
			writeJSONError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"dialogId": id})
	})
	mux.HandleFunc("POST /sim/chats", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ User string }
		if !readJSON(w, r, &req) {
			return
		}
		id, err := s.OfferChat(req.User)
		if err != nil {
			writeJSONError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"dialogId": id})
	})
	mux.HandleFunc("POST /sim/sides/{side}", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			InService *bool `json:"inService"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		side := r.PathValue("side")
		if _, err := sideIndex(side); err != nil {
			writeJSONError(w, err)
			return
		}
		if req.InService == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "inService is required"})
			return
		}
		s.SetSideInService(side, *req.InService)
		writeJSON(w, http.StatusOK, map[string]any{"side": side, "inService": *req.InService})
	})
	mux.HandleFunc("POST /sim/sides/{side}/drop-xmpp", func(w http.ResponseWriter, r *http.Request) {
		side := r.PathValue("side")
		if _, err := sideIndex(side); err != nil {
			writeJSONError(w, err)
			return
		}
		s.DropXMPP(side)
		writeJSON(w, http.StatusOK, map[string]any{"side": side, "dropped": true})
	})
	mux.HandleFunc("POST /sim/ids", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Available *bool `json:"available"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.Available == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "available is required"})
			return
		}
		s.ids.SetAvailable(*req.Available)
		writeJSON(w, http.StatusOK, map[string]any{"available": *req.Available})
	})
	mux.HandleFunc("POST /sim/ids/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ User string }
		if !readJSON(w, r, &req) {
			return
		}
		u, err := s.idsUser(req.User)
		if err != nil {
			writeJSONError(w, err)
			return
		}
		s.ids.Revoke(u)
		writeJSON(w, http.StatusOK, map[string]any{"user": u, "revoked": true})
	})
	mux.HandleFunc("POST /sim/ids/token", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ User, ClientID string }
		if !readJSON(w, r, &req) {
			return
		}
		u, err := s.idsUser(req.User)
		if err != nil {
			writeJSONError(w, err)
			return
		}
		client := req.ClientID
		if client == "" {
			client = "finesse-desktop"
		}
		access, refresh, err := s.ids.IssueForTest(u, client)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]any{"user_id": u, "access_token": access, "refresh_token": refresh, "token_type": "Bearer"})
	})
	mux.HandleFunc("GET /sim/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := s.userView(r.PathValue("id"))
		if !ok {
			writeJSONError(w, ErrUnknownUser)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	return mux
}

// idsUser maps a login id or login name to the IdS user id (login name).
func (s *Sim) idsUser(id string) (string, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	u := s.m.userByAny(id)
	if u == nil {
		return "", ErrUnknownUser
	}
	return u.loginName, nil
}

// userViewJSON is GET /sim/users/{id}.
type userViewJSON struct {
	LoginID      string          `json:"loginId"`
	LoginName    string          `json:"loginName"`
	FirstName    string          `json:"firstName"`
	LastName     string          `json:"lastName"`
	Extension    string          `json:"extension"`
	State        string          `json:"state"`
	ReasonCodeID string          `json:"reasonCodeId"`
	PendingState string          `json:"pendingState"`
	Robot        bool            `json:"robot"`
	Present      map[string]bool `json:"present"`
	Dialogs      []string        `json:"dialogs"`
}

func (s *Sim) userView(id string) (userViewJSON, bool) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	u := s.m.userByAny(id)
	if u == nil {
		return userViewJSON{}, false
	}
	v := userViewJSON{
		LoginID: u.id, LoginName: u.loginName, FirstName: u.first, LastName: u.last, Extension: u.ext,
		State: u.state, ReasonCodeID: u.reasonID, PendingState: u.pending, Robot: u.robot,
		Present: map[string]bool{"A": u.present[sideA], "B": u.present[sideB]}, Dialogs: []string{},
	}
	for _, d := range u.dialogs {
		v.Dialogs = append(v.Dialogs, d.id)
	}
	return v, true
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err == nil && len(body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON body: " + err.Error()})
		return false
	}
	return true
}

func writeJSONError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, ErrUnknownQueue), errors.Is(err, ErrUnknownSide), errors.Is(err, ErrUnknownUser):
		status = http.StatusNotFound
	case errors.Is(err, ErrQueueFull):
		status = http.StatusServiceUnavailable
	case errors.Is(err, ErrNotRoutable):
		status = http.StatusConflict
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}
