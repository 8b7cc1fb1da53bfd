package sim

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"finesse-relay/xmpp/finesse"
)

// The simulator's one nonvoice Media Routing Domain: chat. Every user with
// the Agent role is in its skill group. The Media object, the Media API and
// the Dialogs/Media notifications follow Cisco's developer guide
// (developer.cisco.com/docs/finesse/media-api-parameters,
// developer.cisco.com/docs/task-routing/media-get-media and media-get-list,
// developer.cisco.com/docs/finesse/dialogsmedia-notification); see
// docs/simulator.md for what is simplified.
const (
	// ChatMRDID is the chat MRD's id (the {mrdId} of its URIs).
	ChatMRDID = "5000"
	// ChatMRDName is the chat MRD's enterprise name, which Finesse puts in
	// the mediaType of the MRD's dialogs.
	ChatMRDName = "Cisco_Chat_MRD"
	// chatQueueID/chatQueueName: the skill group chats are routed through.
	chatQueueID   = "5031"
	chatQueueName = "Chat_SG"
)

// Nonvoice dialog states (developer.cisco.com/docs/finesse/state-dialog-parameter-values).
const (
	chatOffered    = "OFFERED"
	chatAccepted   = "ACCEPTED"
	chatActive     = "ACTIVE"
	chatPaused     = "PAUSED"
	chatWrappingUp = "WRAPPING_UP"
	chatClosed     = "CLOSED"
)

// ErrNotRoutable: OfferChat named a user who is not READY in the chat MRD,
// or who handles maxDialogLimit chats already.
var ErrNotRoutable = errors.New("sim: user not ready for another chat")

// mediaState is one user's state in the chat MRD; guarded by model.mu.
type mediaState struct {
	state        string // LOGOUT, NOT_READY, READY
	reasonID     string
	stateTime    time.Time
	maxDialogs   int
	interrupt    string // ACCEPT, IGNORE
	logoutAction string // CLOSE, TRANSFER
	dialogs      []*chatDialog
	readyAt      time.Time
}

// chatDialog is one chat task.
type chatDialog struct {
	id      string
	key     int // callKeyCallId
	agent   *user
	state   string
	started time.Time // first ACTIVE
	changed time.Time
	vars    []finesse.CallVariable
	timer   *simTimer // the offer's start timeout
}

// chatMRD is the chat MRD's live state.
type chatMRD struct {
	users    map[string]*mediaState // by login id; absent means LOGOUT
	dialogs  map[string]*chatDialog
	next     int
	genTimer *simTimer
}

// mrd returns the chat MRD's state, creating it on first use.
func (m *model) mrd() *chatMRD {
	if m.chat == nil {
		m.chat = &chatMRD{users: make(map[string]*mediaState), dialogs: make(map[string]*chatDialog), next: 300}
	}
	return m.chat
}

// chatTimings: how often a chat arrives (three times the call interval,
// none when calls are not generated) and how long an offer waits for
// ACCEPT before Finesse takes it back (the MRD's start timeout).
func (m *model) chatInterval() time.Duration { return 3 * m.t.callInterval }
func (m *model) chatOfferTimeout() time.Duration {
	return max(30*m.t.ring, time.Second)
}

func isAgent(u *user) bool { return slices.Contains(u.roles, "Agent") }

// mediaOf returns u's chat state; a user never signed in is LOGOUT.
func (m *model) mediaOf(u *user) *mediaState {
	ms := m.mrd().users[u.id]
	if ms == nil {
		ms = &mediaState{state: stateLogout, reasonID: reasonNone}
		m.mrd().users[u.id] = ms
	}
	return ms
}

// mediaObject is u's Media for the chat MRD, as Cisco's Get Media sample
// writes it: <id> holds the MRD id and there is no <mrdId>. A user outside
// the skill group gets the short form (uri, description, id,
// interruptible, name).
func (m *model) mediaObject(u *user) *finesse.Media {
	o := &finesse.Media{URI: finesse.MediaNode(u.id, ChatMRDID), ID: ChatMRDID, Name: ChatMRDName, Description: "Chat"}
	if !isAgent(u) {
		return o
	}
	ms := m.mediaOf(u)
	o.MediaConnected = true
	o.State = ms.state
	o.StateChangeTime = finesseTime(ms.stateTime)
	o.ReasonCodeID = ms.reasonID
	if ms.reasonID != reasonNone && ms.reasonID != "" && ms.state != stateReady {
		if rc, ok := findReasonCode(ms.reasonID); ok {
			o.ReasonCode = &rc
		}
	}
	if ms.state != stateLogout {
		o.Routable = true
		o.MaxDialogLimit = ms.maxDialogs
		o.InterruptAction = ms.interrupt
		o.DialogLogoutAction = ms.logoutAction
	}
	return o
}

func (m *model) chatDialogObject(d *chatDialog) *finesse.Dialog {
	return &finesse.Dialog{
		ID: d.id, URI: finesse.DialogURI(d.id), State: d.state, MediaType: ChatMRDName,
		MediaProperties: finesse.MediaProperties{
			MediaID: ChatMRDID, QueueNumber: chatQueueID, QueueName: chatQueueName,
			CallKeyCallID: strconv.Itoa(d.key), CallKeySequenceNum: "1", CallKeyPrefix: "150",
			CallVariables: slices.Clone(d.vars),
		},
		Participants: []finesse.Participant{{
			Actions: chatActions(d.state), MediaAddress: d.agent.id, StartTime: finesseTime(d.started),
			State: d.state, StateChangeTime: finesseTime(d.changed),
		}},
	}
}

// chatActions are the actions the agent may take on a chat in state.
func chatActions(state string) []string {
	switch state {
	case chatOffered:
		return []string{"ACCEPT"}
	case chatAccepted:
		return []string{"START", "CLOSE"}
	case chatActive:
		return []string{"PAUSE", "WRAP_UP", "CLOSE"}
	case chatPaused:
		return []string{"RESUME", "CLOSE"}
	case chatWrappingUp:
		return []string{"CLOSE"}
	}
	return nil
}

// --- notifications ------------------------------------------------------

func (m *model) publishMedia(u *user, reqID string) {
	node := finesse.MediaNode(u.id, ChatMRDID)
	m.emit(node, finesse.EventPut, node, reqID, m.mediaObject(u), m.liveSides())
}

// publishChats sends a collection change of the chat MRD to d's agent:
// node Dialogs/Media, source the MRD's Media/{mrdId}/Dialogs.
func (m *model) publishChats(d *chatDialog, ev finesse.Event, reqID string) {
	list := &finesse.Dialogs{Dialogs: []finesse.Dialog{*m.chatDialogObject(d)}}
	m.emit(finesse.MediaDialogsNode(d.agent.id), ev, finesse.MRDDialogsURI(d.agent.id, ChatMRDID), reqID, list, m.liveSides())
}

// publishChat sends an item update of d (source Dialog/{id}).
func (m *model) publishChat(d *chatDialog, reqID string) {
	m.emit(finesse.MediaDialogsNode(d.agent.id), finesse.EventPut, finesse.DialogURI(d.id), reqID, m.chatDialogObject(d), m.liveSides())
}

// --- REST ---------------------------------------------------------------

// mediaRequestXML is the body of PUT /User/{id}/Media/{mrdId}.
type mediaRequestXML struct {
	State              string `xml:"state"`
	ReasonCodeID       string `xml:"reasonCodeId"`
	MaxDialogLimit     string `xml:"maxDialogLimit"`
	InterruptAction    string `xml:"interruptAction"`
	DialogLogoutAction string `xml:"dialogLogoutAction"`
}

// routeMedia serves /User/{id}/Media[/{mrdId}[/Dialogs]]. Users can only
// act on, and read, their own Media objects.
func (h *restHandler) routeMedia(r *http.Request, caller, target *user, seg []string, body []byte, reqID string) (int, any, *restError) {
	m := h.m
	if caller != target {
		return 0, nil, errForbidden(caller.id)
	}
	if len(seg) == 3 {
		if r.Method != http.MethodGet {
			return 0, nil, errMethod(r.Method)
		}
		return http.StatusOK, &finesse.MediaList{Media: []finesse.Media{*m.mediaObject(target)}}, nil
	}
	if seg[3] != ChatMRDID {
		return 0, nil, errNotFound("Media", seg[3])
	}
	if len(seg) == 5 && seg[4] == "Dialogs" {
		if r.Method != http.MethodGet {
			return 0, nil, errMethod(r.Method)
		}
		list := &finesse.Dialogs{Dialogs: []finesse.Dialog{}}
		if isAgent(target) {
			for _, d := range m.mediaOf(target).dialogs {
				list.Dialogs = append(list.Dialogs, *m.chatDialogObject(d))
			}
		}
		return http.StatusOK, list, nil
	}
	if len(seg) != 4 {
		return 0, nil, errNotFound("Resource", strings.Join(seg, "/"))
	}
	switch r.Method {
	case http.MethodGet:
		return http.StatusOK, m.mediaObject(target), nil
	case http.MethodPut:
		var x mediaRequestXML
		if err := decodeBody(body, &x); err != nil {
			return 0, nil, errInput("body", err.Error())
		}
		if !isAgent(target) {
			return 0, nil, errMediaNotLoggedIn()
		}
		apply, e := m.checkMediaChange(target, x)
		if e != nil {
			return 0, nil, e
		}
		m.tmr.after(m.t.cti, func() { apply(reqID) })
		return http.StatusAccepted, nil, nil
	}
	return 0, nil, errMethod(r.Method)
}

// checkMediaChange validates a Media PUT synchronously and returns the
// change to apply after the CTI delay.
func (m *model) checkMediaChange(u *user, x mediaRequestXML) (func(reqID string), *restError) {
	ms := m.mediaOf(u)
	state := strings.TrimSpace(x.State)
	reason := strings.TrimSpace(x.ReasonCodeID)
	switch state {
	case "":
		return nil, errMissing("state")
	case stateLogin:
		limit, err := strconv.Atoi(strings.TrimSpace(x.MaxDialogLimit))
		switch {
		case strings.TrimSpace(x.MaxDialogLimit) == "":
			return nil, errMissing("maxDialogLimit")
		case err != nil || limit < 1 || limit > 10:
			return nil, errInput("maxDialogLimit", "maxDialogLimit must be 1 to 10")
		}
		interrupt := strings.TrimSpace(x.InterruptAction)
		switch interrupt {
		case "":
			return nil, errMissing("interruptAction")
		case "ACCEPT", "IGNORE":
		default:
			return nil, errInput("interruptAction", "interruptAction must be ACCEPT or IGNORE")
		}
		logout := strings.TrimSpace(x.DialogLogoutAction)
		switch logout {
		case "":
			logout = "CLOSE"
		case "CLOSE", "TRANSFER":
		default:
			return nil, errInput("dialogLogoutAction", "dialogLogoutAction must be CLOSE or TRANSFER")
		}
		return func(reqID string) {
			if ms.state != stateLogout {
				m.publishAPIError(finesse.MediaNode(u.id, ChatMRDID), finesse.MediaNode(u.id, ChatMRDID), reqID, finesse.APIError{
					ErrorType: "Agent already logged into MRD", ErrorMessage: "E_ARM_STAT_AGENT_ALREADY_LOGGED_IN", ErrorData: "1", ErrorMedia: ChatMRDID})
				return
			}
			ms.maxDialogs, ms.interrupt, ms.logoutAction = limit, interrupt, logout
			m.setMediaState(u, stateNotReady, reasonNone, reqID)
		}, nil
	case stateReady, stateNotReady, stateLogout:
	default:
		return nil, errInput("state", "state must be LOGIN, READY, NOT_READY or LOGOUT")
	}
	if ms.state == stateLogout {
		return nil, errMediaNotLoggedIn()
	}
	if reason != "" {
		rc, ok := findReasonCode(reason)
		if state == stateReady || !ok || rc.SystemCode || rc.Category != state {
			return nil, errInput("reasonCodeId", "reasonCodeId "+reason+" is not a "+state+" reason code")
		}
	}
	if reason == "" {
		reason = reasonNone
	}
	return func(reqID string) {
		if ms.state == stateLogout {
			return // signed out meanwhile
		}
		if state == stateReady && ms.state == stateReady {
			return // READY to READY: ignored, no notification
		}
		if state == stateLogout {
			for _, d := range slices.Clone(ms.dialogs) {
				m.endChat(d, "")
			}
		}
		m.setMediaState(u, state, reason, reqID)
	}, nil
}

func errMediaNotLoggedIn() *restError {
	return &restError{status: http.StatusBadRequest, typ: "Agent is not logged in", msg: "E_ARM_STAT_AGENT_NOT_LOGGED_IN", data: "6", media: ChatMRDID}
}

// setMediaState moves u to state in the chat MRD and publishes the Media.
func (m *model) setMediaState(u *user, state, reason, reqID string) {
	ms := m.mediaOf(u)
	ms.state, ms.reasonID, ms.stateTime = state, reason, m.now()
	if state == stateReady {
		ms.readyAt = ms.stateTime
	}
	if state == stateLogout {
		ms.maxDialogs, ms.interrupt, ms.logoutAction = 0, "", ""
	}
	m.publishMedia(u, reqID)
}

// routeChatDialog serves GET and PUT /Dialog/{id} of a chat: only its
// agent may see or act on it.
func (h *restHandler) routeChatDialog(r *http.Request, caller *user, d *chatDialog, body []byte, reqID string) (int, any, *restError) {
	m := h.m
	if d.agent != caller {
		return 0, nil, errForbidden(caller.id)
	}
	switch r.Method {
	case http.MethodGet:
		return http.StatusOK, m.chatDialogObject(d), nil
	case http.MethodPut:
		req, err := parseDialogRequest(body)
		if err != nil {
			return 0, nil, errInput("body", err.Error())
		}
		if req.Action == "" {
			return 0, nil, errMissing("requestedAction")
		}
		if !slices.Contains(chatActions(d.state), req.Action) {
			return 0, nil, errInput("requestedAction", req.Action+" is not allowed on a "+d.state+" dialog")
		}
		m.tmr.after(m.t.cti, func() { m.applyChatAction(d, req.Action, reqID) })
		return http.StatusAccepted, nil, nil
	}
	return 0, nil, errMethod(r.Method)
}

func (m *model) applyChatAction(d *chatDialog, action, reqID string) {
	if m.mrd().dialogs[d.id] != d || !slices.Contains(chatActions(d.state), action) {
		return // ended or changed meanwhile
	}
	next := map[string]string{"ACCEPT": chatAccepted, "START": chatActive, "PAUSE": chatPaused, "RESUME": chatActive, "WRAP_UP": chatWrappingUp}[action]
	if action == "CLOSE" {
		m.endChat(d, reqID)
		return
	}
	m.tmr.stop(d.timer)
	d.timer = nil
	d.state, d.changed = next, m.now()
	if next == chatActive && d.started.IsZero() {
		d.started = d.changed
	}
	m.publishChat(d, reqID)
}

// endChat closes d: an item update to CLOSED, then its removal from the
// agent's collection.
func (m *model) endChat(d *chatDialog, reqID string) {
	m.tmr.stop(d.timer)
	d.timer = nil
	d.state, d.changed = chatClosed, m.now()
	m.publishChat(d, reqID)
	m.publishChats(d, finesse.EventDelete, "")
	ms := m.mediaOf(d.agent)
	ms.dialogs = slices.DeleteFunc(ms.dialogs, func(x *chatDialog) bool { return x == d })
	delete(m.mrd().dialogs, d.id)
}

// --- routing and generation ----------------------------------------------

// offerChat routes a new chat to u, who must be READY in the MRD with
// room for one more dialog.
func (m *model) offerChat(u *user, vars []finesse.CallVariable) (*chatDialog, error) {
	if !isAgent(u) {
		return nil, fmt.Errorf("%w: %s is not in the chat skill group", ErrNotRoutable, u.id)
	}
	ms := m.mediaOf(u)
	if ms.state != stateReady || len(ms.dialogs) >= ms.maxDialogs {
		return nil, fmt.Errorf("%w: %s is %s in chat with %d of %d dialogs", ErrNotRoutable, u.id, ms.state, len(ms.dialogs), ms.maxDialogs)
	}
	c := m.mrd()
	c.next++
	d := &chatDialog{id: fmt.Sprintf("150%03d_%d_1", c.next%1000, c.next), key: c.next, agent: u, state: chatOffered, changed: m.now(), vars: vars}
	c.dialogs[d.id] = d
	ms.dialogs = append(ms.dialogs, d)
	m.publishChats(d, finesse.EventPost, "")
	d.timer = m.tmr.after(m.chatOfferTimeout(), func() {
		d.timer = nil
		if c.dialogs[d.id] == d && d.state == chatOffered {
			// Not accepted within the start timeout: Finesse takes the task
			// back (to be routed again), the agent's list loses it.
			m.publishChats(d, finesse.EventDelete, "")
			ms.dialogs = slices.DeleteFunc(ms.dialogs, func(x *chatDialog) bool { return x == d })
			delete(c.dialogs, d.id)
		}
	})
	return d, nil
}

// chatCandidate is the agent READY in chat the longest with room left.
func (m *model) chatCandidate() *user {
	var best *user
	var bestAt time.Time
	for _, u := range m.agents {
		ms := m.mrd().users[u.id]
		if ms == nil || ms.state != stateReady || len(ms.dialogs) >= ms.maxDialogs {
			continue
		}
		if best == nil || ms.readyAt.Before(bestAt) {
			best, bestAt = u, ms.readyAt
		}
	}
	return best
}

// startChat schedules the chat generator (no generator without calls).
func (m *model) startChat() {
	every := m.chatInterval()
	if every <= 0 {
		return
	}
	c := m.mrd()
	c.genTimer = m.tmr.after(every, func() {
		c.genTimer = nil
		if u := m.chatCandidate(); u != nil {
			// Values from the chat counter, not the call generator's
			// source: the call sequence stays a function of the seed.
			n := c.next + 1
			_, _ = m.offerChat(u, []finesse.CallVariable{
				{Name: "callVariable1", Value: fmt.Sprintf("CHAT-%06d", n)},
				{Name: "callVariable2", Value: callReasons[n%len(callReasons)]},
			})
		}
		m.startChat()
	})
}

// OfferChat routes a chat to loginID now (tests, demos): the user must be
// READY in the chat MRD with fewer than maxDialogLimit chats. It returns
// the dialog id; the dialog arrives as a POST on the user's Dialogs/Media
// node and is taken back if not accepted within the start timeout.
func (s *Sim) OfferChat(loginID string) (dialogID string, err error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	u := s.m.userByAny(loginID)
	if u == nil {
		return "", fmt.Errorf("%w: %q", ErrUnknownUser, loginID)
	}
	d, err := s.m.offerChat(u, []finesse.CallVariable{{Name: "callVariable1", Value: "Offered through the simulator"}})
	if err != nil {
		return "", err
	}
	return d.id, nil
}

// MediaState returns loginID's state in the chat MRD (LOGOUT, NOT_READY,
// READY).
func (s *Sim) MediaState(loginID string) (state string, ok bool) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	u := s.m.userByAny(loginID)
	if u == nil || !isAgent(u) {
		return "", false
	}
	return s.m.mediaOf(u).state, true
}
