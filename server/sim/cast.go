package sim

import (
	"strconv"

	"finesse-relay/xmpp/finesse"
)

// The demo's fixed cast (DESIGN.md "The demo's fixed cast").
const (
	// TeamID is the one team every agent belongs to.
	TeamID = "10"
	// TeamName is TeamID's name.
	TeamName = "Support"
	// SupervisorID is the supervisor's login id; the supervisor supervises
	// TeamID.
	SupervisorID = "2001"
	// HumanAgentID is the agent robots never drive.
	HumanAgentID = "1001"
	// FirstAgentID is the first agent's login id.
	FirstAgentID = 1001
)

// Reason code ids with a fixed meaning.
const (
	reasonNone        = "-1"  // just signed in, or no code given
	reasonForced      = "255" // forced logout after the presence rule (B.9)
	reasonSupervisor  = "999" // hard-coded supervisor NOT_READY reason (E)
	reasonSupLogout   = "998" // hard-coded supervisor LOGOUT reason (E)
	categoryNotReady  = "NOT_READY"
	categoryLogout    = "LOGOUT"
	wrapUpOnIncoming  = "REQUIRED"
	wrapUpOnOutgoing  = "NOT_ALLOWED"
	dialedNumberStart = 8000 // queue 5001 is dialed as 8001
)

// queueDef is a queue of the cast.
type queueDef struct{ id, name string }

var castQueues = []queueDef{{"5001", "Sales"}, {"5002", "Support"}}

// reasonCodes are the configured reason codes (ids are database ids, as
// reasonCodeId sends them; codes are what the contact center reports).
var reasonCodes = []finesse.ReasonCode{
	rc("11", categoryNotReady, "10", "Break", true, false),
	rc("12", categoryNotReady, "11", "Lunch", true, false),
	rc("13", categoryNotReady, "12", "Meeting", true, false),
	rc("14", categoryNotReady, "13", "Training", true, false),
	rc("15", categoryNotReady, "14", "Team Meeting", true, false),
	rc("21", categoryLogout, "20", "End of Shift", true, false),
	rc("22", categoryLogout, "21", "Personal", true, false),
}

// systemReasonCodes are applied by Finesse itself and cannot be requested.
var systemReasonCodes = []finesse.ReasonCode{
	rc(reasonForced, categoryLogout, "255", "Connection Failure", true, true),
	rc(reasonSupervisor, categoryNotReady, "999", "Supervisor Initiated", true, true),
	rc(reasonSupLogout, categoryLogout, "999", "Supervisor Initiated", true, true),
	rc(reasonRONA, categoryNotReady, "32767", "Call Not Answered", true, true),
}

// wrapUpReasons are the configured wrap-up reasons.
var wrapUpReasons = []string{"Sales Call", "Support Resolved", "Follow-up Needed", "Wrong Number", "Billing Question"}

func rc(id, category, code, label string, forAll, system bool) finesse.ReasonCode {
	return finesse.ReasonCode{
		ID: id, URI: finesse.APIPrefix + "ReasonCode/" + id, Category: category,
		Code: code, Label: label, ForAll: forAll, SystemCode: system,
	}
}

// findReasonCode returns the reason code with the database id id, system
// codes included.
func findReasonCode(id string) (finesse.ReasonCode, bool) {
	for _, r := range reasonCodes {
		if r.ID == id {
			return r, true
		}
	}
	for _, r := range systemReasonCodes {
		if r.ID == id {
			return r, true
		}
	}
	return finesse.ReasonCode{}, false
}

// requestableReason reports whether id is a configured (non-system) code
// of category.
func requestableReason(id, category string) bool {
	for _, r := range reasonCodes {
		if r.ID == id && r.Category == category {
			return true
		}
	}
	return false
}

var firstNames = []string{
	"Ana", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Isabel", "Jonas",
	"Kavya", "Liam", "Maya", "Noah", "Olivia", "Pedro", "Quinn", "Rosa", "Samir", "Tara",
	"Umar", "Vera", "William", "Ximena", "Yusuf", "Zoe", "Aisha", "Bruno", "Carmen", "Dmitri",
	"Emma", "Felix", "Giulia", "Hannah", "Ivan", "Julia", "Kenji", "Lucia", "Mateo", "Nadia",
}

var lastNames = []string{
	"Silva", "Okafor", "Martin", "Kowalski", "Nguyen", "Haddad", "Lindqvist", "Tanaka", "Moreno", "Becker",
	"Iyer", "O'Brien", "Cohen", "Fischer", "Rossi", "Almeida", "Murphy", "Jensen", "Khan", "Dubois",
	"Novak", "Petrov", "Walsh", "Castillo", "Demir", "Larsen", "Mensah", "Costa", "Schmidt", "Sato",
}

// agentIDs returns the login ids of n agents: 1001 upward, skipping the
// supervisor's id.
func agentIDs(n int) []string {
	ids := make([]string, 0, n)
	for id := FirstAgentID; len(ids) < n; id++ {
		s := strconv.Itoa(id)
		if s == SupervisorID {
			continue
		}
		ids = append(ids, s)
	}
	return ids
}

// agentName returns a realistic, deterministic name for the i-th agent.
func agentName(i int) (first, last string) {
	first = firstNames[i%len(firstNames)]
	last = lastNames[(i*7+i/len(firstNames))%len(lastNames)]
	return first, last
}

// newCast builds the users of a simulator with n agents.
func newCast(n int, password string) []*user {
	users := make([]*user, 0, n+1)
	for i, id := range agentIDs(n) {
		first, last := agentName(i)
		users = append(users, &user{
			id: id, loginName: "agent" + id, first: first, last: last,
			ext: "5" + id, password: password, roles: []string{"Agent"},
			state: stateLogout, reasonID: reasonNone,
		})
	}
	users = append(users, &user{
		id: SupervisorID, loginName: "super" + SupervisorID, first: "Sofia", last: "Marin",
		ext: "5" + SupervisorID, password: password, roles: []string{"Agent", "Supervisor"},
		supervises: []string{TeamID}, state: stateLogout, reasonID: reasonNone,
	})
	return users
}
