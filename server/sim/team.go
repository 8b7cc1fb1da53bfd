package sim

import (
	"encoding/xml"

	"go.uber.org/zap"

	"finesse-relay/xmpp/finesse"
)

// Team members are summaries, not Users: Cisco's Team object
// (developer.cisco.com/docs/finesse/team) lists, for each member, uri,
// loginId, firstName, lastName, dialogs, extension, pendingState, state, a
// lower-case <reasonCode> (category, code, label, id, uri) while the state
// has one, and stateChangeTime. The simulator sends exactly these, on GET
// Team/{id} and on the Team/{id}/Users node, and nothing a full User has
// (loginName, reasonCodeId, roles, settings, ...).

// teamXML is GET /finesse/api/Team/{id}.
type teamXML struct {
	XMLName xml.Name      `xml:"Team"`
	URI     string        `xml:"uri"`
	ID      string        `xml:"id"`
	Name    string        `xml:"name"`
	Users   []teamUserXML `xml:"users>User"`
}

// teamUserXML is one member summary; its element name is set by the
// container (<User> in a Team, <user> as notification data).
type teamUserXML struct {
	URI             string             `xml:"uri"`
	LoginID         string             `xml:"loginId"`
	FirstName       string             `xml:"firstName"`
	LastName        string             `xml:"lastName"`
	Dialogs         string             `xml:"dialogs"`
	Extension       string             `xml:"extension"`
	PendingState    string             `xml:"pendingState"`
	State           string             `xml:"state"`
	ReasonCode      *teamReasonCodeXML `xml:"reasonCode,omitempty"`
	StateChangeTime string             `xml:"stateChangeTime"`
}

type teamReasonCodeXML struct {
	Category string `xml:"category"`
	Code     string `xml:"code"`
	Label    string `xml:"label"`
	ID       string `xml:"id"`
	URI      string `xml:"uri"`
}

// teamUser is u's member summary.
func (m *model) teamUser(u *user) teamUserXML {
	s := m.userSummary(u)
	x := teamUserXML{
		URI: s.URI, LoginID: s.LoginID, FirstName: s.FirstName, LastName: s.LastName, Dialogs: s.Dialogs,
		Extension: s.Extension, PendingState: s.PendingState, State: s.State, StateChangeTime: s.StateChangeTime,
	}
	if rc := s.ReasonCode; rc != nil {
		x.ReasonCode = &teamReasonCodeXML{Category: rc.Category, Code: rc.Code, Label: rc.Label, ID: rc.ID, URI: rc.URI}
	}
	return x
}

func (m *model) teamXML(teamID string) *teamXML {
	t := &teamXML{URI: finesse.TeamURI(teamID), ID: teamID, Name: TeamName, Users: make([]teamUserXML, 0, len(m.agents))}
	for _, u := range m.agents {
		t.Users = append(t.Users, m.teamUser(u))
	}
	return t
}

// emitTeamUser sends u's member summary on the team's Users node (F.6).
func (m *model) emitTeamUser(u *user, reqID string, sides sideMask) {
	data, err := xml.Marshal(struct {
		XMLName xml.Name `xml:"user"`
		teamUserXML
	}{teamUserXML: m.teamUser(u)})
	if err != nil {
		m.log.Error("sim: encode team member", zap.String("user", u.id), zap.Error(err))
		return
	}
	m.emitData(finesse.TeamUsersNode(TeamID), finesse.EventPut, u.uri(), reqID, data, sides)
}
