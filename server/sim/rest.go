package sim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"finesse-relay/xmpp/finesse"
)

// maxRequestBody bounds a REST request body.
const maxRequestBody = 64 << 10

// restHandler serves /finesse/api/ for one side.
type restHandler struct {
	m    *model
	side int
}

func (h *restHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, finesse.APIPrefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	path = strings.TrimSuffix(path, "/")
	seg := strings.Split(path, "/")
	reqID := r.Header.Get("requestId")
	if len(reqID) > 128 {
		reqID = reqID[:128]
	}
	m := h.m

	if path == "SystemInfo" {
		if r.Method != http.MethodGet {
			writeError(w, errMethod(r.Method), reqID)
			return
		}
		m.mu.Lock()
		si := m.systemInfo(h.side)
		m.mu.Unlock()
		writeXML(w, http.StatusOK, si)
		return
	}

	var body []byte
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
		if err != nil {
			writeError(w, errInput("body", "request body unreadable or larger than 64 KiB"), reqID)
			return
		}
	}

	m.mu.Lock()
	status, obj, rerr := h.route(r, seg, body, &reqID)
	m.mu.Unlock()
	switch {
	case rerr != nil:
		if rerr.status >= 500 || rerr.status == http.StatusUnauthorized {
			m.log.Debug("sim: REST refused", zap.String("side", sideNames[h.side]), zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", rerr.status))
		}
		writeError(w, rerr, reqID)
	case status == http.StatusAccepted:
		// Finesse echoes requestId on asynchronous answers only.
		w.Header().Set("requestId", reqID)
		w.WriteHeader(http.StatusAccepted)
	default:
		writeXML(w, status, obj)
	}
}

// route authenticates, authorizes and serves one request; m.mu is held.
// A 202 answer has its model change scheduled after the CTI delay.
func (h *restHandler) route(r *http.Request, seg []string, body []byte, reqID *string) (int, any, *restError) {
	m := h.m
	if !m.inService[h.side] {
		return 0, nil, errUnavailable()
	}
	caller, rerr := m.authenticate(r)
	if rerr != nil {
		return 0, nil, rerr
	}
	write := r.Method == http.MethodPut || r.Method == http.MethodPost
	if write && *reqID == "" {
		*reqID = m.newRequestID()
	}
	get := func() *restError {
		if r.Method != http.MethodGet {
			return errMethod(r.Method)
		}
		return nil
	}
	switch {
	case len(seg) == 1 && seg[0] == "ReasonCodes":
		if e := get(); e != nil {
			return 0, nil, e
		}
		return reasonCodeList(r.URL.Query().Get("category"))

	case len(seg) == 2 && seg[0] == "Team":
		if e := get(); e != nil {
			return 0, nil, e
		}
		if seg[1] != TeamID {
			return 0, nil, errNotFound("Team", seg[1])
		}
		if !caller.isSupervisorOf(seg[1]) {
			return 0, nil, errNotSupervisor(caller.id)
		}
		return http.StatusOK, m.teamXML(seg[1]), nil

	case len(seg) == 2 && seg[0] == "Queue":
		if e := get(); e != nil {
			return 0, nil, e
		}
		q := m.queue(seg[1])
		if q == nil {
			return 0, nil, errNotFound("Queue", seg[1])
		}
		s := m.queueStats(q)
		return http.StatusOK, m.queueObject(q, &s), nil

	case len(seg) == 2 && seg[0] == "Dialog":
		if cd := m.mrd().dialogs[seg[1]]; cd != nil {
			return h.routeChatDialog(r, caller, cd, body, *reqID)
		}
		d := m.dialogs[seg[1]]
		if d == nil || !m.canSeeDialog(caller, d) {
			if d != nil && m.listedByAnyone(d) {
				return 0, nil, errForbidden(caller.id)
			}
			return 0, nil, errNotFound("Dialog", seg[1])
		}
		switch r.Method {
		case http.MethodGet:
			return http.StatusOK, m.dialogObject(d), nil
		case http.MethodPut:
			req, err := parseDialogRequest(body)
			if err != nil {
				return 0, nil, errInput("body", err.Error())
			}
			if d.part(caller) == nil {
				return 0, nil, errForbidden(caller.id)
			}
			if req.Action == actParticipantDrop {
				return m.routeParticipantDrop(caller, d, req, *reqID)
			}
			if e := m.checkDialogAction(caller, d, req); e != nil {
				return 0, nil, e
			}
			m.releaseRobot(caller)
			id := *reqID
			m.tmr.after(m.t.cti, func() { m.applyDialogAction(caller, d, req, id) })
			return http.StatusAccepted, nil, nil
		}
		return 0, nil, errMethod(r.Method)

	case len(seg) >= 2 && seg[0] == "User":
		return h.routeUser(r, caller, seg, body, *reqID)
	}
	return 0, nil, errNotFound("Resource", strings.Join(seg, "/"))
}

func (h *restHandler) routeUser(r *http.Request, caller *user, seg []string, body []byte, reqID string) (int, any, *restError) {
	m := h.m
	target := m.users[seg[1]]
	if target == nil && len(seg) == 2 && r.Method == http.MethodGet {
		target = m.byName[seg[1]] // UCCE: GET /User/{loginName} maps to the loginId
	}
	if target == nil {
		return 0, nil, errNotFound("User", seg[1])
	}
	self := target == caller
	supervisor := !self && caller.isSupervisorOf(TeamID)
	if !self && !supervisor {
		return 0, nil, errForbidden(caller.id)
	}
	sub := ""
	if len(seg) > 2 {
		sub = seg[2]
	}
	switch {
	case len(seg) == 2:
		switch r.Method {
		case http.MethodGet:
			return http.StatusOK, m.userObject(target), nil
		case http.MethodPut:
			req, err := parseUserRequest(body)
			if err != nil {
				return 0, nil, errInput("body", err.Error())
			}
			if self && req.State == stateLogin && req.Extension == "" {
				return 0, nil, errMissing("extension")
			}
			if e := m.checkUserChange(target, req, supervisor); e != nil {
				return 0, nil, e
			}
			if self {
				m.releaseRobot(target)
			}
			m.tmr.after(m.t.cti, func() { m.applyUserChange(target, req, supervisor, reqID) })
			return http.StatusAccepted, nil, nil
		}
		return 0, nil, errMethod(r.Method)

	case len(seg) == 3 && sub == "Dialogs":
		switch r.Method {
		case http.MethodGet:
			list := &finesse.Dialogs{Dialogs: []finesse.Dialog{}}
			for _, d := range target.dialogs {
				list.Dialogs = append(list.Dialogs, *m.dialogObject(d))
			}
			return http.StatusOK, list, nil
		case http.MethodPost:
			if !self {
				return 0, nil, errForbidden(caller.id)
			}
			req, err := parseDialogRequest(body)
			if err != nil {
				return 0, nil, errInput("body", err.Error())
			}
			if req.Action == actSilentMonitor || req.Action == actBarge {
				return m.routeSuperviseCall(target, req, body, reqID)
			}
			if e := m.checkMakeCall(target, req); e != nil {
				return 0, nil, e
			}
			m.releaseRobot(target)
			m.tmr.after(m.t.cti, func() { m.makeCall(target, req, reqID) })
			return http.StatusAccepted, nil, nil
		}
		return 0, nil, errMethod(r.Method)

	case len(seg) >= 3 && sub == "Media":
		return h.routeMedia(r, caller, target, seg, body, reqID)

	case len(seg) == 3 && sub == "Queues":
		if r.Method != http.MethodGet {
			return 0, nil, errMethod(r.Method)
		}
		list := &finesse.Queues{}
		for _, q := range m.queues {
			s := m.queueStats(q)
			list.Queues = append(list.Queues, *m.queueObject(q, &s))
		}
		return http.StatusOK, list, nil

	case len(seg) == 3 && sub == "ReasonCodes":
		if r.Method != http.MethodGet {
			return 0, nil, errMethod(r.Method)
		}
		return reasonCodeList(r.URL.Query().Get("category"))

	case len(seg) == 4 && sub == "ReasonCode":
		if r.Method != http.MethodGet {
			return 0, nil, errMethod(r.Method)
		}
		rc, ok := findReasonCode(seg[3])
		if !ok || rc.SystemCode {
			return 0, nil, errNotFound("ReasonCode", seg[3])
		}
		return http.StatusOK, &rc, nil

	case len(seg) == 3 && sub == "MediaPropertiesLayouts":
		if r.Method != http.MethodGet {
			return 0, nil, errMethod(r.Method)
		}
		return http.StatusOK, defaultLayout(), nil

	case len(seg) == 3 && sub == "WrapUpReasons":
		if r.Method != http.MethodGet {
			return 0, nil, errMethod(r.Method)
		}
		return http.StatusOK, wrapUpReasonList(), nil
	}
	return 0, nil, errNotFound("Resource", strings.Join(seg, "/"))
}

// canSeeDialog: a listed participant, or the supervisor of one.
func (m *model) canSeeDialog(u *user, d *dialog) bool {
	for _, p := range d.parts {
		if p.agent != nil && p.listed && (p.agent == u || u.isSupervisorOf(TeamID)) {
			return true
		}
	}
	return false
}

func (m *model) listedByAnyone(d *dialog) bool {
	for _, p := range d.parts {
		if p.listed {
			return true
		}
	}
	return false
}

func reasonCodeList(category string) (int, any, *restError) {
	switch category {
	case "":
		return 0, nil, errMissing("category")
	case categoryNotReady, categoryLogout:
	default:
		return 0, nil, errInput("category", "category must be NOT_READY or LOGOUT")
	}
	list := &finesse.ReasonCodes{ReasonCodes: []finesse.ReasonCode{}}
	for _, r := range reasonCodes {
		if r.Category == category {
			list.ReasonCodes = append(list.ReasonCodes, r)
		}
	}
	return http.StatusOK, list, nil
}

// wrapUpReasonsXML is GET /User/{id}/WrapUpReasons.
type wrapUpReasonsXML struct {
	XMLName xml.Name          `xml:"WrapUpReasons"`
	Reasons []wrapUpReasonXML `xml:"WrapUpReason"`
}

type wrapUpReasonXML struct {
	URI    string `xml:"uri"`
	Label  string `xml:"label"`
	ForAll bool   `xml:"forAll"`
}

func wrapUpReasonList() *wrapUpReasonsXML {
	l := &wrapUpReasonsXML{}
	for i, r := range wrapUpReasons {
		l.Reasons = append(l.Reasons, wrapUpReasonXML{URI: finesse.APIPrefix + "WrapUpReason/" + itoa(i+1), Label: r, ForAll: true})
	}
	return l
}

// writeXML writes a synchronous answer. It never carries a requestId
// header: Finesse sends one only with the 202 of an asynchronous request
// (developer.cisco.com/docs/finesse/change-agent-state: "The requestId is
// included in the response header if provided" under 202; the GET pages
// list no header), and where the documentation is silent (synchronous
// errors) the simulator is strict.
func writeXML(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	if err := xml.NewEncoder(&b).Encode(v); err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// writeError writes a synchronous error: ApiErrors XML, or the container's
// HTML page for a refused credential.
func writeError(w http.ResponseWriter, e *restError, _ string) {
	if e.html {
		w.Header().Set("WWW-Authenticate", `Basic realm="Cisco Finesse"`)
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		w.WriteHeader(e.status)
		_, _ = w.Write([]byte(unauthorizedPage))
		return
	}
	writeXML(w, e.status, e.apiErrors())
}

// unauthorizedPage is the servlet container's 401 page, as Tomcat writes it.
const unauthorizedPage = `<!doctype html><html lang="en"><head><title>HTTP Status 401 – Unauthorized</title>` +
	`<style type="text/css">body {font-family:Tahoma,Arial,sans-serif;} h1 {font-size:22px;}</style></head>` +
	`<body><h1>HTTP Status 401 – Unauthorized</h1><hr class="line" /><p><b>Type</b> Status Report</p>` +
	`<p><b>Description</b> The request has not been applied to the target resource because it lacks valid authentication credentials for that resource.</p>` +
	`<hr class="line" /><h3>Apache Tomcat</h3></body></html>`

// --- request bodies -----------------------------------------------------

// userRequestXML is the body of PUT /User/{id}.
type userRequestXML struct {
	State        string `xml:"state"`
	ReasonCodeID string `xml:"reasonCodeId"`
	Extension    string `xml:"extension"`
}

// dialogRequestXML is the body of PUT /Dialog/{id} and POST /User/{id}/Dialogs.
type dialogRequestXML struct {
	RequestedAction    string `xml:"requestedAction"`
	TargetMediaAddress string `xml:"targetMediaAddress"`
	FromAddress        string `xml:"fromAddress"`
	ToAddress          string `xml:"toAddress"`
	ActionParams       []struct {
		Name  string `xml:"name"`
		Value string `xml:"value"`
	} `xml:"actionParams>ActionParam"`
	MediaProperties *struct {
		WrapUpReason  *string                `xml:"wrapUpReason"`
		CallVariables []finesse.CallVariable `xml:"callvariables>CallVariable"`
	} `xml:"mediaProperties"`
}

var errEmptyBody = errors.New("empty body")

// decodeBody decodes one XML document with a bounded size.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errEmptyBody
	}
	if len(body) > maxRequestBody {
		return errors.New("body too large")
	}
	if err := xml.Unmarshal(body, v); err != nil {
		return errors.New("malformed XML")
	}
	return nil
}

func parseUserRequest(body []byte) (userChange, error) {
	var x userRequestXML
	if err := decodeBody(body, &x); err != nil {
		return userChange{}, err
	}
	return userChange{
		State: strings.TrimSpace(x.State), ReasonCodeID: strings.TrimSpace(x.ReasonCodeID),
		Extension: strings.TrimSpace(x.Extension),
	}, nil
}

func parseDialogRequest(body []byte) (dialogRequest, error) {
	var x dialogRequestXML
	if err := decodeBody(body, &x); err != nil {
		return dialogRequest{}, err
	}
	r := dialogRequest{
		Action: strings.TrimSpace(x.RequestedAction), Target: strings.TrimSpace(x.TargetMediaAddress),
		From: strings.TrimSpace(x.FromAddress), To: strings.TrimSpace(x.ToAddress),
	}
	for _, p := range x.ActionParams {
		if p.Name == "dtmfString" {
			r.DTMF, r.HasDTMF = strings.TrimSpace(p.Value), true
		}
	}
	if mp := x.MediaProperties; mp != nil {
		r.WrapUpReason = mp.WrapUpReason
		r.Vars = mp.CallVariables
	}
	return r, nil
}
