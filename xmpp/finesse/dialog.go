package finesse

import "encoding/xml"

// Dialog is a voice call: GET /finesse/api/Dialog/{id}, an item update on a
// Dialogs node (data <dialog>, source /finesse/api/Dialog/{id}) and a member
// of Dialogs.
type Dialog struct {
	ID                  string          `xml:"id" json:"id"`
	URI                 string          `xml:"uri" json:"uri"`
	AssociatedDialogURI string          `xml:"associatedDialogUri" json:"associatedDialogUri"`
	FromAddress         string          `xml:"fromAddress" json:"fromAddress"`
	ToAddress           string          `xml:"toAddress" json:"toAddress"`
	State               string          `xml:"state" json:"state"` // ACCEPTED, ACTIVE, ALERTING, DROPPED, FAILED, INITIATED, INITIATING
	MediaType           string          `xml:"mediaType" json:"mediaType"`
	MediaProperties     MediaProperties `xml:"mediaProperties" json:"mediaProperties"`
	Participants        []Participant   `xml:"participants>Participant" json:"participants,omitempty"`
}

// MediaProperties are a dialog's call data.
type MediaProperties struct {
	MediaID            string         `xml:"mediaId" json:"mediaId"` // 1 for voice
	DialedNumber       string         `xml:"dialedNumber" json:"dialedNumber"`
	CallType           string         `xml:"callType" json:"callType"` // ACD_IN, OUT, AGENT_INSIDE, CONSULT, ...
	DNIS               string         `xml:"DNIS" json:"dnis"`
	QueueNumber        string         `xml:"queueNumber" json:"queueNumber"`
	QueueName          string         `xml:"queueName" json:"queueName"`
	WrapUpReason       string         `xml:"wrapUpReason" json:"wrapUpReason"`
	CallKeyCallID      string         `xml:"callKeyCallId,omitempty" json:"callKeyCallId"`
	CallKeySequenceNum string         `xml:"callKeySequenceNum,omitempty" json:"callKeySequenceNum"`
	CallKeyPrefix      string         `xml:"callKeyPrefix,omitempty" json:"callKeyPrefix"`
	CallVariables      []CallVariable `xml:"callvariables>CallVariable" json:"callVariables,omitempty"`
}

// CallVariable is one call variable (callVariable1..10 or an ECC variable
// such as user.CustomerTier).
type CallVariable struct {
	Name  string `xml:"name" json:"name"`
	Value string `xml:"value" json:"value"`
}

// Participant is one party of a dialog. Actions are what the participant
// may do now (ANSWER, HOLD, RETRIEVE, DROP, UPDATE_CALL_DATA, ...).
type Participant struct {
	Actions          []string `xml:"actions>action" json:"actions,omitempty"`
	MediaAddress     string   `xml:"mediaAddress" json:"mediaAddress"`
	MediaAddressType string   `xml:"mediaAddressType" json:"mediaAddressType"`
	StartTime        string   `xml:"startTime" json:"startTime"`
	State            string   `xml:"state" json:"state"` // dialog states plus HELD, WRAP_UP
	StateCause       string   `xml:"stateCause" json:"stateCause"`
	StateChangeTime  string   `xml:"stateChangeTime" json:"stateChangeTime"`
}

// Dialogs is a list of dialogs: GET /finesse/api/User/{id}/Dialogs
// (<Dialogs>) and a collection add or remove on a Dialogs node
// (<dialogs><Dialog>...).
type Dialogs struct {
	Dialogs []Dialog `xml:"Dialog" json:"dialogs"`
}

// Kind returns KindDialog.
func (*Dialog) Kind() string { return KindDialog }

// Kind returns KindDialogs.
func (*Dialogs) Kind() string { return KindDialogs }

// MarshalJSON writes dialogs as an array, [] when empty.
func (l Dialogs) MarshalJSON() ([]byte, error) {
	type plain Dialogs
	if l.Dialogs == nil {
		l.Dialogs = []Dialog{}
	}
	return marshalJSON(plain(l))
}

// UnmarshalXML decodes a dialog element of any letter case.
func (dl *Dialog) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, dl.decode)
}

// UnmarshalXML decodes a dialog list of any letter case.
func (l *Dialogs) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, l.decode)
}

func (dl *Dialog) decode(e *elem) error {
	*dl = Dialog{}
	for c := e.child; c != nil; c = c.next {
		switch c.key {
		case "id":
			dl.ID = c.text
		case "uri":
			dl.URI = c.text
		case "associateddialoguri":
			dl.AssociatedDialogURI = c.text
		case "fromaddress":
			dl.FromAddress = c.text
		case "toaddress":
			dl.ToAddress = c.text
		case "state":
			dl.State = c.text
		case "mediatype":
			dl.MediaType = c.text
		case "mediaproperties":
			dl.MediaProperties.decode(c)
		case "participants":
			dl.Participants = nil
			for p := c.child; p != nil; p = p.next {
				var part Participant
				part.decode(p)
				dl.Participants = append(dl.Participants, part)
			}
		}
	}
	return nil
}

func (m *MediaProperties) decode(e *elem) {
	*m = MediaProperties{}
	for c := e.child; c != nil; c = c.next {
		switch c.key {
		case "mediaid":
			m.MediaID = c.text
		case "dialednumber":
			m.DialedNumber = c.text
		case "calltype":
			m.CallType = c.text
		case "dnis":
			m.DNIS = c.text
		case "queuenumber":
			m.QueueNumber = c.text
		case "queuename":
			m.QueueName = c.text
		case "wrapupreason":
			m.WrapUpReason = c.text
		case "callkeycallid":
			m.CallKeyCallID = c.text
		case "callkeysequencenum":
			m.CallKeySequenceNum = c.text
		case "callkeyprefix":
			m.CallKeyPrefix = c.text
		case "callvariables":
			m.CallVariables = nil
			for v := c.child; v != nil; v = v.next {
				var cv CallVariable
				if n := v.find("name"); n != nil {
					cv.Name = n.text
				}
				if x := v.find("value"); x != nil {
					cv.Value = x.text
				}
				m.CallVariables = append(m.CallVariables, cv)
			}
		}
	}
}

func (p *Participant) decode(e *elem) {
	*p = Participant{}
	for c := e.child; c != nil; c = c.next {
		switch c.key {
		case "actions":
			p.Actions = texts(c)
		case "mediaaddress":
			p.MediaAddress = c.text
		case "mediaaddresstype":
			p.MediaAddressType = c.text
		case "starttime":
			p.StartTime = c.text
		case "state":
			p.State = c.text
		case "statecause":
			p.StateCause = c.text
		case "statechangetime":
			p.StateChangeTime = c.text
		}
	}
}

func (l *Dialogs) decode(e *elem) error {
	*l = Dialogs{}
	for c := e.child; c != nil; c = c.next {
		var dl Dialog
		if err := dl.decode(c); err != nil {
			return err
		}
		l.Dialogs = append(l.Dialogs, dl)
	}
	return nil
}
