package sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"finesse-relay/xmpp/finesse"
)

// dialogOf parses the dialog of a Dialog PUT or a Dialogs POST/DELETE.
func dialogOf(t *testing.T, u finesse.Update) *finesse.Dialog {
	t.Helper()
	if u.Event == finesse.EventPut {
		d, err := finesse.ParseDialog(u.Data)
		if err != nil {
			t.Fatalf("dialog: %v: %s", err, u.Data)
		}
		return d
	}
	ds, err := finesse.ParseDialogs(u.Data)
	if err != nil || len(ds) != 1 {
		t.Fatalf("dialogs: %v: %s", err, u.Data)
	}
	return &ds[0]
}

func wantActions(t *testing.T, what string, p *finesse.Participant, want ...string) {
	t.Helper()
	if p == nil {
		t.Fatalf("%s: participant missing", what)
	}
	if !slices.Equal(p.Actions, want) {
		t.Fatalf("%s: actions %v, want %v", what, p.Actions, want)
	}
}

func TestInboundCallFlow(t *testing.T) {
	e := newEnv(t, Config{})
	e.ready("1001")
	var id string
	e.do(func(m *model) {
		id = m.placeCall(m.queue("5001"), "5551234567", []finesse.CallVariable{{Name: "callVariable1", Value: "ACC-1"}, {Name: "user.CustomerTier", Value: "Gold"}}).id
	})
	a := e.sides[sideA]
	post := a.waitFor(t, wait, "Dialogs POST", onNode(finesse.DialogsNode("1001"), finesse.EventPost))
	if post.Source != finesse.DialogsNode("1001") {
		t.Errorf("POST source %q, want the collection", post.Source)
	}
	if !strings.HasPrefix(string(post.Data), "<dialogs><Dialog>") {
		t.Errorf("POST data %.30s, want <dialogs><Dialog>", post.Data)
	}
	d := dialogOf(t, post)
	if d.ID != id || d.State != "ALERTING" || d.FromAddress != "5551234567" || d.ToAddress != "51001" || d.MediaProperties.CallType != "ACD_IN" || d.MediaProperties.QueueNumber != "5001" || d.MediaProperties.QueueName != "Sales" {
		t.Fatalf("alerting dialog %+v", d)
	}
	if len(d.MediaProperties.CallVariables) != 2 {
		t.Errorf("call variables %+v", d.MediaProperties.CallVariables)
	}
	wantActions(t, "agent ALERTING", participantOf(d, "51001"), "ANSWER")
	wantActions(t, "caller", participantOf(d, "5551234567"), "UPDATE_CALL_DATA", "DROP")
	if participantOf(d, "51001").MediaAddressType != "AGENT_DEVICE" {
		t.Errorf("agent mediaAddressType %q", participantOf(d, "51001").MediaAddressType)
	}
	a.waitFor(t, wait, "RESERVED", userState("1001", "RESERVED"))

	dlg := "/finesse/api/Dialog/" + id
	steps := []struct {
		action, reqID, part, user string
		actions                   []string
	}{
		{"ANSWER", "r-answer", "ACTIVE", "TALKING", []string{"HOLD", "DROP", "UPDATE_CALL_DATA", "CONSULT_CALL", "TRANSFER_SST", "SEND_DTMF"}},
		{"HOLD", "r-hold", "HELD", "HOLD", []string{"RETRIEVE", "DROP", "UPDATE_CALL_DATA"}},
		{"RETRIEVE", "r-retrieve", "ACTIVE", "TALKING", []string{"HOLD", "DROP", "UPDATE_CALL_DATA", "CONSULT_CALL", "TRANSFER_SST", "SEND_DTMF"}},
	}
	for _, s := range steps {
		e.must(202, "PUT", dlg, "1001:demo", actionBody(s.action, "51001"), "requestId", s.reqID)
		u := a.waitFor(t, wait, s.action+" Dialog PUT", withReq(s.reqID, dialogPut("1001", "51001", s.part)))
		if u.Source != dlg || !strings.HasPrefix(string(u.Data), "<dialog>") {
			t.Fatalf("%s: source %q data %.20s", s.action, u.Source, u.Data)
		}
		wantActions(t, s.action, participantOf(dialogOf(t, u), "51001"), s.actions...)
		a.waitFor(t, wait, s.action+" User PUT", withReq(s.reqID, userState("1001", s.user)))
	}

	// Refused synchronously.
	e.must(400, "PUT", dlg, "1001:demo", actionBody("ANSWER", "51001"))
	e.must(400, "PUT", dlg, "1001:demo", actionBody("HOLD", "51002"))
	e.must(400, "PUT", dlg, "1001:demo", actionBody("HOLD", ""))
	e.must(400, "PUT", dlg, "1001:demo", actionBody("FLY", "51001"))
	e.must(400, "PUT", dlg, "1001:demo", actionBody("SEND_DTMF", "51001", "<actionParams><ActionParam><name>dtmfString</name><value>12x</value></ActionParam></actionParams>"))
	e.must(401, "PUT", dlg, "1002:demo", actionBody("DROP", "51002")) // Invalid Authorization User Specified

	e.must(202, "PUT", dlg, "1001:demo", actionBody("SEND_DTMF", "51001", "<actionParams><ActionParam><name>dtmfString</name><value>123#</value></ActionParam></actionParams>"), "requestId", "r-dtmf")
	a.waitFor(t, wait, "DTMF Dialog PUT", withReq("r-dtmf", dialogPut("1001", "51001", "ACTIVE")))

	e.must(202, "PUT", dlg, "1001:demo", actionBody("DROP", "51001"), "requestId", "r-drop")
	u := a.waitFor(t, wait, "DROP Dialog PUT", withReq("r-drop", dialogPut("1001", "51001", "WRAP_UP")))
	dd := dialogOf(t, u)
	if dd.State != "DROPPED" || participantOf(dd, "5551234567").State != "DROPPED" {
		t.Fatalf("after DROP %+v", dd)
	}
	wantActions(t, "WRAP_UP", participantOf(dd, "51001"), "UPDATE_CALL_DATA")
	wantActions(t, "dropped caller", participantOf(dd, "5551234567"))
	a.waitFor(t, wait, "WORK_READY", withReq("r-drop", userState("1001", "WORK_READY")))

	body := "<Dialog><requestedAction>UPDATE_CALL_DATA</requestedAction><mediaProperties><wrapUpReason>Sales Call</wrapUpReason><callvariables><CallVariable><name>callVariable3</name><value>note</value></CallVariable></callvariables></mediaProperties></Dialog>"
	e.must(202, "PUT", dlg, "1001:demo", body, "requestId", "r-wrap")
	u = a.waitFor(t, wait, "UPDATE_CALL_DATA Dialog PUT", withReq("r-wrap", onNode(finesse.DialogsNode("1001"), finesse.EventPut)))
	if dd := dialogOf(t, u); dd.MediaProperties.WrapUpReason != "Sales Call" || len(dd.MediaProperties.CallVariables) != 3 {
		t.Fatalf("after UPDATE_CALL_DATA %+v", dd.MediaProperties)
	}

	e.must(202, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("READY"), "requestId", "r-ready")
	del := a.waitFor(t, wait, "Dialogs DELETE", withReq("r-ready", onNode(finesse.DialogsNode("1001"), finesse.EventDelete)))
	if del.Source != finesse.DialogsNode("1001") || dialogOf(t, del).ID != id {
		t.Fatalf("DELETE %+v", del)
	}
	a.waitFor(t, wait, "READY", withReq("r-ready", userState("1001", "READY")))
	// DELETE comes before the User PUT (F.5).
	all := a.all()
	iDel := slices.IndexFunc(all, withReq("r-ready", onNode(finesse.DialogsNode("1001"), finesse.EventDelete)))
	iReady := slices.IndexFunc(all, withReq("r-ready", userState("1001", "READY")))
	if iDel > iReady {
		t.Errorf("DELETE after the User PUT")
	}
	e.must(404, "GET", dlg, "1001:demo", "")
	e.do(func(m *model) {
		if len(m.dialogs) != 0 {
			t.Errorf("dialogs left in the model: %d", len(m.dialogs))
		}
	})
}

func TestCustomerHangsUpAndWrapUpTimer(t *testing.T) {
	e := newEnv(t, Config{})
	e.m.t.wrapUpTimer = 100 * time.Millisecond
	e.ready("1001")
	e.do(func(m *model) {
		d := m.placeCall(m.queue("5002"), "5550002", nil)
		m.applyDialogAction(m.users["1001"], d, dialogRequest{Action: actAnswer, Target: "51001"}, "")
	})
	e.flush()
	e.do(func(m *model) {
		d := m.users["1001"].dialogs[0]
		m.leave(d, d.parts[1], "")
	})
	a := e.sides[sideA]
	a.waitFor(t, wait, "WRAP_UP after the hang-up", dialogPut("1001", "51001", "WRAP_UP"))
	a.waitFor(t, wait, "WORK_READY", userState("1001", "WORK_READY"))
	// The wrap-up timer moves WORK_READY to READY.
	a.waitFor(t, wait, "READY after the wrap-up timer", userState("1001", "READY"))
	a.waitFor(t, wait, "Dialogs DELETE", onNode(finesse.DialogsNode("1001"), finesse.EventDelete))
}

func TestPendingNotReadyLeadsToWork(t *testing.T) {
	e := newEnv(t, Config{})
	e.m.t.wrapUpTimer = 100 * time.Millisecond
	e.ready("1001")
	var d *dialog
	e.do(func(m *model) {
		d = m.placeCall(m.queue("5001"), "5550003", nil)
		m.applyDialogAction(m.users["1001"], d, dialogRequest{Action: actAnswer, Target: "51001"}, "")
	})
	e.must(202, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("NOT_READY", "reasonCodeId", "12"), "requestId", "pend")
	u := e.sides[sideA].waitFor(t, wait, "pendingState", withReq("pend", onNode(finesse.UserNode("1001"), finesse.EventPut)))
	if x, _ := finesse.ParseUser(u.Data); x.State != "TALKING" || x.PendingState != "NOT_READY" {
		t.Fatalf("state %s pending %s", x.State, x.PendingState)
	}
	e.flush()
	e.must(202, "PUT", "/finesse/api/Dialog/"+d.id, "1001:demo", actionBody("DROP", "51001"))
	e.sides[sideA].waitFor(t, wait, "WORK", userState("1001", "WORK"))
	e.sides[sideA].waitFor(t, wait, "NOT_READY after wrap-up", userState("1001", "NOT_READY"))
	e.do(func(m *model) {
		if r := m.users["1001"].reasonID; r != "12" {
			t.Errorf("reason after wrap-up %s, want the pending 12", r)
		}
	})
}

func TestQueueingAndLongestReady(t *testing.T) {
	e := newEnv(t, Config{})
	e.login("1001")
	e.login("1002")
	e.login("1003")
	var d1, d2 *dialog
	e.do(func(m *model) {
		d1 = m.placeCall(m.queue("5001"), "5550101", nil)
		d2 = m.placeCall(m.queue("5002"), "5550102", nil)
		s := m.queueStats(m.queue("5001"))
		if s.CallsInQueue != 1 || s.StartTimeOfLongestCallInQueue == "" || s.AgentsNotReady != 3 || s.AgentsLoggedOn != 3 {
			t.Errorf("stats with a waiting call %+v", s)
		}
	})
	// 1003 goes READY first: it gets the oldest call (5001).
	e.do(func(m *model) { m.applyUserChange(m.users["1003"], userChange{State: stateReady}, false, "") })
	e.waitState("1003", stateReserved, wait)
	e.do(func(m *model) {
		if d1.part(m.users["1003"]) == nil {
			t.Errorf("1003 did not get the oldest call")
		}
		m.applyUserChange(m.users["1002"], userChange{State: stateReady}, false, "")
		m.applyUserChange(m.users["1001"], userChange{State: stateReady}, false, "")
	})
	e.waitState("1002", stateReserved, wait)
	e.do(func(m *model) {
		if d2.part(m.users["1002"]) == nil {
			t.Errorf("1002 (READY before 1001) did not get the second call")
		}
		if m.users["1001"].state != stateReady {
			t.Errorf("1001 is %s", m.users["1001"].state)
		}
		// The next call goes to 1001, the only READY agent.
		d3 := m.placeCall(m.queue("5001"), "5550103", nil)
		if d3.part(m.users["1001"]) == nil {
			t.Errorf("1001 did not get the third call")
		}
		s := m.queueStats(m.queue("5001"))
		if s.CallsInQueue != 0 || s.AgentsBusyOther != 3 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestQueueStatisticsNotifications(t *testing.T) {
	e := newEnv(t, Config{})
	e.do(func(m *model) { m.statTimer = m.tmr.after(m.t.queueStats, m.tickQueueStats) })
	a := e.sides[sideA]
	first := a.waitFor(t, wait, "a first Queue/5001 PUT", onNode(finesse.QueueNode("5001"), finesse.EventPut))
	q, err := finesse.ParseQueue(first.Data)
	if err != nil || q.Name != "Sales" || q.Statistics == nil || q.Statistics.CallsInQueue != 0 {
		t.Fatalf("queue %+v (%v)", q, err)
	}
	// Nothing changes: no more notifications.
	e.flush()
	a.none(t, 3*e.m.t.queueStats, "while nothing changed", onNode(finesse.QueueNode("5001"), finesse.EventPut))
	e.do(func(m *model) { m.placeCall(m.queue("5001"), "5550201", nil) })
	u := a.waitFor(t, wait, "Queue/5001 PUT after a call arrives", onNode(finesse.QueueNode("5001"), finesse.EventPut))
	if q, _ := finesse.ParseQueue(u.Data); q.Statistics.CallsInQueue != 1 {
		t.Fatalf("callsInQueue %d", q.Statistics.CallsInQueue)
	}
}

func TestConsultAndTransfer(t *testing.T) {
	e := newEnv(t, Config{})
	e.ready("1001")
	e.login("1002")
	var id string
	e.do(func(m *model) { id = m.placeCall(m.queue("5001"), "5559000", nil).id })
	dlg := "/finesse/api/Dialog/" + id
	a := e.sides[sideA]
	e.must(202, "PUT", dlg, "1001:demo", actionBody("ANSWER", "51001"))
	e.waitState("1001", stateTalking, wait)

	e.must(202, "PUT", dlg, "1001:demo", actionBody("CONSULT_CALL", "51001", "<toAddress>51002</toAddress>"), "requestId", "c1")
	a.waitFor(t, wait, "original call HELD", withReq("c1", dialogPut("1001", "51001", "HELD")))
	post := a.waitFor(t, wait, "consult call on 1002", withReq("c1", onNode(finesse.DialogsNode("1002"), finesse.EventPost)))
	cons := dialogOf(t, post)
	if cons.MediaProperties.CallType != "CONSULT" || cons.AssociatedDialogURI != dlg || cons.FromAddress != "51001" || cons.ToAddress != "51002" {
		t.Fatalf("consult dialog %+v", cons)
	}
	e.waitState("1002", stateReserved, wait)
	e.must(202, "PUT", "/finesse/api/Dialog/"+cons.ID, "1002:demo", actionBody("ANSWER", "51002"), "requestId", "c2")
	e.waitState("1002", stateTalking, wait)
	// Now 1001 may transfer or conference, on both calls.
	u := a.waitFor(t, wait, "original call offers TRANSFER", withReq("c2", func(u finesse.Update) bool {
		return u.Node == finesse.DialogsNode("1001") && u.Source == dlg
	}))
	wantActions(t, "held original", participantOf(dialogOf(t, u), "51001"), "RETRIEVE", "DROP", "UPDATE_CALL_DATA", "TRANSFER", "CONFERENCE")
	u = a.waitFor(t, wait, "consult call ACTIVE", withReq("c2", dialogPut("1001", "51001", "ACTIVE")))
	wantActions(t, "active consult", participantOf(dialogOf(t, u), "51001"), "HOLD", "DROP", "UPDATE_CALL_DATA", "SEND_DTMF", "TRANSFER", "CONFERENCE")
	e.must(401, "PUT", dlg, "1002:demo", actionBody("TRANSFER", "51002")) // 1002 is not on the original call
	e.must(202, "PUT", dlg, "1001:demo", actionBody("TRANSFER", "51001"), "requestId", "c3")

	got := a.waitFor(t, wait, "1002 receives the original call", withReq("c3", onNode(finesse.DialogsNode("1002"), finesse.EventPost)))
	od := dialogOf(t, got)
	if od.ID != id || participantOf(od, "51002") == nil || participantOf(od, "51002").State != "ACTIVE" || participantOf(od, "5559000").State != "ACTIVE" {
		t.Fatalf("transferred dialog %+v", od)
	}
	a.waitFor(t, wait, "consult call deleted for 1002", withReq("c3", func(u finesse.Update) bool {
		return u.Node == finesse.DialogsNode("1002") && u.Event == finesse.EventDelete && dialogOf(t, u).ID == cons.ID
	}))
	a.waitFor(t, wait, "consult call deleted for 1001", withReq("c3", func(u finesse.Update) bool {
		return u.Node == finesse.DialogsNode("1001") && u.Event == finesse.EventDelete && dialogOf(t, u).ID == cons.ID
	}))
	a.waitFor(t, wait, "1001 wraps up", withReq("c3", dialogPut("1001", "51001", "WRAP_UP")))
	e.waitState("1001", stateWorkReady, wait)
	if s := e.state("1002"); s != stateTalking {
		t.Fatalf("1002 %s", s)
	}
	// 1002 ends the call; it came from NOT_READY, so it wraps up in WORK.
	e.must(202, "PUT", dlg, "1002:demo", actionBody("DROP", "51002"))
	e.waitState("1002", stateWork, wait)
}

func TestConsultConference(t *testing.T) {
	e := newEnv(t, Config{})
	e.ready("1001")
	e.login("1002")
	var d *dialog
	e.do(func(m *model) {
		d = m.placeCall(m.queue("5001"), "5559001", nil)
		u1, u2 := m.users["1001"], m.users["1002"]
		m.applyDialogAction(u1, d, dialogRequest{Action: actAnswer, Target: "51001"}, "")
		m.applyDialogAction(u1, d, dialogRequest{Action: actConsult, Target: "51001", To: "51002"}, "")
		m.applyDialogAction(u2, d.consult, dialogRequest{Action: actAnswer, Target: "51002"}, "")
		m.applyDialogAction(u1, d, dialogRequest{Action: actConference, Target: "51001"}, "")
		if d.consult != nil || len(d.parts) != 3 || d.liveCount() != 3 {
			t.Fatalf("conference: consult %v, %d parties", d.consult, d.liveCount())
		}
		for _, p := range d.parts {
			if p.state != partActive {
				t.Errorf("%s is %s", p.addr, p.state)
			}
		}
		// One agent leaves: the other stays with the customer.
		m.applyDialogAction(u1, d, dialogRequest{Action: actDrop, Target: "51001"}, "")
		if d.state != dlgActive || d.part(u2).state != partActive {
			t.Errorf("after 1001 left: dialog %s, 1002 %s", d.state, d.part(u2).state)
		}
		if u1.state != stateWorkReady || u2.state != stateTalking {
			t.Errorf("states %s %s", u1.state, u2.state)
		}
	})
}

func TestCallControlFailuresAreAsync(t *testing.T) {
	e := newEnv(t, Config{})
	e.ready("1001")
	var id string
	e.do(func(m *model) {
		d := m.placeCall(m.queue("5001"), "5559002", nil)
		id = d.id
		m.applyDialogAction(m.users["1001"], d, dialogRequest{Action: actAnswer, Target: "51001"}, "")
	})
	dlg := "/finesse/api/Dialog/" + id
	// 1003 is signed out: a consult to its extension fails in CTI.
	e.must(202, "PUT", dlg, "1001:demo", actionBody("CONSULT_CALL", "51001", "<toAddress>51003</toAddress>"), "requestId", "f1")
	u := e.sides[sideA].waitFor(t, wait, "async apiErrors", withReq("f1", onNode(finesse.DialogsNode("1001"), finesse.EventPut)))
	ae, err := finesse.ParseAPIErrors(u.Data)
	if err != nil || ae.Errors[0].ErrorType != "Call Operation Failure" || ae.Errors[0].ErrorMessage != "CF_RESOURCE_OUT_OF_SERVICE" || u.Source != dlg {
		t.Fatalf("async error %s source %s (%v)", u.Data, u.Source, err)
	}
	// A nonexistent extension.
	e.must(202, "PUT", dlg, "1001:demo", actionBody("TRANSFER_SST", "51001", "<toAddress>59876</toAddress>"), "requestId", "f2")
	u = e.sides[sideA].waitFor(t, wait, "invalid destination", withReq("f2", onNode(finesse.DialogsNode("1001"), finesse.EventPut)))
	if ae, _ := finesse.ParseAPIErrors(u.Data); ae == nil || ae.Errors[0].ErrorMessage != "CF_INVALID_DESTINATION" {
		t.Fatalf("async error %s", u.Data)
	}
	if s := e.state("1001"); s != stateTalking {
		t.Fatalf("state after failed requests %s", s)
	}
}

func TestMakeCall(t *testing.T) {
	e := newEnv(t, Config{})
	e.login("1001")
	e.login("1002")
	a := e.sides[sideA]
	e.must(400, "POST", "/finesse/api/User/1001/Dialogs", "1001:demo", "<Dialog><requestedAction>MAKE_CALL</requestedAction><fromAddress>51002</fromAddress><toAddress>5550000</toAddress></Dialog>")
	e.must(400, "POST", "/finesse/api/User/1001/Dialogs", "1001:demo", "<Dialog><requestedAction>MAKE_CALL</requestedAction><fromAddress>51001</fromAddress></Dialog>")
	e.must(401, "POST", "/finesse/api/User/1002/Dialogs", "1001:demo", "<Dialog><requestedAction>MAKE_CALL</requestedAction><fromAddress>51002</fromAddress><toAddress>5550000</toAddress></Dialog>")

	// To an outside number: INITIATING, then ALERTING, answered after the ring time.
	e.must(202, "POST", "/finesse/api/User/1001/Dialogs", "1001:demo", "<Dialog><requestedAction>MAKE_CALL</requestedAction><fromAddress>51001</fromAddress><toAddress>5550000</toAddress></Dialog>", "requestId", "mc1")
	post := a.waitFor(t, wait, "Dialogs POST", withReq("mc1", onNode(finesse.DialogsNode("1001"), finesse.EventPost)))
	d := dialogOf(t, post)
	if d.State != "INITIATING" || d.MediaProperties.CallType != "OUT" {
		t.Fatalf("new outbound dialog %+v", d)
	}
	wantActions(t, "initiating caller", participantOf(d, "51001"), "DROP", "UPDATE_CALL_DATA")
	a.waitFor(t, wait, "ringing", withReq("mc1", dialogPut("1001", "51001", "INITIATED")))
	a.waitFor(t, wait, "answered by the far end", dialogPut("1001", "51001", "ACTIVE"))
	e.waitState("1001", stateTalking, wait)
	e.must(202, "PUT", "/finesse/api/Dialog/"+d.ID, "1001:demo", actionBody("DROP", "51001"))
	// Outbound calls have no wrap-up: back to NOT_READY.
	a.waitFor(t, wait, "Dialogs DELETE", onNode(finesse.DialogsNode("1001"), finesse.EventDelete))
	e.waitState("1001", stateNotReady, wait)

	// Agent to agent.
	e.must(202, "POST", "/finesse/api/User/1001/Dialogs", "1001:demo", "<Dialog><requestedAction>MAKE_CALL</requestedAction><fromAddress>51001</fromAddress><toAddress>51002</toAddress></Dialog>", "requestId", "mc2")
	in := a.waitFor(t, wait, "the call rings 1002", withReq("mc2", onNode(finesse.DialogsNode("1002"), finesse.EventPost)))
	d2 := dialogOf(t, in)
	if d2.MediaProperties.CallType != "AGENT_INSIDE" {
		t.Fatalf("call type %s", d2.MediaProperties.CallType)
	}
	e.waitState("1002", stateReserved, wait)
	e.must(202, "PUT", "/finesse/api/Dialog/"+d2.ID, "1002:demo", actionBody("ANSWER", "51002"))
	e.waitState("1002", stateTalking, wait)
	e.must(202, "PUT", "/finesse/api/Dialog/"+d2.ID, "1002:demo", actionBody("DROP", "51002"))
	e.waitState("1001", stateNotReady, wait)
	e.waitState("1002", stateNotReady, wait)

	// To a signed-out agent: async failure on the Dialogs node.
	e.must(202, "POST", "/finesse/api/User/1001/Dialogs", "1001:demo", "<Dialog><requestedAction>MAKE_CALL</requestedAction><fromAddress>51001</fromAddress><toAddress>51004</toAddress></Dialog>", "requestId", "mc3")
	u := a.waitFor(t, wait, "apiErrors", withReq("mc3", onNode(finesse.DialogsNode("1001"), finesse.EventPut)))
	if _, err := finesse.ParseAPIErrors(u.Data); err != nil {
		t.Fatalf("%s", u.Data)
	}
	e.do(func(m *model) {
		if len(m.dialogs) != 0 {
			t.Errorf("%d dialogs left", len(m.dialogs))
		}
	})
}

func TestForcedLogout(t *testing.T) {
	const delay = 300 * time.Millisecond
	e := newEnv(t, Config{ForcedLogoutDelay: delay})
	a := e.sides[sideA]
	e.ready("1001") // present on side A
	e.login("1002")

	// 1001's last session goes away: logged out with reason 255.
	e.do(func(m *model) { m.presence(sideA, "1001", false) })
	if s := e.state("1001"); s != stateReady {
		t.Fatalf("logged out at once (%s): the rule waits the delay", s)
	}
	u := a.waitFor(t, wait, "forced logout", userState("1001", "LOGOUT"))
	if x, _ := finesse.ParseUser(u.Data); x.ReasonCodeID != "255" || x.ReasonCode == nil || x.ReasonCode.Category != "LOGOUT" {
		t.Fatalf("forced logout reason %+v", x)
	}

	// 1002 goes away but comes back on the same side in time: stays.
	e.do(func(m *model) { m.presence(sideA, "1002", false) })
	time.Sleep(delay / 6)
	e.do(func(m *model) { m.presence(sideA, "1002", true) })
	time.Sleep(2 * delay)
	if s := e.state("1002"); s != stateNotReady {
		t.Fatalf("1002 %s: a session back in time cancels the logout", s)
	}
	// 1002 moves to side B while side A is in service: A still logs it out
	// after the delay (B.9), although it is present on B.
	e.do(func(m *model) {
		m.presence(sideB, "1002", true)
		m.presence(sideA, "1002", false)
	})
	if s := e.state("1002"); s != stateNotReady {
		t.Fatalf("1002 logged out at once (%s): the rule waits the delay", s)
	}
	u = a.waitFor(t, wait, "side A's forced logout of 1002", userState("1002", "LOGOUT"))
	if x, _ := finesse.ParseUser(u.Data); x.ReasonCodeID != "255" {
		t.Fatalf("1002 forced logout reason %q", x.ReasonCodeID)
	}
	// A side taken out of service forgets its desktops: 1005 moves from A
	// to B during the outage and stays signed in.
	e.login("1005")
	e.do(func(m *model) {
		m.presence(sideA, "1005", true)
		m.setInService(sideA, false)
		m.presence(sideA, "1005", false)
		m.presence(sideB, "1005", true)
	})
	time.Sleep(2 * delay)
	e.do(func(m *model) { m.setInService(sideA, true) })
	time.Sleep(2 * delay)
	if s := e.state("1005"); s != stateNotReady {
		t.Fatalf("1005 %s after moving to B while A was out of service", s)
	}
	// Signed in over REST with no XMPP session at all: logged out too.
	e.must(202, "PUT", "/finesse/api/User/1003", "1003:demo", stateBody("LOGIN", "extension", "51003"))
	e.waitState("1003", stateNotReady, wait)
	e.waitState("1003", stateLogout, wait)

	// During a call the logout waits for the call's end.
	e.ready("1004")
	var d *dialog
	e.do(func(m *model) {
		d = m.placeCall(m.queue("5001"), "5550009", nil)
		m.applyDialogAction(m.users["1004"], d, dialogRequest{Action: actAnswer, Target: "51004"}, "")
		m.presence(sideA, "1004", false)
	})
	u = a.waitFor(t, wait, "pendingState LOGOUT for 1004", func(u finesse.Update) bool {
		x, err := finesse.ParseUser(u.Data)
		return u.Node == finesse.UserNode("1004") && err == nil && x.PendingState == stateLogout
	})
	if x, _ := finesse.ParseUser(u.Data); x.State != "TALKING" {
		t.Fatalf("1004 %s during the call", x.State)
	}
	e.do(func(m *model) {
		m.applyDialogAction(m.users["1004"], d, dialogRequest{Action: actDrop, Target: "51004"}, "")
	})
	e.waitState("1004", stateLogout, wait)
}

func TestSideOutOfService(t *testing.T) {
	e := newEnv(t, Config{})
	e.ready("1001")
	a, b := e.sides[sideA], e.sides[sideB]
	e.flush()
	e.do(func(m *model) { m.setInService(sideA, false) })

	u := a.waitFor(t, wait, "SystemInfo OUT_OF_SERVICE on A", onNode(finesse.SystemInfoNode, finesse.EventPut))
	si, err := finesse.ParseSystemInfo(u.Data)
	if err != nil || si.Status != "OUT_OF_SERVICE" || !strings.HasPrefix(string(u.Data), "<systemInfo>") {
		t.Fatalf("SystemInfo event %s (%v)", u.Data, err)
	}
	deadline := time.Now().Add(wait)
	for a.dropCount() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a.dropCount() != 1 || b.dropCount() != 0 {
		t.Fatalf("drops A %d B %d, want 1 0", a.dropCount(), b.dropCount())
	}
	// REST on A: 503 ApiErrors except SystemInfo.
	rsp, body := e.request(sideA, "GET", "/finesse/api/User/1001", "1001:demo", "")
	if rsp.StatusCode != 503 {
		t.Fatalf("A REST %d", rsp.StatusCode)
	}
	if ae, err := finesse.ParseAPIErrors([]byte(body)); err != nil || ae.Errors[0].ErrorType != "Service Unavailable" {
		t.Fatalf("503 body %s", body)
	}
	rsp, body = e.request(sideA, "GET", "/finesse/api/SystemInfo", "", "")
	if si, _ := finesse.ParseSystemInfo([]byte(body)); rsp.StatusCode != 200 || si.Status != "OUT_OF_SERVICE" {
		t.Fatalf("A SystemInfo %d %s", rsp.StatusCode, body)
	}
	rsp, _ = e.request(sideB, "GET", "/finesse/api/User/1001", "1001:demo", "")
	if rsp.StatusCode != 200 {
		t.Fatalf("B REST %d", rsp.StatusCode)
	}
	// Events go to B only; B's SystemInfo did not change.
	rsp, _ = e.request(sideB, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("NOT_READY"), "requestId", "oos")
	if rsp.StatusCode != 202 {
		t.Fatalf("B PUT %d", rsp.StatusCode)
	}
	b.waitFor(t, wait, "event on B", withReq("oos", userState("1001", "NOT_READY")))
	a.none(t, 50*time.Millisecond, "on the out-of-service side", withReq("oos", userState("1001", "NOT_READY")))
	b.none(t, 0, "SystemInfo on B", onNode(finesse.SystemInfoNode, finesse.EventPut))

	// Back in service.
	e.do(func(m *model) { m.setInService(sideA, true) })
	u = a.waitFor(t, wait, "SystemInfo IN_SERVICE on A", func(u finesse.Update) bool {
		si, err := finesse.ParseSystemInfo(u.Data)
		return u.Node == finesse.SystemInfoNode && err == nil && si.Status == "IN_SERVICE"
	})
	a.waitFor(t, wait, "the agent's state republished on A", userState("1001", "NOT_READY"))
	e.must(200, "GET", "/finesse/api/User/1001", "1001:demo", "")
}

func TestGeneratorDeterminism(t *testing.T) {
	draw := func(seed int64) []generatedCall {
		cfg, _ := Config{Seed: seed, Robots: true}.withDefaults()
		m := newModel(cfg, cfg.timings())
		var out []generatedCall
		for range 50 {
			out = append(out, m.nextCall())
		}
		return out
	}
	a, b, c := draw(7), draw(7), draw(8)
	equal := func(x, y []generatedCall) bool {
		return slices.EqualFunc(x, y, func(p, q generatedCall) bool {
			return p.Gap == q.Gap && p.Queue == q.Queue && p.From == q.From && slices.Equal(p.Vars, q.Vars)
		})
	}
	if !equal(a, b) {
		t.Fatal("same seed, different call sequences")
	}
	if equal(a, c) {
		t.Fatal("different seeds, same call sequence")
	}
	queues := map[string]int{}
	for _, x := range a {
		queues[x.Queue]++
		if len(x.From) != 10 || !validAddress(x.From) || x.Vars[0].Name != "callVariable1" || x.Vars[2].Name != "user.CustomerTier" {
			t.Fatalf("call %+v", x)
		}
	}
	if queues["5001"] == 0 || queues["5002"] == 0 {
		t.Errorf("queues drawn %v", queues)
	}
}

func TestGeneratedCallsArriveInSeedOrder(t *testing.T) {
	run := func() []string {
		e := newEnv(t, Config{Seed: 42, CallInterval: 5 * time.Millisecond})
		e.do(func(m *model) { m.scheduleGenerator() })
		deadline := time.Now().Add(wait)
		for {
			var n int
			e.do(func(m *model) { n = m.waiting() })
			if n >= 10 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		var calls []*dialog
		e.do(func(m *model) {
			m.tmr.stop(m.genTimer)
			for _, q := range m.queues {
				calls = append(calls, q.waiting...)
			}
		})
		slices.SortFunc(calls, func(a, b *dialog) int { return strings.Compare(a.id, b.id) }) // arrival order
		var from []string
		for _, d := range calls[:10] {
			from = append(from, d.queue.id+":"+d.from)
		}
		return from
	}
	x, y := run(), run()
	if !slices.Equal(x, y) {
		t.Fatalf("same seed, different calls:\n%v\n%v", x, y)
	}
}

func TestRobotsWorkCalls(t *testing.T) {
	e := newEnv(t, Config{Agents: 8, Robots: true, Seed: 3, CallInterval: 150 * time.Millisecond})
	e.m.t.talkMin, e.m.t.talkMax = 100*time.Millisecond, 300*time.Millisecond
	e.m.t.robotWrap = 100 * time.Millisecond
	e.m.t.breakMin, e.m.t.breakMax = 50*time.Millisecond, 150*time.Millisecond
	e.do(func(m *model) {
		m.startRobots()
		m.scheduleGenerator()
	})
	a := e.sides[sideA]
	a.waitFor(t, 5*time.Second, "a robot answering", func(u finesse.Update) bool {
		return strings.HasSuffix(u.Node, "/Dialogs") && u.Event == finesse.EventPut && strings.Contains(string(u.Data), "<state>ACTIVE</state>")
	})
	a.waitFor(t, 5*time.Second, "a robot wrapping up", func(u finesse.Update) bool {
		x, err := finesse.ParseUser(u.Data)
		return err == nil && x.State == "WORK_READY" || err == nil && x.State == "WORK"
	})
	a.waitFor(t, 5*time.Second, "a robot's dialog deleted", func(u finesse.Update) bool {
		return strings.HasSuffix(u.Node, "/Dialogs") && u.Event == finesse.EventDelete
	})
	e.do(func(m *model) {
		if m.users["1001"].state != stateLogout || m.users["1001"].robot {
			t.Errorf("1001 must stay with its person: %s robot=%v", m.users["1001"].state, m.users["1001"].robot)
		}
		if !m.users["1002"].robot || m.users["1002"].state == stateLogout {
			t.Errorf("1002 robot=%v state %s", m.users["1002"].robot, m.users["1002"].state)
		}
		if m.users[SupervisorID].robot {
			t.Error("the supervisor is not a robot")
		}
	})
	// A person takes over 1002 with an XMPP session: the robot lets go.
	e.do(func(m *model) { m.presence(sideB, "1002", true) })
	e.do(func(m *model) {
		if m.users["1002"].robot {
			t.Error("robot still drives 1002 after a real session appeared")
		}
	})
	// A REST write with 1003's own credentials takes it over too.
	var state string
	e.do(func(m *model) { state = m.users["1003"].state })
	e.request(sideA, "PUT", "/finesse/api/User/1003", "1003:demo", stateBody("NOT_READY"))
	e.do(func(m *model) {
		if m.users["1003"].robot {
			t.Errorf("robot still drives 1003 (was %s) after its own REST write", state)
		}
	})
}

func TestRobotConsultsAndTransfers(t *testing.T) {
	e := newEnv(t, Config{Agents: 3, Robots: true})
	e.m.odds = robotOdds{consults: 1} // always consult, customers never hang up, no breaks
	e.m.t.talkMin, e.m.t.talkMax = 100*time.Millisecond, 150*time.Millisecond
	e.do(func(m *model) {
		for _, id := range []string{"1002", "1003"} {
			u := m.users[id]
			m.applyUserChange(u, userChange{State: stateLogin, Extension: u.ext}, false, "")
		}
		m.applyUserChange(m.users["1002"], userChange{State: stateReady}, false, "")
		m.placeCall(m.queue("5001"), "5557777", nil)
	})
	a := e.sides[sideA]
	cons := a.waitFor(t, wait, "robot 1002 consults robot 1003", func(u finesse.Update) bool {
		return u.Node == finesse.DialogsNode("1003") && u.Event == finesse.EventPost && strings.Contains(string(u.Data), "<callType>CONSULT</callType>")
	})
	_ = cons
	a.waitFor(t, wait, "1003 receives the customer's call by transfer", func(u finesse.Update) bool {
		return u.Node == finesse.DialogsNode("1003") && u.Event == finesse.EventPost && strings.Contains(string(u.Data), "<callType>ACD_IN</callType>")
	})
	a.waitFor(t, wait, "1002 wraps up", userState("1002", "WORK_READY"))
	// 1003 ends the transferred call and wraps up too.
	a.waitFor(t, wait, "1003 wraps up", func(u finesse.Update) bool {
		x, err := finesse.ParseUser(u.Data)
		return u.Node == finesse.UserNode("1003") && err == nil && (x.State == "WORK" || x.State == "WORK_READY")
	})
}

// checkInvariants reports model inconsistencies: agents whose state does
// not match their calls, dialogs nobody can reach.
func checkInvariants(m *model) []string {
	var bad []string
	queued := map[*dialog]bool{}
	for _, q := range m.queues {
		for _, d := range q.waiting {
			queued[d] = true
		}
	}
	for _, u := range m.agents {
		cs := m.callState(u)
		switch {
		case cs != "" && cs != u.state:
			bad = append(bad, fmt.Sprintf("%s is %s but its calls say %s", u.id, u.state, cs))
		case cs == "" && inCall(u.state):
			bad = append(bad, fmt.Sprintf("%s is %s without a call", u.id, u.state))
		case u.state == stateReady && len(u.dialogs) > 0:
			bad = append(bad, fmt.Sprintf("%s is READY with %d dialogs listed", u.id, len(u.dialogs)))
		}
		for _, d := range u.dialogs {
			if m.dialogs[d.id] != d {
				bad = append(bad, fmt.Sprintf("%s lists forgotten dialog %s", u.id, d.id))
			}
			if p := d.part(u); p == nil || !p.listed {
				bad = append(bad, fmt.Sprintf("%s lists dialog %s without a listed participant", u.id, d.id))
			}
		}
	}
	for _, d := range m.dialogs {
		if !queued[d] && !m.listedByAnyone(d) && d.liveCount() < 2 {
			bad = append(bad, fmt.Sprintf("dialog %s (%s, %d parties) is unreachable", d.id, d.state, len(d.parts)))
		}
	}
	return bad
}

func TestRobotsSoak(t *testing.T) {
	e := newEnv(t, Config{Agents: 30, Robots: true, Seed: 11, CallInterval: 20 * time.Millisecond})
	e.m.odds = robotOdds{customerHangsUp: 0.3, consults: 0.4, takesBreak: 0.3}
	e.m.t.ring = 20 * time.Millisecond
	e.m.t.talkMin, e.m.t.talkMax = 50*time.Millisecond, 200*time.Millisecond
	e.m.t.robotWrap = 50 * time.Millisecond
	e.m.t.breakMin, e.m.t.breakMax = 20*time.Millisecond, 100*time.Millisecond
	e.m.t.wrapUpTimer = 150 * time.Millisecond
	e.m.t.loginSpread = 50 * time.Millisecond
	e.do(func(m *model) {
		m.startRobots()
		m.scheduleGenerator()
		m.statTimer = m.tmr.after(m.t.queueStats, m.tickQueueStats)
	})
	// Run until enough happened (at least 2 s), checking invariants all along;
	// a slow machine gets more time, up to 20 s.
	count := func() (offers, consults int) {
		for _, u := range e.sides[sideA].all() {
			if u.Event != finesse.EventPost {
				continue
			}
			if strings.Contains(string(u.Data), "<callType>ACD_IN</callType>") && strings.Contains(string(u.Data), "<associatedDialogUri></associatedDialogUri>") {
				offers++
			}
			if strings.Count(string(u.Data), "AGENT_DEVICE") > 1 {
				consults++
			}
		}
		return offers, consults
	}
	start := time.Now()
	checks := 0
	for {
		time.Sleep(25 * time.Millisecond)
		e.do(func(m *model) {
			checks++
			if bad := checkInvariants(m); len(bad) > 0 {
				t.Fatalf("after %d checks:\n%s", checks, strings.Join(bad, "\n"))
			}
		})
		offers, consults := count()
		enough := offers >= 40 && consults >= 3 && time.Since(start) > 2*time.Second
		if enough || time.Since(start) > 20*time.Second {
			t.Logf("%v: %d invariant checks, %d ACD offers, %d calls posted with two agents (consults)", time.Since(start).Round(time.Millisecond), checks, offers, consults)
			if !enough {
				t.Fatalf("too little happened in 20 s: %d offers, %d consults", offers, consults)
			}
			return
		}
	}
}
