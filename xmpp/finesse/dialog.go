package finesse

import "encoding/xml"

// Dialog is a voice call or a nonvoice task (chat, email, ...): GET
// /finesse/api/Dialog/{id}, an item update on a Dialogs or Dialogs/Media
// node (data <dialog>, source /finesse/api/Dialog/{id}) and a member of
// Dialogs. A nonvoice dialog has MediaType set to the MRD's name (e.g.
// Cisco_Chat_MRD), MediaProperties.MediaID to the MRD id, an id with
// underscores (151635_312_1) and no voice-only fields (fromAddress,
// callType, secondaryId, ...).
type Dialog struct {
	ID                  string `xml:"id" json:"id"`
	URI                 string `xml:"uri" json:"uri"`
	AssociatedDialogURI string `xml:"associatedDialogUri" json:"associatedDialogUri"`
	// SecondaryID is the call id of the secondary call: after a transfer
	// or conference, the id of the dialog that was dropped (voice only).
	SecondaryID string `xml:"secondaryId,omitempty" json:"secondaryId"`
	FromAddress string `xml:"fromAddress" json:"fromAddress"`
	ToAddress   string `xml:"toAddress" json:"toAddress"`
	// CallbackNumber is the customer number without the dialer's prefix
	// (UCCE direct preview outbound calls).
	CallbackNumber  string          `xml:"callbackNumber,omitempty" json:"callbackNumber"`
	State           string          `xml:"state" json:"state"` // voice: ACCEPTED, ACTIVE, ALERTING, DROPPED, FAILED, INITIATED, INITIATING; nonvoice: OFFERED, ACCEPTED, ACTIVE, PAUSED, WRAPPING_UP, INTERRUPTED, CLOSED, UNKNOWN
	MediaType       string          `xml:"mediaType" json:"mediaType"`
	MediaProperties MediaProperties `xml:"mediaProperties" json:"mediaProperties"`
	Participants    []Participant   `xml:"participants>Participant" json:"participants,omitempty"`
	// ScheduledCallbackInfo is an Outbound Option callback's time and
	// number; nil when Finesse sent none.
	ScheduledCallbackInfo *ScheduledCallbackInfo `xml:"scheduledCallbackInfo,omitempty" json:"scheduledCallbackInfo,omitempty"`
	Extra                 []Raw                  `xml:",any" json:"extra,omitempty"`
}

// ScheduledCallbackInfo is the scheduled callback of an outbound dialog.
type ScheduledCallbackInfo struct {
	CallbackTime   string `xml:"callbackTime" json:"callbackTime"` // as sent, e.g. 2014-03-07T14:30
	CallbackNumber string `xml:"callbackNumber" json:"callbackNumber"`
	Extra          []Raw  `xml:",any" json:"extra,omitempty"`
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
	WrapUpItems        []string       `xml:"wrapUpItems>wrapUpItem,omitempty" json:"wrapUpItems,omitempty"` // UCCX
	CallKeyCallID      string         `xml:"callKeyCallId,omitempty" json:"callKeyCallId"`
	CallKeySequenceNum string         `xml:"callKeySequenceNum,omitempty" json:"callKeySequenceNum"`
	CallKeyPrefix      string         `xml:"callKeyPrefix,omitempty" json:"callKeyPrefix"`
	CallVariables      []CallVariable `xml:"callvariables>CallVariable" json:"callVariables,omitempty"`
	Extra              []Raw          `xml:",any" json:"extra,omitempty"`
}

// CallVariable is one call variable (callVariable1..10 or an ECC variable
// such as user.CustomerTier). It is the one typed element without Extra:
// Finesse defines it as a name/value pair, and it stays comparable.
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
	Extra            []Raw    `xml:",any" json:"extra,omitempty"`
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
		case "secondaryid":
			dl.SecondaryID = c.text
		case "callbacknumber":
			dl.CallbackNumber = c.text
		case "scheduledcallbackinfo":
			dl.ScheduledCallbackInfo = new(ScheduledCallbackInfo)
			for f := c.child; f != nil; f = f.next {
				switch f.key {
				case "callbacktime":
					dl.ScheduledCallbackInfo.CallbackTime = f.text
				case "callbacknumber":
					dl.ScheduledCallbackInfo.CallbackNumber = f.text
				default:
					dl.ScheduledCallbackInfo.Extra = append(dl.ScheduledCallbackInfo.Extra, rawOf(f))
				}
			}
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
		default:
			dl.Extra = append(dl.Extra, rawOf(c))
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
		case "wrapupitems":
			m.WrapUpItems = texts(c)
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
		default:
			m.Extra = append(m.Extra, rawOf(c))
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
		default:
			p.Extra = append(p.Extra, rawOf(c))
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
