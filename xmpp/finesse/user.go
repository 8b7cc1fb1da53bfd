package finesse

import (
	"encoding/xml"
	"fmt"
)

// User is a Finesse user (agent or supervisor): GET /finesse/api/User/{id},
// the data of notifications on the User/{id} node, and (as a summary with
// fewer fields) a member of a Team.
//
// XML: <User> in REST, <user> in notifications; decoding accepts either
// case for every element. Strings are kept exactly as Finesse sent them
// (states, times in ISO 8601, ids); an element Finesse did not send is the
// zero value.
type User struct {
	URI             string      `xml:"uri" json:"uri"`
	LoginID         string      `xml:"loginId" json:"loginId"`
	LoginName       string      `xml:"loginName" json:"loginName"`
	FirstName       string      `xml:"firstName" json:"firstName"`
	LastName        string      `xml:"lastName" json:"lastName"`
	Extension       string      `xml:"extension" json:"extension"`
	State           string      `xml:"state" json:"state"`                     // LOGOUT, NOT_READY, READY, RESERVED, TALKING, HOLD, WORK, WORK_READY, ...
	StateChangeTime string      `xml:"stateChangeTime" json:"stateChangeTime"` // ISO 8601, as sent
	PendingState    string      `xml:"pendingState" json:"pendingState"`
	ReasonCodeID    string      `xml:"reasonCodeId" json:"reasonCodeId"` // "-1" when none
	ReasonCode      *ReasonCode `xml:"ReasonCode,omitempty" json:"reasonCode,omitempty"`
	Roles           []string    `xml:"roles>role" json:"roles,omitempty"` // Agent, Supervisor
	TeamID          string      `xml:"teamId" json:"teamId"`
	TeamName        string      `xml:"teamName" json:"teamName"`
	Teams           []Team      `xml:"teams>Team" json:"teams,omitempty"` // teams a supervisor supervises
	Settings        *Settings   `xml:"settings,omitempty" json:"settings,omitempty"`
	// MobileAgent is set while the user is signed in as a mobile agent
	// (UCCE), and only on the side the agent signed in to.
	MobileAgent   *MobileAgent `xml:"mobileAgent,omitempty" json:"mobileAgent,omitempty"`
	SkillTargetID string       `xml:"skillTargetId,omitempty" json:"skillTargetId"` // UCCE
	MediaType     string       `xml:"mediaType" json:"mediaType"`
	Dialogs       string       `xml:"dialogs" json:"dialogs"` // URI of the user's Dialogs collection
	WrapUpTimer   string       `xml:"wrapUpTimer,omitempty" json:"wrapUpTimer"`
	Services      []string     `xml:"services>service,omitempty" json:"services,omitempty"` // e.g. AgentAnswers
	Extra         []Raw        `xml:",any" json:"extra,omitempty"`
}

// Settings are a user's settings: wrap-up (REQUIRED, OPTIONAL,
// REQUIRED_WITH_WRAP_UP_DATA, NOT_ALLOWED) and whether the agent may pick
// among the devices of a shared extension (deviceSelection, e.g. "enabled").
type Settings struct {
	WrapUpOnIncoming string `xml:"wrapUpOnIncoming" json:"wrapUpOnIncoming"`
	WrapUpOnOutgoing string `xml:"wrapUpOnOutgoing,omitempty" json:"wrapUpOnOutgoing"`
	DeviceSelection  string `xml:"deviceSelection,omitempty" json:"deviceSelection"`
	Extra            []Raw  `xml:",any" json:"extra,omitempty"`
}

// MobileAgent is how a mobile agent is reached: Mode CALL_BY_CALL or
// NAILED_CONNECTION, and the number Finesse dials.
type MobileAgent struct {
	Mode       string `xml:"mode" json:"mode"`
	DialNumber string `xml:"dialNumber" json:"dialNumber"`
	Extra      []Raw  `xml:",any" json:"extra,omitempty"`
}

// ReasonCode is a Not Ready or Logout reason code: the <ReasonCode> inside
// a User, GET /finesse/api/User/{id}/ReasonCode/{id}, and a member of
// ReasonCodes. ID is the database id a state change request sends as
// reasonCodeId; Code is the number reported to the contact center.
type ReasonCode struct {
	ID         string `xml:"id" json:"id"`
	URI        string `xml:"uri" json:"uri"`
	Category   string `xml:"category" json:"category"` // NOT_READY or LOGOUT
	Code       string `xml:"code" json:"code"`
	Label      string `xml:"label" json:"label"`
	ForAll     bool   `xml:"forAll" json:"forAll"`
	SystemCode bool   `xml:"systemCode" json:"systemCode"`
	Extra      []Raw  `xml:",any" json:"extra,omitempty"`
}

// ReasonCodes is a list of reason codes (<ReasonCodes><ReasonCode>...).
type ReasonCodes struct {
	ReasonCodes []ReasonCode `xml:"ReasonCode" json:"reasonCodes"`
}

// Team is a team: GET /finesse/api/Team/{id} (with Users, each a summary
// User), the data of a full-team notification, and an entry of User.Teams
// (ID, URI and Name only).
type Team struct {
	URI   string `xml:"uri" json:"uri"`
	ID    string `xml:"id" json:"id"`
	Name  string `xml:"name" json:"name"`
	Users []User `xml:"users>User" json:"users,omitempty"`
	Extra []Raw  `xml:",any" json:"extra,omitempty"`
}

// Kind returns KindUser.
func (*User) Kind() string { return KindUser }

// Kind returns KindReasonCode.
func (*ReasonCode) Kind() string { return KindReasonCode }

// Kind returns KindReasonCodes.
func (*ReasonCodes) Kind() string { return KindReasonCodes }

// Kind returns KindTeam.
func (*Team) Kind() string { return KindTeam }

// MarshalJSON writes reasonCodes as an array, [] when empty.
func (r ReasonCodes) MarshalJSON() ([]byte, error) {
	type plain ReasonCodes
	if r.ReasonCodes == nil {
		r.ReasonCodes = []ReasonCode{}
	}
	return marshalJSON(plain(r))
}

// UnmarshalXML decodes a user element of any letter case.
func (u *User) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, u.decode)
}

// UnmarshalXML decodes a reason code element of any letter case.
func (r *ReasonCode) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, r.decode)
}

// UnmarshalXML decodes a reason code list of any letter case.
func (r *ReasonCodes) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, r.decode)
}

// UnmarshalXML decodes a team element of any letter case.
func (t *Team) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, t.decode)
}

func (u *User) decode(e *elem) error {
	*u = User{}
	for c := e.child; c != nil; c = c.next {
		switch c.key {
		case "uri":
			u.URI = c.text
		case "loginid":
			u.LoginID = c.text
		case "loginname":
			u.LoginName = c.text
		case "firstname":
			u.FirstName = c.text
		case "lastname":
			u.LastName = c.text
		case "extension":
			u.Extension = c.text
		case "state":
			u.State = c.text
		case "statechangetime":
			u.StateChangeTime = c.text
		case "pendingstate":
			u.PendingState = c.text
		case "reasoncodeid":
			u.ReasonCodeID = c.text
		case "reasoncode":
			u.ReasonCode = new(ReasonCode)
			if err := u.ReasonCode.decode(c); err != nil {
				return err
			}
		case "roles":
			u.Roles = texts(c)
		case "teamid":
			u.TeamID = c.text
		case "teamname":
			u.TeamName = c.text
		case "teams":
			u.Teams = nil
			for t := c.child; t != nil; t = t.next {
				var team Team
				if err := team.decode(t); err != nil {
					return err
				}
				u.Teams = append(u.Teams, team)
			}
		case "settings":
			u.Settings = &Settings{}
			for f := c.child; f != nil; f = f.next {
				switch f.key {
				case "wrapuponincoming":
					u.Settings.WrapUpOnIncoming = f.text
				case "wrapuponoutgoing":
					u.Settings.WrapUpOnOutgoing = f.text
				case "deviceselection":
					u.Settings.DeviceSelection = f.text
				default:
					u.Settings.Extra = append(u.Settings.Extra, rawOf(f))
				}
			}
		case "mobileagent":
			u.MobileAgent = &MobileAgent{}
			for f := c.child; f != nil; f = f.next {
				switch f.key {
				case "mode":
					u.MobileAgent.Mode = f.text
				case "dialnumber":
					u.MobileAgent.DialNumber = f.text
				default:
					u.MobileAgent.Extra = append(u.MobileAgent.Extra, rawOf(f))
				}
			}
		case "skilltargetid":
			u.SkillTargetID = c.text
		case "mediatype":
			u.MediaType = c.text
		case "dialogs":
			u.Dialogs = c.text
		case "wrapuptimer":
			u.WrapUpTimer = c.text
		case "services":
			u.Services = texts(c)
		default:
			u.Extra = append(u.Extra, rawOf(c))
		}
	}
	return nil
}

func (r *ReasonCode) decode(e *elem) error {
	*r = ReasonCode{}
	var err error
	for c := e.child; c != nil; c = c.next {
		switch c.key {
		case "id":
			r.ID = c.text
		case "uri":
			r.URI = c.text
		case "category":
			r.Category = c.text
		case "code":
			r.Code = c.text
		case "label":
			r.Label = c.text
		case "forall":
			r.ForAll, err = parseBool(c)
		case "systemcode":
			r.SystemCode, err = parseBool(c)
		default:
			r.Extra = append(r.Extra, rawOf(c))
		}
		if err != nil {
			return fmt.Errorf("<%s>: %w", e.name, err)
		}
	}
	return nil
}

func (r *ReasonCodes) decode(e *elem) error {
	*r = ReasonCodes{}
	for c := e.child; c != nil; c = c.next {
		var rc ReasonCode
		if err := rc.decode(c); err != nil {
			return err
		}
		r.ReasonCodes = append(r.ReasonCodes, rc)
	}
	return nil
}

func (t *Team) decode(e *elem) error {
	*t = Team{}
	for c := e.child; c != nil; c = c.next {
		switch c.key {
		case "uri":
			t.URI = c.text
		case "id":
			t.ID = c.text
		case "name":
			t.Name = c.text
		case "users":
			for m := c.child; m != nil; m = m.next {
				var u User
				if err := u.decode(m); err != nil {
					return err
				}
				t.Users = append(t.Users, u)
			}
		default:
			t.Extra = append(t.Extra, rawOf(c))
		}
	}
	return nil
}
