package sim

import (
	"strconv"
	"time"

	"go.uber.org/zap"

	"finesse-relay/xmpp/finesse"
)

// finesseTime formats t the way Finesse does: ISO 8601, UTC, milliseconds.
func finesseTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// userObject is the full User (REST GET and the User/{id} node).
func (m *model) userObject(u *user) *finesse.User {
	fu := m.userSummary(u)
	fu.LoginName = u.loginName
	fu.ReasonCodeID = u.reasonID
	fu.Roles = u.roles
	fu.TeamID, fu.TeamName = TeamID, TeamName
	for _, t := range u.supervises {
		fu.Teams = append(fu.Teams, finesse.Team{URI: finesse.APIPrefix + "Team/" + t, ID: t, Name: TeamName})
	}
	fu.Settings = &finesse.Settings{WrapUpOnIncoming: wrapUpOnIncoming, WrapUpOnOutgoing: wrapUpOnOutgoing}
	fu.MediaType = "1"
	fu.Dialogs = finesse.DialogsNode(u.id)
	fu.WrapUpTimer = strconv.Itoa(int(m.t.wrapUpTimer / time.Second))
	return fu
}

// userSummary holds the fields a User shares with a team member summary
// (team.go writes the summary itself).
func (m *model) userSummary(u *user) *finesse.User {
	fu := &finesse.User{
		URI: u.uri(), LoginID: u.id, LoginName: u.loginName, FirstName: u.first, LastName: u.last,
		Extension: u.ext, State: u.state, StateChangeTime: finesseTime(u.stateTime),
		PendingState: u.pending, ReasonCodeID: u.reasonID, Dialogs: finesse.DialogsNode(u.id),
	}
	if u.reasonID != reasonNone && (u.state == stateNotReady || u.state == stateLogout) {
		if r, ok := findReasonCode(u.reasonID); ok {
			fu.ReasonCode = &r
		}
	}
	return fu
}

func (m *model) dialogObject(d *dialog) *finesse.Dialog {
	fd := &finesse.Dialog{
		ID: d.id, URI: d.uri, AssociatedDialogURI: d.assoc, FromAddress: d.from, ToAddress: d.to,
		State: d.state, MediaType: "Voice",
		MediaProperties: finesse.MediaProperties{
			MediaID: "1", DialedNumber: d.dialed, CallType: d.callType, DNIS: d.dnis,
			WrapUpReason: d.wrapUpReason, CallKeyCallID: d.id, CallKeySequenceNum: "1", CallKeyPrefix: "150",
			CallVariables: append([]finesse.CallVariable(nil), d.vars...),
		},
	}
	if d.queue != nil {
		fd.MediaProperties.QueueNumber, fd.MediaProperties.QueueName = d.queue.id, d.queue.name
	}
	for _, p := range d.parts {
		typ := ""
		if p.agent != nil {
			typ = "AGENT_DEVICE"
		}
		fd.Participants = append(fd.Participants, finesse.Participant{
			Actions: m.actions(d, p), MediaAddress: p.addr, MediaAddressType: typ,
			StartTime: finesseTime(p.start), State: p.state, StateChangeTime: finesseTime(p.changed),
		})
	}
	return fd
}

func (m *model) queueObject(q *queue, s *finesse.QueueStatistics) *finesse.Queue {
	return &finesse.Queue{URI: finesse.QueueNode(q.id), ID: q.id, Name: q.name, Statistics: s}
}

// systemInfo describes side i as it answers GET SystemInfo.
func (m *model) systemInfo(i int) *finesse.SystemInfo {
	s := m.side[i]
	status := "IN_SERVICE"
	reason := ""
	if !m.inService[i] {
		status, reason = "OUT_OF_SERVICE", "CTI connection lost (simulated)"
	}
	node := func(j int) *finesse.ServerNode {
		n := m.side[j]
		return &finesse.ServerNode{Host: n.host, HTTPSPort: n.httpsPort, XMPPPort: n.xmppPort, XMPPSecurePort: n.xmppTLSPort}
	}
	// The 12.6 CTI fields (developer.cisco.com/docs/finesse/systeminfo):
	// one CTI server per side, heartbeats every 5 s, no maintenance mode
	// (the *TimeInMMode values are negative outside maintenance).
	hb, hbTime := "success", strconv.FormatInt(m.now().UnixMilli(), 10)
	cti := []finesse.CTIServer{{Host: "cg-a." + s.xmppDomain, Active: true}, {Host: "cg-b." + s.xmppDomain}}
	if !m.inService[i] {
		hb, hbTime, cti[0].Active = "failure", "", false
	}
	return &finesse.SystemInfo{
		Status: status, StatusReason: reason, DeploymentType: "UCCE", SystemAuthMode: "HYBRID",
		LastCTIHeartbeatStatus: hb, LastSuccessCTIHeartbeatTime: hbTime,
		CTIVersion: 24, CTIHeartbeatInterval: 5, CTITimeInMMode: -1, FinesseTimeInMMode: -1,
		License: "UCCE", PeripheralID: "5000",
		XMPPDomain: s.xmppDomain, XMPPPubSubDomain: s.pubsubDomain,
		PrimaryNode: node(sideA), SecondaryNode: node(sideB),
		CurrentTimestamp: finesseTime(m.now()), TimezoneOffset: "0",
		URI: finesse.SystemInfoNode, CTIServers: cti,
	}
}

// --- notifications ------------------------------------------------------

// liveSides are the sides that deliver events now (an OUT_OF_SERVICE side
// sends nothing but its SystemInfo changes).
func (m *model) liveSides() sideMask {
	var s sideMask
	for i, in := range m.inService {
		if in {
			s |= 1 << i
		}
	}
	return s
}

// emit queues one <Update> on node for sides.
func (m *model) emit(node string, ev finesse.Event, source, reqID string, obj finesse.Object, sides sideMask) {
	if sides == 0 {
		return
	}
	data, err := finesse.EncodeData(obj)
	if err != nil {
		m.log.Error("sim: encode notification", zap.String("node", node), zap.Error(err))
		return
	}
	m.emitData(node, ev, source, reqID, data, sides)
}

func (m *model) emitData(node string, ev finesse.Event, source, reqID string, data []byte, sides sideMask) {
	doc := finesse.EncodeUpdate(finesse.Update{Event: ev, Source: source, RequestID: reqID, Data: data})
	m.out.push(outItem{sides: sides, node: node, doc: doc})
}

// publishUser sends u's User PUT and the team member update (F.1, F.6).
func (m *model) publishUser(u *user, reqID string) { m.emitUser(u, reqID, m.liveSides()) }

func (m *model) emitUser(u *user, reqID string, sides sideMask) {
	m.emit(u.uri(), finesse.EventPut, u.uri(), reqID, m.userObject(u), sides)
	m.emitTeamUser(u, reqID, sides)
}

// publishDialog sends a Dialog PUT (source Dialog/{id}) to every agent
// that lists d.
func (m *model) publishDialog(d *dialog, reqID string) {
	var data []byte
	for _, p := range d.parts {
		if p.agent == nil || !p.listed {
			continue
		}
		if data == nil {
			var err error
			if data, err = finesse.EncodeData(m.dialogObject(d)); err != nil {
				m.log.Error("sim: encode dialog", zap.String("dialog", d.id), zap.Error(err))
				return
			}
		}
		m.emitData(finesse.DialogsNode(p.agent.id), finesse.EventPut, d.uri, reqID, data, m.liveSides())
	}
}

// publishDialogs sends a collection change (POST or DELETE) of d to u.
func (m *model) publishDialogs(d *dialog, u *user, ev finesse.Event, reqID string) {
	node := finesse.DialogsNode(u.id)
	list := &finesse.Dialogs{Dialogs: []finesse.Dialog{*m.dialogObject(d)}}
	m.emit(node, ev, node, reqID, list, m.liveSides())
}

// publishAPIError sends an asynchronous error (F.7, F.8).
func (m *model) publishAPIError(node, source, reqID string, e finesse.APIError) {
	m.emit(node, finesse.EventPut, source, reqID, &finesse.APIErrors{Errors: []finesse.APIError{e}}, m.liveSides())
}

// publishSystemInfo sends side i's SystemInfo PUT on side i only.
func (m *model) publishSystemInfo(i int) {
	m.emit(finesse.SystemInfoNode, finesse.EventPut, finesse.SystemInfoNode, "", m.systemInfo(i), 1<<i)
}
