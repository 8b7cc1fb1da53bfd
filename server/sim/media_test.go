package sim

import (
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"finesse-relay/xmpp/finesse"
)

const mediaPath = "/finesse/api/User/1001/Media/" + ChatMRDID

func mediaBody(state string, extra ...string) string {
	var b strings.Builder
	b.WriteString("<Media><state>" + state + "</state>")
	for i := 0; i+1 < len(extra); i += 2 {
		b.WriteString("<" + extra[i] + ">" + extra[i+1] + "</" + extra[i] + ">")
	}
	b.WriteString("</Media>")
	return b.String()
}

func mediaIn(id, state string) func(finesse.Update) bool {
	return func(u finesse.Update) bool {
		if u.Node != finesse.MediaNode(id, ChatMRDID) || u.Event != finesse.EventPut {
			return false
		}
		m, err := finesse.ParseMedia(u.Data)
		return err == nil && m.State == state
	}
}

func chatUpdate(id string, ev finesse.Event, dialogState string) func(finesse.Update) bool {
	return func(u finesse.Update) bool {
		if u.Node != finesse.MediaDialogsNode(id) || u.Event != ev {
			return false
		}
		o, err := finesse.DecodeData(u.Data)
		if err != nil {
			return false
		}
		switch v := o.(type) {
		case *finesse.Dialogs:
			return len(v.Dialogs) == 1 && v.Dialogs[0].State == dialogState
		case *finesse.Dialog:
			return v.State == dialogState
		}
		return false
	}
}

// The Media API: synchronous validation, 202 + requestId, then the Media
// notification; documented errors in their documented form.
func TestMediaSignInAndState(t *testing.T) {
	e := newEnv(t, Config{})
	// Logged out of the MRD: the documented GET shape, no requestId.
	body, hdr := e.must(200, "GET", mediaPath, "1001:demo", "", "requestId", "get-1")
	if hdr.Get("requestId") != "" {
		t.Errorf("GET answered with requestId %q", hdr.Get("requestId"))
	}
	m, err := finesse.ParseMedia([]byte(body))
	if err != nil || m.State != stateLogout || m.MRDID != ChatMRDID || m.Name != ChatMRDName || m.Routable || !m.MediaConnected {
		t.Fatalf("Media before sign-in = %+v, %v\n%s", m, err, body)
	}
	if strings.Contains(body, "<mrdId>") {
		t.Errorf("Cisco's Media sample has no <mrdId> (the id is in <id> and the uri): %s", body)
	}

	tests := []struct {
		name, body, errType string
		status              int
	}{
		{"READY before sign-in", mediaBody("READY"), "Agent is not logged in", 400},
		{"LOGIN without maxDialogLimit", mediaBody("LOGIN", "interruptAction", "ACCEPT"), "Parameter Missing", 400},
		{"LOGIN without interruptAction", mediaBody("LOGIN", "maxDialogLimit", "3"), "Parameter Missing", 400},
		{"maxDialogLimit above 10", mediaBody("LOGIN", "maxDialogLimit", "11", "interruptAction", "ACCEPT"), "Invalid Input", 400},
		{"unknown interruptAction", mediaBody("LOGIN", "maxDialogLimit", "3", "interruptAction", "MAYBE"), "Invalid Input", 400},
		{"unknown state", mediaBody("DANCING"), "Invalid Input", 400},
	}
	for _, tc := range tests {
		body, _ := e.must(tc.status, "PUT", mediaPath, "1001:demo", tc.body)
		ae, err := finesse.ParseAPIErrors([]byte(body))
		if err != nil || ae.Errors[0].ErrorType != tc.errType {
			t.Errorf("%s: %s (%v), want %s", tc.name, body, err, tc.errType)
		}
		if tc.errType == "Agent is not logged in" && ae.Errors[0].ErrorMedia != ChatMRDID {
			t.Errorf("%s: ErrorMedia %q, want %s", tc.name, ae.Errors[0].ErrorMedia, ChatMRDID)
		}
	}

	_, hdr = e.must(202, "PUT", mediaPath, "1001:demo", mediaBody("LOGIN", "maxDialogLimit", "2", "interruptAction", "ACCEPT"), "requestId", "m-login")
	if hdr.Get("requestId") != "m-login" {
		t.Errorf("202 requestId %q", hdr.Get("requestId"))
	}
	u := e.sides[sideA].waitFor(t, wait, "Media NOT_READY after LOGIN", withReq("m-login", mediaIn("1001", stateNotReady)))
	got, _ := finesse.ParseMedia(u.Data)
	if got.MaxDialogLimit != 2 || got.InterruptAction != "ACCEPT" || got.DialogLogoutAction != "CLOSE" || !got.Routable || u.Source != finesse.MediaNode("1001", ChatMRDID) {
		t.Errorf("signed-in Media = %+v (source %s)", got, u.Source)
	}

	// LOGIN again: accepted, then the documented asynchronous error.
	e.must(202, "PUT", mediaPath, "1001:demo", mediaBody("LOGIN", "maxDialogLimit", "2", "interruptAction", "ACCEPT"), "requestId", "m-again")
	u = e.sides[sideA].waitFor(t, wait, "already logged in", func(u finesse.Update) bool { return u.RequestID == "m-again" })
	ae, err := finesse.ParseAPIErrors(u.Data)
	if err != nil || ae.Errors[0].ErrorMessage != "E_ARM_STAT_AGENT_ALREADY_LOGGED_IN" || ae.Errors[0].ErrorMedia != ChatMRDID {
		t.Errorf("second LOGIN: %s (%v)", u.Data, err)
	}

	e.must(400, "PUT", mediaPath, "1001:demo", mediaBody("NOT_READY", "reasonCodeId", "99999"))
	e.must(202, "PUT", mediaPath, "1001:demo", mediaBody("READY"), "requestId", "m-ready")
	e.sides[sideA].waitFor(t, wait, "Media READY", withReq("m-ready", mediaIn("1001", stateReady)))
	// READY to READY is ignored: no notification.
	e.must(202, "PUT", mediaPath, "1001:demo", mediaBody("READY"), "requestId", "m-ready-2")
	e.sides[sideA].none(t, 200*time.Millisecond, "READY to READY notification", func(u finesse.Update) bool { return u.RequestID == "m-ready-2" })

	// The list holds the chat MRD.
	body, _ = e.must(200, "GET", "/finesse/api/User/1001/Media", "1001:demo", "")
	list, err := finesse.ParseMediaList([]byte(body))
	if err != nil || len(list) != 1 || list[0].State != stateReady || list[0].MRDID != ChatMRDID {
		t.Fatalf("MediaList = %+v, %v", list, err)
	}
	// Another user's Media: 401 Invalid Authorization User Specified, even
	// for the supervisor.
	e.must(401, "GET", mediaPath, "2001:demo", "")
	e.must(404, "GET", "/finesse/api/User/1001/Media/9999", "1001:demo", "")
}

// A chat offered to an agent READY in the MRD arrives as a POST on
// Dialogs/Media from Media/{mrdId}/Dialogs; actions update it; CLOSE ends
// it (PUT CLOSED, then DELETE).
func TestChatDialogLifecycle(t *testing.T) {
	e := newEnv(t, Config{})
	sim := &Sim{m: e.m}
	if _, err := sim.OfferChat("1001"); !errors.Is(err, ErrNotRoutable) {
		t.Fatalf("offer to a logged-out agent: %v, want ErrNotRoutable", err)
	}
	e.must(202, "PUT", mediaPath, "1001:demo", mediaBody("LOGIN", "maxDialogLimit", "1", "interruptAction", "IGNORE"))
	e.sides[sideA].waitFor(t, wait, "signed in", mediaIn("1001", stateNotReady))
	e.must(202, "PUT", mediaPath, "1001:demo", mediaBody("READY"))
	e.sides[sideA].waitFor(t, wait, "ready", mediaIn("1001", stateReady))

	id, err := sim.OfferChat("1001")
	if err != nil {
		t.Fatal(err)
	}
	u := e.sides[sideA].waitFor(t, wait, "chat offered", chatUpdate("1001", finesse.EventPost, chatOffered))
	if u.Source != finesse.MRDDialogsURI("1001", ChatMRDID) || !finesse.IsCollection(u.Source, u.Node) {
		t.Errorf("POST source %s on %s", u.Source, u.Node)
	}
	ds, _ := finesse.ParseDialogs(u.Data)
	d := ds[0]
	if d.ID != id || d.MediaType != ChatMRDName || d.MediaProperties.MediaID != ChatMRDID || !strings.Contains(d.ID, "_") ||
		strings.Join(d.Participants[0].Actions, ",") != "ACCEPT" || d.FromAddress != "" || d.MediaProperties.CallType != "" {
		t.Errorf("offered chat = %+v", d)
	}
	if _, err := sim.OfferChat("1001"); !errors.Is(err, ErrNotRoutable) {
		t.Errorf("offer beyond maxDialogLimit 1: %v", err)
	}
	body, _ := e.must(200, "GET", "/finesse/api/User/1001/Media/"+ChatMRDID+"/Dialogs", "1001:demo", "")
	if got, err := finesse.ParseDialogs([]byte(body)); err != nil || len(got) != 1 || got[0].ID != id {
		t.Errorf("GET Media Dialogs = %+v, %v", got, err)
	}

	dlg := "/finesse/api/Dialog/" + id
	e.must(401, "PUT", dlg, "1002:demo", actionBody("ACCEPT", "1002"))
	e.must(400, "PUT", dlg, "1001:demo", actionBody("CLOSE", "1001")) // not allowed while OFFERED
	e.must(202, "PUT", dlg, "1001:demo", actionBody("ACCEPT", "1001"), "requestId", "c-accept")
	e.sides[sideA].waitFor(t, wait, "accepted", withReq("c-accept", chatUpdate("1001", finesse.EventPut, chatAccepted)))
	e.must(202, "PUT", dlg, "1001:demo", actionBody("START", "1001"))
	e.sides[sideA].waitFor(t, wait, "active", chatUpdate("1001", finesse.EventPut, chatActive))
	e.must(202, "PUT", dlg, "1001:demo", actionBody("CLOSE", "1001"), "requestId", "c-close")
	e.sides[sideA].waitFor(t, wait, "closed", withReq("c-close", chatUpdate("1001", finesse.EventPut, chatClosed)))
	e.sides[sideA].waitFor(t, wait, "removed", chatUpdate("1001", finesse.EventDelete, chatClosed))
	e.must(404, "GET", dlg, "1001:demo", "")
}

// An offer not accepted within the start timeout is taken back.
func TestChatOfferTimesOut(t *testing.T) {
	e := newEnv(t, Config{})
	e.m.t.ring = 10 * e.m.t.cti // offer timeout max(30 × ring, 1 s)
	e.do(func(m *model) {
		u := m.users["1001"]
		ms := m.mediaOf(u)
		ms.maxDialogs = 3
		m.setMediaState(u, stateReady, reasonNone, "")
		if _, err := m.offerChat(u, nil); err != nil {
			t.Error(err)
		}
	})
	e.sides[sideA].waitFor(t, wait, "offer withdrawn", chatUpdate("1001", finesse.EventDelete, chatOffered))
}

// Team members are Cisco's summary, with a lower-case <reasonCode>, on GET
// Team and on the Team/{id}/Users node.
func TestTeamMembersAreSummaries(t *testing.T) {
	e := newEnv(t, Config{})
	e.login("1001")
	e.do(func(m *model) {
		m.applyUserChange(m.users["1001"], userChange{State: stateNotReady, ReasonCodeID: "12"}, false, "")
	})
	body, _ := e.must(200, "GET", "/finesse/api/Team/10", "2001:demo", "")
	u := e.sides[sideA].waitFor(t, wait, "member update", func(u finesse.Update) bool {
		return u.Node == finesse.TeamUsersNode(TeamID) && strings.Contains(string(u.Data), "<label>Lunch</label>")
	})
	for name, doc := range map[string]string{"GET Team": body, "notification": string(u.Data)} {
		if !strings.Contains(doc, "<reasonCode><category>NOT_READY</category>") {
			t.Errorf("%s lacks the lower-case reasonCode: %s", name, doc)
		}
		for _, not := range []string{"<ReasonCode>", "<loginName>", "<reasonCodeId>", "<roles>", "<teamId>", "<settings>", "<mediaType>", "<wrapUpTimer>", "<forAll>"} {
			if strings.Contains(doc, not) {
				t.Errorf("%s carries %s, which the summary does not: %s", name, not, doc)
			}
		}
	}
	team, err := finesse.ParseTeam([]byte(body))
	if err != nil || len(team.Users) == 0 || team.Users[0].ReasonCode == nil || team.Users[0].ReasonCode.ID != "12" {
		t.Fatalf("team = %+v, %v", team, err)
	}
}

// FuzzMediaRequest: any Media PUT body is either refused synchronously or
// accepted with a change to apply; validation never panics, and an
// accepted LOGIN carries a documented maxDialogLimit and interruptAction.
func FuzzMediaRequest(f *testing.F) {
	f.Add([]byte(mediaBody("LOGIN", "maxDialogLimit", "3", "interruptAction", "ACCEPT", "dialogLogoutAction", "TRANSFER")))
	f.Add([]byte(mediaBody("NOT_READY", "reasonCodeId", "12")))
	f.Add([]byte(mediaBody("LOGOUT", "reasonCodeId", "20")))
	f.Add([]byte("<Media><state>READY"))
	f.Add([]byte("<Media><maxDialogLimit>-1</maxDialogLimit></Media>"))
	cfg, _ := Config{Fast: true, Agents: 2}.withDefaults()
	f.Fuzz(func(t *testing.T, body []byte) {
		m := newModel(cfg, cfg.timings())
		u := m.users["1001"]
		for _, signedIn := range []bool{false, true} {
			if signedIn {
				ms := m.mediaOf(u)
				ms.state, ms.maxDialogs = stateReady, 2
			}
			var x mediaRequestXML
			if decodeBody(body, &x) != nil {
				return
			}
			apply, e := m.checkMediaChange(u, x)
			if (apply == nil) == (e == nil) {
				t.Fatalf("checkMediaChange(%q) gave apply %v and error %v", body, apply != nil, e)
			}
			if apply == nil {
				continue
			}
			if strings.TrimSpace(x.State) == stateLogin {
				n, err := strconv.Atoi(strings.TrimSpace(x.MaxDialogLimit))
				ia := strings.TrimSpace(x.InterruptAction)
				if err != nil || n < 1 || n > 10 || (ia != "ACCEPT" && ia != "IGNORE") {
					t.Fatalf("LOGIN accepted with %+v", x)
				}
			}
		}
	})
}

func TestControlOffersChat(t *testing.T) {
	e := newEnv(t, Config{})
	h := (&Sim{m: e.m}).controlHandler()
	post := func(body string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/sim/chats", strings.NewReader(body)))
		return rec.Code
	}
	if c := post(`{"user":"1001"}`); c != 409 {
		t.Errorf("not ready: %d, want 409", c)
	}
	if c := post(`{"user":"nobody"}`); c != 404 {
		t.Errorf("unknown user: %d, want 404", c)
	}
	e.do(func(m *model) {
		u := m.users["1001"]
		m.mediaOf(u).maxDialogs = 1
		m.setMediaState(u, stateReady, reasonNone, "")
	})
	if c := post(`{"user":"1001"}`); c != 201 {
		t.Errorf("ready: %d, want 201", c)
	}
	e.sides[sideA].waitFor(t, wait, "chat offered", chatUpdate("1001", finesse.EventPost, chatOffered))
}
