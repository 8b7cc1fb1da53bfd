package sim

import (
	"strings"
	"testing"

	"finesse-relay/xmpp/finesse"
)

// talkingAgent puts 1001 on an answered ACD call and signs the supervisor
// in; it returns the call's id.
func talkingAgent(t *testing.T, e *testEnv) string {
	t.Helper()
	e.ready("1001")
	e.login(SupervisorID)
	var id string
	e.do(func(m *model) { id = m.placeCall(m.queue("5001"), "5551234567", nil).id })
	e.waitState("1001", stateReserved, wait)
	e.must(202, "PUT", "/finesse/api/Dialog/"+id, "1001:demo", actionBody("ANSWER", "51001"))
	e.waitState("1001", stateTalking, wait)
	e.flush()
	return id
}

func superviseBody(action, from, to, assoc string) string {
	b := "<Dialog><requestedAction>" + action + "</requestedAction><fromAddress>" + from + "</fromAddress><toAddress>" + to + "</toAddress>"
	if assoc != "" {
		b += "<associatedDialogUri>" + assoc + "</associatedDialogUri>"
	}
	return b + "</Dialog>"
}

func TestSupervisorActionsRefused(t *testing.T) {
	e := newEnv(t, Config{})
	e.ready("1002")
	e.login("1001")
	e.login(SupervisorID)
	sup := "/finesse/api/User/" + SupervisorID + "/Dialogs"
	tests := []struct {
		name, path, auth, body string
		status                 int
	}{
		{"an agent cannot monitor", "/finesse/api/User/1001/Dialogs", "1001:demo", superviseBody("SILENT_MONITOR", "51001", "51002", ""), 401}, // Finesse: 401 Invalid Authorization User Specified
		{"only an agent who is talking", sup, "2001:demo", superviseBody("SILENT_MONITOR", "52001", "51002", ""), 400},
		{"from the supervisor's own extension", sup, "2001:demo", superviseBody("SILENT_MONITOR", "51003", "51002", ""), 400},
		{"toAddress is required", sup, "2001:demo", "<Dialog><requestedAction>SILENT_MONITOR</requestedAction><fromAddress>52001</fromAddress></Dialog>", 400},
		{"not a team member's extension", sup, "2001:demo", superviseBody("SILENT_MONITOR", "52001", "5551234", ""), 400},
		{"barge needs a monitor call", sup, "2001:demo", superviseBody("BARGE_CALL", "52001", "51002", "/finesse/api/Dialog/1"), 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := e.must(tc.status, "POST", tc.path, tc.auth, tc.body)
			if _, err := finesse.ParseAPIErrors([]byte(body)); err != nil {
				t.Errorf("not ApiErrors: %s", body)
			}
		})
	}
}

func TestSilentMonitorBargeAndParticipantDrop(t *testing.T) {
	e := newEnv(t, Config{})
	call := talkingAgent(t, e)
	a := e.sides[sideA]
	supNode := finesse.DialogsNode(SupervisorID)

	// Silent monitor: 202, then a SUPERVISOR_MONITOR dialog for the
	// supervisor only; the supervisor is TALKING.
	e.must(202, "POST", "/finesse/api/User/2001/Dialogs", "2001:demo", superviseBody("SILENT_MONITOR", "52001", "51001", ""), "requestId", "mon")
	post := a.waitFor(t, wait, "the monitor dialog", withReq("mon", onNode(supNode, finesse.EventPost)))
	mon := dialogOf(t, post)
	if mon.MediaProperties.CallType != callMonitor || mon.ToAddress != "51001" {
		t.Fatalf("monitor dialog %+v", mon)
	}
	wantActions(t, "monitoring supervisor", participantOf(mon, "52001"), "DROP", "BARGE_CALL")
	e.waitState(SupervisorID, stateTalking, wait)
	a.none(t, 0, "a dialog change for the monitored agent", withReq("mon", onNode(finesse.DialogsNode("1001"), finesse.EventPut)))
	// An agent cannot drop participants.
	e.must(400, "PUT", "/finesse/api/Dialog/"+call, "1001:demo", actionBody("PARTICIPANT_DROP", "5551234567"))

	// Barge: the monitor call ends, the supervisor joins the agent's call.
	e.must(202, "POST", "/finesse/api/User/2001/Dialogs", "2001:demo", superviseBody("BARGE_CALL", "52001", "51001", "/finesse/api/Dialog/"+mon.ID), "requestId", "barge")
	a.waitFor(t, wait, "the monitor dialog removed", withReq("barge", onNode(supNode, finesse.EventDelete)))
	joined := dialogOf(t, a.waitFor(t, wait, "the agent sees the supervisor join", withReq("barge", func(u finesse.Update) bool {
		if u.Node != finesse.DialogsNode("1001") || u.Event != finesse.EventPut {
			return false
		}
		d, err := finesse.ParseDialog(u.Data)
		return err == nil && participantOf(d, "52001") != nil
	})))
	if joined.ID != call {
		t.Fatalf("barged into %s, want %s", joined.ID, call)
	}
	wantActions(t, "barged supervisor", participantOf(joined, "52001"), "DROP", "UPDATE_CALL_DATA", "PARTICIPANT_DROP")

	// Intercept: the supervisor drops the agent; the call goes on.
	e.must(202, "PUT", "/finesse/api/Dialog/"+call, "2001:demo", actionBody("PARTICIPANT_DROP", "51001"), "requestId", "pdrop")
	a.waitFor(t, wait, "the agent leaves into wrap-up", withReq("pdrop", dialogPut("1001", "51001", "WRAP_UP")))
	e.waitState("1001", stateWorkReady, wait) // READY before the call
	if s := e.state(SupervisorID); s != stateTalking {
		t.Errorf("supervisor %s after the intercept, want TALKING", s)
	}
	// The supervisor leaves: no wrap-up for a barged call; back to NOT_READY.
	e.must(202, "PUT", "/finesse/api/Dialog/"+call, "2001:demo", actionBody("DROP", "52001"))
	e.waitState(SupervisorID, stateNotReady, wait)
}

func TestMonitorEndsWithTheCall(t *testing.T) {
	e := newEnv(t, Config{})
	call := talkingAgent(t, e)
	a := e.sides[sideA]
	e.must(202, "POST", "/finesse/api/User/2001/Dialogs", "2001:demo", superviseBody("SILENT_MONITOR", "52001", "51001", ""))
	a.waitFor(t, wait, "the monitor dialog", onNode(finesse.DialogsNode(SupervisorID), finesse.EventPost))
	e.must(202, "PUT", "/finesse/api/Dialog/"+call, "1001:demo", actionBody("DROP", "51001"), "requestId", "end")
	a.waitFor(t, wait, "monitoring ends with the call", withReq("end", onNode(finesse.DialogsNode(SupervisorID), finesse.EventDelete)))
	e.waitState(SupervisorID, stateNotReady, wait)
}

func TestMediaPropertiesLayouts(t *testing.T) {
	e := newEnv(t, Config{})
	body, _ := e.must(200, "GET", "/finesse/api/User/1001/MediaPropertiesLayouts", "1001:demo", "")
	for _, want := range []string{"<MediaPropertiesLayouts>", "<displayName>Account</displayName><mediaProperty>callVariable1</mediaProperty>", "user.CustomerTier"} {
		if !strings.Contains(body, want) {
			t.Errorf("layout lacks %q: %s", want, body)
		}
	}
	e.must(405, "PUT", "/finesse/api/User/1001/MediaPropertiesLayouts", "1001:demo", "<x/>")
}
