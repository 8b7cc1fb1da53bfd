package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"finesse-relay/server/sim"
	"finesse-relay/xmpp/finesse"
)

// mediaJSON and chatJSON are the browser's view of a Media and of a
// nonvoice Dialog (the JSON names of docs/finesse-model.md).
type mediaJSON struct {
	URI            string `json:"uri"`
	MRDID          string `json:"mrdId"`
	Name           string `json:"name"`
	State          string `json:"state"`
	MaxDialogLimit int    `json:"maxDialogLimit"`
	Routable       bool   `json:"routable"`
	Interruptible  *bool  `json:"interruptible"`
}

type chatJSON struct {
	ID              string `json:"id"`
	State           string `json:"state"`
	MediaType       string `json:"mediaType"`
	MediaProperties struct {
		MediaID string `json:"mediaId"`
	} `json:"mediaProperties"`
	Participants []struct {
		Actions []string `json:"actions"`
	} `json:"participants"`
}

// TestEndToEndNonvoiceMedia: the agent's chat Media state and a chat
// dialog reach the browser's WebSocket as typed JSON, from the snapshot and
// from live notifications, and the nonvoice collection is merged.
func TestEndToEndNonvoiceMedia(t *testing.T) {
	st := startStack(t, stackOptions{})
	a := st.signIn(t, "1001")
	c := st.open(t, a.Ticket, "")
	mediaNode := finesse.MediaNode("1001", sim.ChatMRDID)
	chatNode := finesse.MediaDialogsNode("1001")

	// Snapshot: the Media (signed out of chat) and an empty chat list.
	snap := next(t, c, func(m wsMsg) bool { return m.Type == "state" && m.Node == mediaNode })
	var m0 mediaJSON
	if err := json.Unmarshal(snap.Data, &m0); err != nil || m0.State != "LOGOUT" || m0.MRDID != sim.ChatMRDID || m0.Name != sim.ChatMRDName || m0.Interruptible == nil {
		t.Fatalf("Media snapshot %s (%v)", snap.Data, err)
	}
	if s := next(t, c, func(m wsMsg) bool { return m.Type == "state" && m.Node == chatNode }); string(s.Data) != "[]" {
		t.Fatalf("Dialogs/Media snapshot %s, want []", s.Data)
	}
	next(t, c, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "up" })

	// Sign in to chat and go READY through the REST proxy: 202, then the
	// Media event with the requestId.
	for _, step := range []struct{ body, state string }{
		{"<Media><state>LOGIN</state><maxDialogLimit>3</maxDialogLimit><interruptAction>ACCEPT</interruptAction></Media>", "NOT_READY"},
		{"<Media><state>READY</state></Media>", "READY"},
	} {
		code, rid, body := st.finesse(t, a.Session, http.MethodPut, "User/1001/Media/"+sim.ChatMRDID, step.body)
		if code != http.StatusAccepted || rid == "" {
			t.Fatalf("PUT Media: %d %q %s", code, rid, body)
		}
		ev := next(t, c, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid })
		var got mediaJSON
		if err := json.Unmarshal(ev.Data, &got); err != nil || ev.Node != mediaNode || got.State != step.state || got.MaxDialogLimit != 3 || !got.Routable {
			t.Fatalf("Media event on %s: %s (%v), want %s", ev.Node, ev.Data, err, step.state)
		}
	}

	// Two chats: each a POST on Dialogs/Media whose data is a typed
	// Dialogs list; the second must not replace the first.
	var ids []string
	for range 2 {
		id, err := st.sim.OfferChat("1001")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		ev := next(t, c, func(m wsMsg) bool { return m.Type == "event" && m.Node == chatNode && m.Event == "POST" })
		var list struct {
			Dialogs []chatJSON `json:"dialogs"`
		}
		if err := json.Unmarshal(ev.Data, &list); err != nil || len(list.Dialogs) != 1 {
			t.Fatalf("chat POST data %s (%v)", ev.Data, err)
		}
		d := list.Dialogs[0]
		if d.ID != id || d.State != "OFFERED" || d.MediaType != sim.ChatMRDName || d.MediaProperties.MediaID != sim.ChatMRDID ||
			len(d.Participants) != 1 || strings.Join(d.Participants[0].Actions, ",") != "ACCEPT" {
			t.Fatalf("chat dialog %s", ev.Data)
		}
	}

	// Accept the first: an item update; then a fresh tab's state holds
	// both chats, the first ACCEPTED.
	code, rid, body := st.finesse(t, a.Session, http.MethodPut, "Dialog/"+ids[0], "<Dialog><requestedAction>ACCEPT</requestedAction><targetMediaAddress>1001</targetMediaAddress></Dialog>")
	if code != http.StatusAccepted {
		t.Fatalf("ACCEPT: %d %s", code, body)
	}
	ev := next(t, c, func(m wsMsg) bool { return m.Type == "event" && m.RequestID == rid })
	var accepted chatJSON
	if err := json.Unmarshal(ev.Data, &accepted); err != nil || ev.Node != chatNode || accepted.ID != ids[0] || accepted.State != "ACCEPTED" {
		t.Fatalf("ACCEPT event on %s: %s (%v)", ev.Node, ev.Data, err)
	}
	c2 := st.open(t, st.ticket(t, a.Session), "")
	s := next(t, c2, func(m wsMsg) bool { return m.Type == "state" && m.Node == chatNode })
	var list []chatJSON
	if err := json.Unmarshal(s.Data, &list); err != nil || len(list) != 2 || list[0].ID != ids[0] || list[0].State != "ACCEPTED" || list[1].ID != ids[1] {
		t.Fatalf("Dialogs/Media state %s (%v), want both chats, the first ACCEPTED", s.Data, err)
	}
}

// The simulator refuses a wrong password with the container's HTML 401;
// the relay still classifies it as refused credentials.
func TestEndToEndHTMLUnauthorizedIsInvalidCredentials(t *testing.T) {
	st := startStack(t, stackOptions{})
	req, _ := http.NewRequest(http.MethodPost, st.base+"/api/v1/sessions", strings.NewReader(`{"loginId":"1001","password":"wrong"}`))
	req.Header.Set("Content-Type", "application/json")
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	var e struct{ Error struct{ Code string } }
	_ = json.NewDecoder(rsp.Body).Decode(&e)
	if rsp.StatusCode != http.StatusUnauthorized || e.Error.Code != "invalid_credentials" {
		t.Fatalf("sign-in with a wrong password: %d %q, want 401 invalid_credentials", rsp.StatusCode, e.Error.Code)
	}
	// Another user's object: Finesse's 401 ApiErrors passes through the proxy.
	a := st.signIn(t, "1001")
	code, _, body := st.finesse(t, a.Session, http.MethodGet, "User/1002", "")
	if code != http.StatusUnauthorized || !strings.Contains(body, "Invalid Authorization User Specified") {
		t.Fatalf("GET another user's object: %d %s", code, body)
	}
}
