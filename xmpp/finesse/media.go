package finesse

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// Media is a user's state in one nonvoice Media Routing Domain (MRD, e.g.
// chat or email; UCCE only): GET /finesse/api/User/{id}/Media/{mrdId}, a
// member of MediaList, and the data of notifications on the
// User/{id}/Media/{mrdId} node (<media> there). Fields follow Cisco's
// Media object and Media API parameters
// (developer.cisco.com/docs/finesse/media-api-parameters). A user who is
// not in any skill group of the MRD gets only uri, description, id,
// interruptible and name. The settings given at sign-in (maxDialogLimit,
// interruptAction, dialogLogoutAction) are right only on the side the
// user signed in to.
type Media struct {
	URI string `xml:"uri" json:"uri"`
	// ID is <id> as sent: Cisco's samples put the MRD id there, its
	// parameter table says the user id.
	ID string `xml:"id,omitempty" json:"id"`
	// MRDID is the MRD id: <mrdId> when sent, else the last segment of
	// URI (/finesse/api/User/{id}/Media/{mrdId}).
	MRDID       string `xml:"mrdId,omitempty" json:"mrdId"`
	Name        string `xml:"name" json:"name"` // e.g. Cisco_Chat_MRD, the mediaType of its dialogs
	Description string `xml:"description,omitempty" json:"description"`
	// MediaConnected says the MRD's media connection to Finesse is up.
	MediaConnected bool `xml:"mediaConnected,omitempty" json:"mediaConnected"`
	// Interruptible: a task in this MRD can be interrupted by a task from
	// another MRD.
	Interruptible bool `xml:"interruptible" json:"interruptible"`
	// MaxDialogLimit is how many dialogs the user may handle at once in
	// this MRD (1–10).
	MaxDialogLimit int `xml:"maxDialogLimit,omitempty" json:"maxDialogLimit"`
	// InterruptAction is ACCEPT (the user goes INTERRUPTED here when a
	// non-interruptible MRD's task arrives) or IGNORE.
	InterruptAction string `xml:"interruptAction,omitempty" json:"interruptAction"`
	// DialogLogoutAction is CLOSE or TRANSFER: what happens to the user's
	// dialogs when they sign out of the MRD.
	DialogLogoutAction string `xml:"dialogLogoutAction,omitempty" json:"dialogLogoutAction"`
	// State is LOGOUT, NOT_READY, READY, WORK, WORK_READY, INTERRUPTED, ...
	// (LOGIN only in requests).
	State           string      `xml:"state,omitempty" json:"state"`
	StateChangeTime string      `xml:"stateChangeTime,omitempty" json:"stateChangeTime"` // ISO 8601, "" when unknown
	ReasonCodeID    string      `xml:"reasonCodeId,omitempty" json:"reasonCodeId"`       // "-1" or "" when none
	ReasonCode      *ReasonCode `xml:"ReasonCode,omitempty" json:"reasonCode,omitempty"`
	// Routable: the contact center may assign the user tasks in this MRD.
	Routable bool  `xml:"routable,omitempty" json:"routable"`
	Extra    []Raw `xml:",any" json:"extra,omitempty"`
}

// MediaList is GET /finesse/api/User/{id}/Media: one Media per nonvoice
// MRD configured.
type MediaList struct {
	Media []Media `xml:"Media" json:"mediaList"`
}

// Kind returns KindMedia.
func (*Media) Kind() string { return KindMedia }

// Kind returns KindMediaList.
func (*MediaList) Kind() string { return KindMediaList }

// MarshalJSON writes mediaList as an array, [] when empty.
func (l MediaList) MarshalJSON() ([]byte, error) {
	type plain MediaList
	if l.Media == nil {
		l.Media = []Media{}
	}
	return marshalJSON(plain(l))
}

// UnmarshalXML decodes a media element of any letter case.
func (m *Media) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, m.decode)
}

// UnmarshalXML decodes a media list of any letter case.
func (l *MediaList) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, l.decode)
}

// ParseMedia decodes a <Media> (REST) or <media> (notification) document,
// or returns *APIErrors as ParseUser does.
func ParseMedia(data []byte) (*Media, error) {
	v := new(Media)
	if err := parseAs(data, "media", v.decode); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseMediaList decodes a <MediaList> (or returns *APIErrors, as
// ParseUser does). An empty list gives a nil slice.
func ParseMediaList(data []byte) ([]Media, error) {
	var v MediaList
	if err := parseAs(data, "medialist", v.decode); err != nil {
		return nil, err
	}
	return v.Media, nil
}

func (m *Media) decode(e *elem) error {
	*m = Media{}
	for c := e.child; c != nil; c = c.next {
		var err error
		switch c.key {
		case "uri":
			m.URI = c.text
		case "id":
			m.ID = c.text
		case "mrdid":
			m.MRDID = c.text
		case "name":
			m.Name = c.text
		case "description":
			m.Description = c.text
		case "mediaconnected":
			m.MediaConnected, err = parseBool(c)
		case "interruptible":
			m.Interruptible, err = parseBool(c)
		case "maxdialoglimit":
			m.MaxDialogLimit, err = parseInt(c)
		case "interruptaction":
			m.InterruptAction = c.text
		case "dialoglogoutaction":
			m.DialogLogoutAction = c.text
		case "state":
			m.State = c.text
		case "statechangetime":
			m.StateChangeTime = c.text
		case "reasoncodeid":
			m.ReasonCodeID = c.text
		case "reasoncode":
			m.ReasonCode = new(ReasonCode)
			err = m.ReasonCode.decode(c)
		case "routable":
			m.Routable, err = parseBool(c)
		default:
			m.Extra = append(m.Extra, rawOf(c))
		}
		if err != nil {
			return fmt.Errorf("<%s>: %w", e.name, err)
		}
	}
	if m.MRDID == "" {
		if n, ok := parseNode(m.URI); ok && n.Kind == NodeMedia {
			m.MRDID = n.MediaID
		}
	}
	return nil
}

func (l *MediaList) decode(e *elem) error {
	*l = MediaList{}
	for c := e.child; c != nil; c = c.next {
		var m Media
		if err := m.decode(c); err != nil {
			return err
		}
		l.Media = append(l.Media, m)
	}
	return nil
}

// SignedIn reports whether the user is signed in to the MRD: a state is
// known and it is not LOGOUT.
func (m *Media) SignedIn() bool {
	return m.State != "" && !strings.EqualFold(m.State, "LOGOUT")
}
