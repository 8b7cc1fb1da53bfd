package sim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"finesse-relay/xmpp/finesse"
)

func TestRESTAuthentication(t *testing.T) {
	e := newEnv(t, Config{})
	tests := []struct {
		name   string
		auth   string
		path   string
		status int
		login  string // loginId in the answer
		html   bool   // a refused credential: the container's HTML page
	}{
		{"basic loginId", "1001:demo", "/finesse/api/User/1001", 200, "1001", false},
		{"basic loginName", "agent1001:demo", "/finesse/api/User/1001", 200, "1001", false},
		{"loginName lookup (UCCE A.8)", "1001:demo", "/finesse/api/User/agent1001", 200, "1001", false},
		{"bearer with loginName user_id", "Bearer valid-token-agent1001", "/finesse/api/User/agent1001", 200, "1001", false},
		{"bearer invalid", "Bearer forged", "/finesse/api/User/1001", 401, "", true},
		{"bearer for unknown user", "Bearer valid-token-nobody", "/finesse/api/User/1001", 401, "", true},
		{"wrong password", "1002:nope", "/finesse/api/User/1002", 401, "", true},
		{"unknown user", "9999:demo", "/finesse/api/User/1001", 401, "", true},
		{"no credentials", "", "/finesse/api/User/1001", 401, "", true},
		{"other agent's object", "1002:demo", "/finesse/api/User/1001", 401, "", false},
		{"other agent's dialogs", "1002:demo", "/finesse/api/User/1001/Dialogs", 401, "", false},
		{"other agent's media", "1002:demo", "/finesse/api/User/1001/Media/" + ChatMRDID, 401, "", false},
		{"supervisor reads a team member", "2001:demo", "/finesse/api/User/1001", 200, "1001", false},
		{"agent reads the team", "1001:demo", "/finesse/api/Team/10", 401, "", false},
		{"unknown user object", "2001:demo", "/finesse/api/User/4242", 404, "", false},
		{"SystemInfo needs no credentials", "", "/finesse/api/SystemInfo", 200, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rsp, body := e.request(sideA, "GET", tc.path, tc.auth, "")
			if rsp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", rsp.StatusCode, tc.status, body)
			}
			if rid := rsp.Header.Get("requestId"); rid != "" {
				t.Errorf("a synchronous answer carries requestId %q", rid)
			}
			wantType := "application/xml"
			if tc.html {
				wantType = "text/html"
			}
			if !strings.HasPrefix(rsp.Header.Get("Content-Type"), wantType) {
				t.Errorf("Content-Type %q, want %s", rsp.Header.Get("Content-Type"), wantType)
			}
			switch {
			case tc.html:
				if !strings.HasPrefix(body, "<!doctype html>") || !strings.Contains(body, "<title>HTTP Status 401 – Unauthorized</title>") {
					t.Fatalf("401 for a refused credential is not the container's HTML page: %s", body)
				}
				if rsp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			case tc.status == 401:
				ae, err := finesse.ParseAPIErrors([]byte(body))
				want := "Invalid Authorization User Specified"
				if strings.Contains(tc.path, "Team") {
					want = "Authorization Failure"
				}
				if err != nil || len(ae.Errors) != 1 || ae.Errors[0].ErrorType != want {
					t.Fatalf("401 body is not the Finesse ApiErrors %q: %s (%v)", want, body, err)
				}
				if !strings.Contains(body, "<ApiErrors><ApiError><ErrorType>") {
					t.Errorf("REST errors use capitalised element names: %s", body)
				}
			case tc.login != "":
				u, err := finesse.ParseUser([]byte(body))
				if err != nil || u.LoginID != tc.login {
					t.Fatalf("user %+v (%v)", u, err)
				}
			}
		})
	}
}

func TestRESTLockout(t *testing.T) {
	e := newEnv(t, Config{})
	now := time.Now()
	e.do(func(m *model) { m.now = func() time.Time { return now } })
	for i := range 5 {
		if rsp, _ := e.request(sideA, "GET", "/finesse/api/User/1003", "1003:wrong", ""); rsp.StatusCode != 401 {
			t.Fatalf("failure %d: status %d", i+1, rsp.StatusCode)
		}
	}
	if rsp, _ := e.request(sideA, "GET", "/finesse/api/User/1003", "1003:demo", ""); rsp.StatusCode != 401 {
		t.Fatalf("right password during the lock: status %d, want 401", rsp.StatusCode)
	}
	if rsp, _ := e.request(sideA, "GET", "/finesse/api/User/1003", "agent1003:demo", ""); rsp.StatusCode != 401 {
		t.Fatalf("login name during the lock: status %d, want 401", rsp.StatusCode)
	}
	if rsp, _ := e.request(sideA, "GET", "/finesse/api/User/1004", "1004:demo", ""); rsp.StatusCode != 200 {
		t.Fatalf("another user is not locked: status %d", rsp.StatusCode)
	}
	e.do(func(m *model) { now = now.Add(m.t.lockout + time.Second) })
	if rsp, _ := e.request(sideA, "GET", "/finesse/api/User/1003", "1003:demo", ""); rsp.StatusCode != 200 {
		t.Fatalf("after the lock: status %d, want 200", rsp.StatusCode)
	}
	// Four failures and a success reset the count.
	for range 4 {
		e.request(sideA, "GET", "/finesse/api/User/1003", "1003:wrong", "")
	}
	e.must(200, "GET", "/finesse/api/User/1003", "1003:demo", "")
	for range 4 {
		e.request(sideA, "GET", "/finesse/api/User/1003", "1003:wrong", "")
	}
	e.must(200, "GET", "/finesse/api/User/1003", "1003:demo", "")
}

func TestRESTAcceptedThenEventWithRequestID(t *testing.T) {
	e := newEnv(t, Config{})
	e.do(func(m *model) { m.presence(sideA, "1001", true) })
	_, hdr := e.must(202, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("LOGIN", "extension", "51001"), "requestId", "req-login-1")
	if got := hdr.Get("requestId"); got != "req-login-1" {
		t.Fatalf("requestId header %q, want the request's", got)
	}
	u := e.sides[sideA].waitFor(t, wait, "User PUT NOT_READY with the requestId", withReq("req-login-1", userState("1001", "NOT_READY")))
	if u.Source != finesse.UserNode("1001") {
		t.Errorf("source %q", u.Source)
	}
	x, _ := finesse.ParseUser(u.Data)
	if x.ReasonCodeID != "-1" || x.Extension != "51001" {
		t.Errorf("after LOGIN reasonCodeId %q extension %q", x.ReasonCodeID, x.Extension)
	}
	if !strings.HasPrefix(string(u.Data), "<user>") {
		t.Errorf("notification data must be lower-case <user>: %.40s", u.Data)
	}
	// The same event reaches side B (one shared model) and the team node.
	e.sides[sideB].waitFor(t, wait, "the same event on side B", withReq("req-login-1", userState("1001", "NOT_READY")))
	e.sides[sideA].waitFor(t, wait, "the team member update", withReq("req-login-1", onNode(finesse.TeamUsersNode(TeamID), finesse.EventPut)))

	// Without a requestId header one is generated, echoed and used.
	_, hdr = e.must(202, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("READY"))
	gen := hdr.Get("requestId")
	if len(gen) != 36 {
		t.Fatalf("generated requestId %q", gen)
	}
	e.sides[sideA].waitFor(t, wait, "READY with the generated requestId", withReq(gen, userState("1001", "READY")))
}

func TestRESTAcceptedBeforeChange(t *testing.T) {
	e := newEnv(t, Config{})
	e.m.t.cti = time.Second
	e.login("1001")
	e.must(202, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("READY"))
	if s := e.state("1001"); s != stateNotReady {
		t.Fatalf("state %s right after the 202; the change must come after the answer", s)
	}
	e.waitState("1001", stateReady, wait)
}

func TestUserStateMachine(t *testing.T) {
	type step struct {
		body   string
		status int
		state  string // state afterwards
	}
	tests := []struct {
		name  string
		setup func(e *testEnv)
		steps []step
	}{
		{"login, ready, not ready, logout", nil, []step{
			{stateBody("LOGIN", "extension", "51001"), 202, stateNotReady},
			{stateBody("READY"), 202, stateReady},
			{stateBody("NOT_READY", "reasonCodeId", "12"), 202, stateNotReady},
			{stateBody("LOGOUT", "reasonCodeId", "21"), 202, stateLogout},
		}},
		{"READY from LOGOUT refused", nil, []step{{stateBody("READY"), 400, stateLogout}}},
		{"NOT_READY from LOGOUT refused", nil, []step{{stateBody("NOT_READY"), 400, stateLogout}}},
		{"LOGOUT from READY refused", func(e *testEnv) { e.ready("1001") }, []step{{stateBody("LOGOUT"), 400, stateReady}}},
		{"LOGOUT from LOGOUT refused", nil, []step{{stateBody("LOGOUT"), 400, stateLogout}}},
		{"LOGIN without extension", nil, []step{{stateBody("LOGIN"), 400, stateLogout}}},
		{"unknown state", nil, []step{{stateBody("DANCING"), 400, stateLogout}}},
		{"TALKING cannot be requested", func(e *testEnv) { e.login("1001") }, []step{{stateBody("TALKING"), 400, stateNotReady}}},
		{"missing state", func(e *testEnv) { e.login("1001") }, []step{{"<User><reasonCodeId>11</reasonCodeId></User>", 400, stateNotReady}}},
		{"malformed XML", func(e *testEnv) { e.login("1001") }, []step{{"<User><state>READY", 400, stateNotReady}}},
		{"empty body", func(e *testEnv) { e.login("1001") }, []step{{"", 400, stateNotReady}}},
		{"NOT_READY with a LOGOUT code", func(e *testEnv) { e.ready("1001") }, []step{{stateBody("NOT_READY", "reasonCodeId", "21"), 400, stateReady}}},
		{"LOGOUT with a NOT_READY code", func(e *testEnv) { e.login("1001") }, []step{{stateBody("LOGOUT", "reasonCodeId", "11"), 400, stateNotReady}}},
		{"NOT_READY with the supervisor's system code", func(e *testEnv) { e.ready("1001") }, []step{{stateBody("NOT_READY", "reasonCodeId", "999"), 400, stateReady}}},
		{"forced sign-in keeps the state", func(e *testEnv) { e.ready("1001") }, []step{{stateBody("LOGIN", "extension", "51001"), 202, stateReady}}},
		{"wrong extension: async error, still LOGOUT", nil, []step{{stateBody("LOGIN", "extension", "59999"), 202, stateLogout}}},
		{"READY from wrap-up", func(e *testEnv) {
			e.ready("1001")
			e.do(func(m *model) { m.startWrapUp(m.users["1001"], "") })
		}, []step{{stateBody("READY"), 202, stateReady}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.do(func(m *model) { m.presence(sideA, "1001", true) })
			if tc.setup != nil {
				tc.setup(e)
			}
			for i, s := range tc.steps {
				rsp, body := e.request(sideA, "PUT", "/finesse/api/User/1001", "1001:demo", s.body)
				if rsp.StatusCode != s.status {
					t.Fatalf("step %d %s: status %d, want %d: %s", i, s.body, rsp.StatusCode, s.status, body)
				}
				if s.status == 400 {
					if _, err := finesse.ParseAPIErrors([]byte(body)); err != nil {
						t.Fatalf("400 without ApiErrors: %s", body)
					}
				}
				if s.status == 202 {
					e.sides[sideA].waitFor(t, wait, "the User event", func(u finesse.Update) bool {
						return u.RequestID == rsp.Header.Get("requestId") && u.Node == finesse.UserNode("1001")
					})
				}
				if got := e.state("1001"); got != s.state {
					t.Fatalf("step %d: state %s, want %s", i, got, s.state)
				}
			}
		})
	}
}

func TestLoginWrongExtensionAsyncError(t *testing.T) {
	e := newEnv(t, Config{})
	e.must(202, "PUT", "/finesse/api/User/1001", "1001:demo", stateBody("LOGIN", "extension", "51002"), "requestId", "bad-ext")
	u := e.sides[sideA].waitFor(t, wait, "apiErrors on the User node", withReq("bad-ext", onNode(finesse.UserNode("1001"), finesse.EventPut)))
	ae, err := finesse.ParseAPIErrors(u.Data)
	if err != nil || ae.Errors[0].ErrorType != "Device Busy" {
		t.Fatalf("async error %s (%v)", u.Data, err)
	}
	if !strings.HasPrefix(string(u.Data), "<apiErrors><apiError>") {
		t.Errorf("async errors use the lower-case notification form: %s", u.Data)
	}
}

func TestSupervisorRules(t *testing.T) {
	type tc struct {
		name   string
		from   string // agent state before
		body   string
		status int
		want   string
		reason string
	}
	tests := []tc{
		{"NOT_READY from READY", stateReady, stateBody("NOT_READY"), 202, stateNotReady, reasonSupervisor},
		{"NOT_READY with a reason code", stateReady, stateBody("NOT_READY", "reasonCodeId", "11"), 400, stateReady, ""},
		{"NOT_READY from NOT_READY", stateNotReady, stateBody("NOT_READY"), 400, stateNotReady, ""},
		{"NOT_READY from WORK_READY", stateWorkReady, stateBody("NOT_READY"), 202, stateNotReady, reasonSupervisor},
		{"LOGOUT from READY", stateReady, stateBody("LOGOUT"), 202, stateLogout, reasonSupLogout},
		{"LOGOUT from NOT_READY", stateNotReady, stateBody("LOGOUT"), 202, stateLogout, reasonSupLogout},
		{"LOGOUT from TALKING is pending", stateTalking, stateBody("LOGOUT"), 202, stateTalking, ""},
		{"LOGOUT from LOGOUT", stateLogout, stateBody("LOGOUT"), 400, stateLogout, ""},
		{"READY from NOT_READY", stateNotReady, stateBody("READY"), 202, stateReady, reasonNone},
		{"LOGIN refused", stateLogout, stateBody("LOGIN", "extension", "51001"), 400, stateLogout, ""},
		{"WORK refused", stateReady, stateBody("WORK"), 400, stateReady, ""},
	}
	for _, x := range tests {
		t.Run(x.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			switch x.from {
			case stateReady:
				e.ready("1001")
			case stateNotReady:
				e.login("1001")
			case stateWorkReady:
				e.ready("1001")
				e.do(func(m *model) { m.startWrapUp(m.users["1001"], "") })
			case stateTalking:
				e.ready("1001")
				e.do(func(m *model) {
					d := m.placeCall(m.queue("5001"), "5550001", nil)
					m.applyDialogAction(m.users["1001"], d, dialogRequest{Action: actAnswer, Target: "51001"}, "")
				})
			}
			if got := e.state("1001"); got != x.from {
				t.Fatalf("setup: state %s, want %s", got, x.from)
			}
			rsp, body := e.request(sideA, "PUT", "/finesse/api/User/1001", "2001:demo", x.body, "requestId", "sup-1")
			if rsp.StatusCode != x.status {
				t.Fatalf("status %d, want %d: %s", rsp.StatusCode, x.status, body)
			}
			if x.status == 202 {
				u := e.sides[sideA].waitFor(t, wait, "the agent's User event", withReq("sup-1", onNode(finesse.UserNode("1001"), finesse.EventPut)))
				e.sides[sideA].waitFor(t, wait, "the Team/10/Users event", withReq("sup-1", onNode(finesse.TeamUsersNode(TeamID), finesse.EventPut)))
				fu, _ := finesse.ParseUser(u.Data)
				if x.from == stateTalking && fu.PendingState != stateLogout {
					t.Errorf("pendingState %q, want LOGOUT", fu.PendingState)
				}
			}
			if got := e.state("1001"); got != x.want {
				t.Fatalf("state %s, want %s", got, x.want)
			}
			if x.reason != "" {
				e.do(func(m *model) {
					if r := m.users["1001"].reasonID; r != x.reason {
						t.Errorf("reasonCodeId %s, want %s", r, x.reason)
					}
				})
			}
		})
	}
	t.Run("agents cannot change each other", func(t *testing.T) {
		e := newEnv(t, Config{})
		e.ready("1001")
		e.must(401, "PUT", "/finesse/api/User/1001", "1002:demo", stateBody("NOT_READY"))
	})
	t.Run("team snapshot", func(t *testing.T) {
		e := newEnv(t, Config{Agents: 7})
		body, _ := e.must(200, "GET", "/finesse/api/Team/10", "2001:demo", "")
		team, err := finesse.ParseTeam([]byte(body))
		if err != nil || team.Name != TeamName || len(team.Users) != 8 {
			t.Fatalf("team %+v (%v)", team, err)
		}
		if team.Users[0].LoginID != "1001" || team.Users[0].FirstName == "" {
			t.Errorf("first member %+v", team.Users[0])
		}
		e.must(404, "GET", "/finesse/api/Team/11", "2001:demo", "")
	})
	t.Run("pending LOGOUT happens when the call ends", func(t *testing.T) {
		e := newEnv(t, Config{})
		e.ready("1001")
		var d *dialog
		e.do(func(m *model) {
			d = m.placeCall(m.queue("5001"), "5550001", nil)
			m.applyDialogAction(m.users["1001"], d, dialogRequest{Action: actAnswer, Target: "51001"}, "")
		})
		e.must(202, "PUT", "/finesse/api/User/1001", "2001:demo", stateBody("LOGOUT"))
		e.sides[sideA].waitFor(t, wait, "pendingState LOGOUT", func(u finesse.Update) bool {
			x, err := finesse.ParseUser(u.Data)
			return u.Node == finesse.UserNode("1001") && err == nil && x.PendingState == stateLogout
		})
		e.must(202, "PUT", "/finesse/api/Dialog/"+d.id, "1001:demo", actionBody("DROP", "51001"))
		e.waitState("1001", stateLogout, wait)
	})
}

func TestRESTNotFoundAndMethods(t *testing.T) {
	e := newEnv(t, Config{})
	e.must(404, "GET", "/finesse/api/Dialog/123", "1001:demo", "")
	e.must(404, "GET", "/finesse/api/Queue/9999", "1001:demo", "")
	e.must(404, "GET", "/finesse/api/Nothing", "1001:demo", "")
	e.must(405, "DELETE", "/finesse/api/User/1001", "1001:demo", "")
	e.must(405, "POST", "/finesse/api/SystemInfo", "", "")
	e.must(400, "GET", "/finesse/api/User/1001/ReasonCodes", "1001:demo", "")
	body, _ := e.must(200, "GET", "/finesse/api/User/1001/ReasonCodes?category=NOT_READY", "1001:demo", "")
	rcs, err := finesse.ParseReasonCodes([]byte(body))
	if err != nil || len(rcs) != 5 || rcs[0].Category != categoryNotReady {
		t.Fatalf("reason codes %+v (%v)", rcs, err)
	}
	body, _ = e.must(200, "GET", "/finesse/api/ReasonCodes?category=LOGOUT", "1001:demo", "")
	if rcs, _ := finesse.ParseReasonCodes([]byte(body)); len(rcs) != 2 {
		t.Fatalf("LOGOUT codes %s", body)
	}
	body, _ = e.must(200, "GET", "/finesse/api/User/1001/WrapUpReasons", "1001:demo", "")
	if !strings.Contains(body, "<WrapUpReason><uri>") {
		t.Fatalf("wrap-up reasons %s", body)
	}
	body, _ = e.must(200, "GET", "/finesse/api/User/1001/Queues", "1001:demo", "")
	if qs, err := finesse.ParseQueues([]byte(body)); err != nil || len(qs) != 2 || qs[0].Statistics == nil {
		t.Fatalf("queues %s (%v)", body, err)
	}
	body, _ = e.must(200, "GET", "/finesse/api/User/1001/Dialogs", "1001:demo", "")
	if !strings.Contains(body, "<Dialogs></Dialogs>") {
		t.Fatalf("empty Dialogs %s", body)
	}
	e.must(200, "GET", "/finesse/api/User/1001/ReasonCode/11", "1001:demo", "")
	e.must(404, "GET", "/finesse/api/User/1001/ReasonCode/255", "1001:demo", "")
}

func TestSystemInfoSides(t *testing.T) {
	e := newEnv(t, Config{})
	for i, want := range []string{"finesse-a.demo.local", "finesse-b.demo.local"} {
		rsp, body := e.request(i, "GET", "/finesse/api/SystemInfo", "", "")
		if rsp.StatusCode != http.StatusOK {
			t.Fatalf("side %d: %d", i, rsp.StatusCode)
		}
		si, err := finesse.ParseSystemInfo([]byte(body))
		if err != nil || si.Status != "IN_SERVICE" || si.XMPPDomain != want || si.XMPPPubSubDomain != "pubsub."+want {
			t.Fatalf("side %d SystemInfo %+v (%v)", i, si, err)
		}
		if si.PrimaryNode == nil || si.PrimaryNode.HTTPSPort != 8445 || si.SecondaryNode == nil || si.SecondaryNode.HTTPSPort != 8446 || si.PrimaryNode.XMPPSecurePort != 5223 {
			t.Fatalf("nodes %+v %+v", si.PrimaryNode, si.SecondaryNode)
		}
	}
}
