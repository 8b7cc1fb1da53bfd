package sim

import (
	"encoding/xml"
	"net/http"
	"strings"
)

// Supervisor call actions (finesse-protocol.md E; Finesse developer guide
// "Dialog—Make a Silent Monitor Call", "Dialog—Make a Barge Call",
// PARTICIPANT_DROP):
//
//   - SILENT_MONITOR: POST /User/{supervisor}/Dialogs with fromAddress (the
//     supervisor's extension) and toAddress (a team member's extension who
//     is TALKING): a new dialog (callType SUPERVISOR_MONITOR) in the
//     supervisor's Dialogs; the supervisor becomes TALKING; the agent sees
//     nothing. DROP on it ends the monitoring; it also ends when the agent
//     leaves the call.
//   - BARGE_CALL: POST with associatedDialogUri naming the monitor dialog:
//     the monitor call ends and the supervisor joins the agent's call as a
//     participant (a conference); the agent sees the supervisor join.
//   - PARTICIPANT_DROP: PUT /Dialog/{id} by a supervisor on the call, with
//     targetMediaAddress naming the party to drop (supervisor_only, the
//     Finesse default): "intercept" when it is the agent.

// Supervisor requested actions and the monitor call type.
const (
	actSilentMonitor   = "SILENT_MONITOR"
	actBarge           = "BARGE_CALL"
	actParticipantDrop = "PARTICIPANT_DROP"
	callMonitor        = "SUPERVISOR_MONITOR"
)

// superviseRequestXML is the body of a SILENT_MONITOR or BARGE_CALL POST.
type superviseRequestXML struct {
	XMLName             xml.Name `xml:"Dialog"`
	AssociatedDialogURI string   `xml:"associatedDialogUri"`
}

// superviseActions gives the actions of p on a monitor call, and of a
// supervisor who barged in; ok is false for every other participant.
func (m *model) superviseActions(d *dialog, p *participant) (actions []string, ok bool) {
	if d.callType == callMonitor {
		if p.agent != nil && p.state == partActive {
			return []string{actDrop, actBarge}, true
		}
		return nil, true
	}
	if p.agent != nil && p.state == partActive && p.agent.isSupervisorOf(TeamID) && d.liveCount() >= 3 {
		return []string{actDrop, actUpdate, actParticipantDrop}, true
	}
	return nil, false
}

// talkingCall returns the call u is talking on (its participant ACTIVE).
func talkingCall(u *user) *dialog {
	for _, d := range u.dialogs {
		if p := d.part(u); p != nil && p.state == partActive && d.callType != callMonitor {
			return d
		}
	}
	return nil
}

// routeSuperviseCall validates a SILENT_MONITOR or BARGE_CALL POST by sup
// (m.mu held) and schedules it after the CTI delay.
func (m *model) routeSuperviseCall(sup *user, r dialogRequest, body []byte, reqID string) (int, any, *restError) {
	if !sup.isSupervisorOf(TeamID) {
		return 0, nil, errForbidden(sup.id)
	}
	switch {
	case r.From == "":
		return 0, nil, errMissing("fromAddress")
	case r.To == "":
		return 0, nil, errMissing("toAddress")
	case r.From != sup.ext:
		return 0, nil, errInput("fromAddress", r.From+" is not the extension of user "+sup.id)
	case !sup.loggedIn():
		return 0, nil, errState(sup.state, r.Action)
	}
	agent := m.byExt[r.To]
	if agent == nil || agent == sup || agent.isSupervisorOf(TeamID) {
		return 0, nil, errInput("toAddress", r.To+" is not the extension of an agent on your team")
	}
	if r.Action == actSilentMonitor {
		if m.callState(sup) != "" {
			return 0, nil, errState(sup.state, actSilentMonitor)
		}
		if agent.state != stateTalking || talkingCall(agent) == nil {
			return 0, nil, errState(agent.state, actSilentMonitor)
		}
		m.tmr.after(m.t.cti, func() { m.silentMonitor(sup, agent, reqID) })
		return http.StatusAccepted, nil, nil
	}
	var x superviseRequestXML
	if err := decodeBody(body, &x); err != nil {
		return 0, nil, errInput("body", err.Error())
	}
	if x.AssociatedDialogURI == "" {
		return 0, nil, errMissing("associatedDialogUri")
	}
	mon := m.dialogs[strings.TrimPrefix(x.AssociatedDialogURI, "/finesse/api/Dialog/")]
	if mon == nil || mon.callType != callMonitor || mon.part(sup) == nil || mon.part(sup).state != partActive {
		return 0, nil, errInput("associatedDialogUri", "not a silent monitor call of user "+sup.id)
	}
	if mon.monitored == nil || mon.monitored.part(agent) == nil || !mon.monitored.part(agent).live() {
		return 0, nil, errState("", "the monitored call has ended")
	}
	m.tmr.after(m.t.cti, func() { m.barge(sup, mon, reqID) })
	return http.StatusAccepted, nil, nil
}

// silentMonitor starts sup's monitor call on agent's current call.
func (m *model) silentMonitor(sup, agent *user, reqID string) {
	target := talkingCall(agent)
	if target == nil || m.callState(sup) != "" {
		m.publishAPIError(sup.uri()+"/Dialogs", sup.uri()+"/Dialogs", reqID, ctiError("CF_INVALID_OBJECT_STATE", "26"))
		return
	}
	d := m.newDialog(callMonitor, sup.ext, agent.ext)
	d.monitored, d.dialed, d.state = target, agent.ext, dlgActive
	ps := m.addPart(d, sup.ext, sup, partActive)
	m.addPart(d, agent.ext, nil, partActive) // the agent's device, as the monitor call sees it
	m.list(d, ps, reqID)
	m.syncAgent(sup, reqID)
}

// barge ends sup's monitor call and adds sup to the monitored call.
func (m *model) barge(sup *user, mon *dialog, reqID string) {
	target := mon.monitored
	if _, ok := m.dialogs[mon.id]; !ok || target == nil || m.dialogs[target.id] != target || target.state == dlgDropped {
		m.publishAPIError(sup.uri()+"/Dialogs", sup.uri()+"/Dialogs", reqID, ctiError("CF_INVALID_OBJECT_STATE", "26"))
		return
	}
	now := m.now()
	joined := &participant{addr: sup.ext, agent: sup, state: partActive, start: now, changed: now, barged: true}
	target.parts = append(target.parts, joined)
	m.list(target, joined, reqID)
	m.publishDialog(target, reqID)
	m.stopMonitor(mon, reqID)
	m.syncAgent(sup, reqID)
}

// routeParticipantDrop validates a PARTICIPANT_DROP by u on d and
// schedules it.
func (m *model) routeParticipantDrop(u *user, d *dialog, r dialogRequest, reqID string) (int, any, *restError) {
	if !m.allowed(d, d.part(u), actParticipantDrop) {
		return 0, nil, &restError{status: http.StatusBadRequest, typ: "Invalid State", msg: "PARTICIPANT_DROP is allowed only to a supervisor on a conference", data: actParticipantDrop}
	}
	if r.Target == "" {
		return 0, nil, errMissing("targetMediaAddress")
	}
	var victim *participant
	for _, p := range d.parts {
		if p.addr == r.Target && p.live() && p.agent != u {
			victim = p
		}
	}
	if victim == nil {
		return 0, nil, errInput("targetMediaAddress", r.Target+" is not another party of dialog "+d.id)
	}
	m.tmr.after(m.t.cti, func() {
		if m.dialogs[d.id] != d || !victim.live() {
			m.publishAPIError(u.uri()+"/Dialogs", d.uri, reqID, ctiError("CF_INVALID_OBJECT_STATE", "26"))
			return
		}
		m.leave(d, victim, reqID)
	})
	return http.StatusAccepted, nil, nil
}

// stopMonitor ends a monitor call for everyone on it.
func (m *model) stopMonitor(mon *dialog, reqID string) {
	for _, p := range mon.parts {
		if p.live() {
			m.setPart(p, partDropped)
		}
	}
	mon.state = dlgDropped
	mon.monitored = nil
	m.publishDialog(mon, reqID)
	m.settle(mon, reqID)
}

// endMonitors ends the monitor calls on d once the monitored agent has
// left it (or it ended).
func (m *model) endMonitors(d *dialog, reqID string) {
	if d.callType == callMonitor {
		return
	}
	for _, mon := range m.dialogs {
		if mon.monitored != d || mon.state == dlgDropped {
			continue
		}
		agent := m.byExt[mon.to]
		if p := d.part(agent); d.state == dlgDropped || p == nil || !p.live() {
			m.stopMonitor(mon, reqID)
		}
	}
}
