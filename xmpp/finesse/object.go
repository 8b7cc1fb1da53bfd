package finesse

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// Object is a decoded Finesse object: one of *User, *Dialog, *Dialogs,
// *Team, *Queue, *Queues, *SystemInfo, *APIErrors, *ReasonCode,
// *ReasonCodes, *Media, *MediaList, or *Raw for anything else. Use a type switch on the
// concrete type; Kind names it for logs and metrics.
type Object interface {
	// Kind is the object's REST element name (KindUser, ...), or KindRaw.
	Kind() string
}

// Object kinds: the REST root element name of each type.
const (
	KindUser        = "User"
	KindDialog      = "Dialog"
	KindDialogs     = "Dialogs"
	KindTeam        = "Team"
	KindQueue       = "Queue"
	KindQueues      = "Queues"
	KindSystemInfo  = "SystemInfo"
	KindAPIErrors   = "ApiErrors"
	KindReasonCode  = "ReasonCode"
	KindReasonCodes = "ReasonCodes"
	KindMedia       = "Media"
	KindMediaList   = "MediaList"
	KindRaw         = "Raw"
)

// Raw is an element this package has no type for: a whole object (a
// TeamMessage, ...) given by DecodeData, or an unknown child of a typed
// object kept in its Extra. DecodeData's Raw keeps the element's XML
// exactly as received (without any prolog, comment or whitespace around
// it); an Extra member is the element written again from the parsed tree
// (see Extra in the package documentation).
type Raw struct {
	Element string `json:"element"` // the root element's local name, as sent
	XML     string `json:"xml"`     // the whole element, from its start tag to its end tag
}

// Kind returns KindRaw.
func (*Raw) Kind() string { return KindRaw }

// MarshalXML writes the raw element again, re-encoded token by token (so
// the bytes may differ from XML in insignificant ways, such as <a/>
// becoming <a></a>). Anything outside the element is dropped.
func (r Raw) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	d := xml.NewDecoder(bytes.NewReader([]byte(r.XML)))
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return enc.Flush()
		}
		if err != nil {
			return fmt.Errorf("%w: raw <%s>: %w", ErrMalformedData, r.Element, err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.ProcInst, xml.Directive:
			continue
		default:
			if depth == 0 {
				continue
			}
		}
		if err := enc.EncodeToken(tok); err != nil {
			return err
		}
	}
}

// decoders maps a lower-cased root element name to a fresh typed value.
func newObject(key string) (Object, func(*elem) error) {
	switch key {
	case "user":
		v := new(User)
		return v, v.decode
	case "dialog":
		v := new(Dialog)
		return v, v.decode
	case "dialogs":
		v := new(Dialogs)
		return v, v.decode
	case "team":
		v := new(Team)
		return v, v.decode
	case "queue":
		v := new(Queue)
		return v, v.decode
	case "queues":
		v := new(Queues)
		return v, v.decode
	case "systeminfo":
		v := new(SystemInfo)
		return v, v.decode
	case "apierrors":
		v := new(APIErrors)
		return v, v.decode
	case "reasoncode":
		v := new(ReasonCode)
		return v, v.decode
	case "reasoncodes":
		v := new(ReasonCodes)
		return v, v.decode
	case "media":
		v := new(Media)
		return v, v.decode
	case "medialist":
		v := new(MediaList)
		return v, v.decode
	}
	return nil, nil
}

// DecodeData decodes one object document, Update.Data or a REST body, into
// its typed value, choosing the type by the root element's name in any
// letter case (<user> and <User> both give *User). An element with no type
// gives *Raw. Empty or all-whitespace data (a notification without <data>,
// as when a user is deleted) gives (nil, nil).
//
// Errors wrap ErrMalformedData (and ErrLimit for oversized input).
func DecodeData(data []byte) (Object, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	root, raw, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	obj, decode := newObject(root.key)
	if obj == nil {
		return &Raw{Element: root.name, XML: string(raw)}, nil
	}
	if err := decode(root); err != nil {
		return nil, wrapData(err)
	}
	return obj, nil
}

// parseAs decodes data whose root must be want (lower case); an apiErrors
// document is returned as the *APIErrors error.
func parseAs(data []byte, want string, decode func(*elem) error) error {
	root, _, err := parseTree(data)
	if err != nil {
		return err
	}
	switch root.key {
	case want:
		return wrapData(decode(root))
	case "apierrors":
		var ae APIErrors
		if err := ae.decode(root); err != nil {
			return wrapData(err)
		}
		return &ae
	}
	return fmt.Errorf("%w: root element <%s>, want <%s>", ErrMalformedData, root.name, want)
}

// ParseUser decodes a <User> (REST) or <user> (notification) document. If
// the document is an error report it returns the *APIErrors as the error.
func ParseUser(data []byte) (*User, error) {
	v := new(User)
	if err := parseAs(data, "user", v.decode); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseDialog decodes a <Dialog> or <dialog> document (or returns
// *APIErrors, as ParseUser does).
func ParseDialog(data []byte) (*Dialog, error) {
	v := new(Dialog)
	if err := parseAs(data, "dialog", v.decode); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseDialogs decodes a <Dialogs> or <dialogs> list (or returns
// *APIErrors, as ParseUser does). An empty list gives a nil slice.
func ParseDialogs(data []byte) ([]Dialog, error) {
	var v Dialogs
	if err := parseAs(data, "dialogs", v.decode); err != nil {
		return nil, err
	}
	return v.Dialogs, nil
}

// ParseTeam decodes a <Team> or <team> document (or returns *APIErrors, as
// ParseUser does).
func ParseTeam(data []byte) (*Team, error) {
	v := new(Team)
	if err := parseAs(data, "team", v.decode); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseQueue decodes a <Queue> or <queue> document (or returns *APIErrors,
// as ParseUser does).
func ParseQueue(data []byte) (*Queue, error) {
	v := new(Queue)
	if err := parseAs(data, "queue", v.decode); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseQueues decodes a <Queues> list (GET /finesse/api/User/{id}/Queues),
// or returns *APIErrors as ParseUser does. An empty list gives a nil slice.
func ParseQueues(data []byte) ([]Queue, error) {
	var v Queues
	if err := parseAs(data, "queues", v.decode); err != nil {
		return nil, err
	}
	return v.Queues, nil
}

// ParseSystemInfo decodes a <SystemInfo> or <systemInfo> document (or
// returns *APIErrors, as ParseUser does).
func ParseSystemInfo(data []byte) (*SystemInfo, error) {
	v := new(SystemInfo)
	if err := parseAs(data, "systeminfo", v.decode); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseReasonCodes decodes a <ReasonCodes> list (or returns *APIErrors, as
// ParseUser does). An empty list gives a nil slice.
func ParseReasonCodes(data []byte) ([]ReasonCode, error) {
	var v ReasonCodes
	if err := parseAs(data, "reasoncodes", v.decode); err != nil {
		return nil, err
	}
	return v.ReasonCodes, nil
}

// ParseAPIErrors decodes an error report in either form: REST
// (<ApiErrors><ApiError><ErrorType>) or notification
// (<apiErrors><apiError><errorType>). Unlike the other Parse functions it
// returns the report as a value, not as the error.
func ParseAPIErrors(data []byte) (*APIErrors, error) {
	root, _, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	if root.key != "apierrors" {
		return nil, fmt.Errorf("%w: root element <%s>, want <ApiErrors>", ErrMalformedData, root.name)
	}
	v := new(APIErrors)
	if err := v.decode(root); err != nil {
		return nil, wrapData(err)
	}
	return v, nil
}

// EncodeData writes o in the notification form Finesse puts inside <data>:
// the root element name starts with a lower-case letter (<user>, <dialog>,
// <dialogs>, <team>, <queue>, <systemInfo>, <apiErrors>) while nested
// elements keep their REST names (<dialogs><Dialog>, <user><ReasonCode>).
// A *Raw is returned as its XML, unchanged.
//
// xml.Marshal(o) writes the REST form instead (<User>, <Dialogs>,
// <ApiErrors><ApiError><ErrorType>).
func EncodeData(o Object) ([]byte, error) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	var err error
	switch v := o.(type) {
	case nil:
		return nil, fmt.Errorf("%w: nil object", ErrMalformedData)
	case *Raw:
		if v == nil {
			return nil, fmt.Errorf("%w: nil *Raw", ErrMalformedData)
		}
		return []byte(v.XML), nil
	case *APIErrors:
		if v == nil {
			return nil, fmt.Errorf("%w: nil *APIErrors", ErrMalformedData)
		}
		err = enc.Encode(v.dataForm())
	case *User, *Dialog, *Dialogs, *Team, *Queue, *Queues, *SystemInfo, *ReasonCode, *ReasonCodes, *Media, *MediaList:
		k := o.Kind()
		name := string(k[0]|0x20) + k[1:]
		err = enc.EncodeElement(o, xml.StartElement{Name: xml.Name{Local: name}})
	default:
		return nil, fmt.Errorf("%w: %T is not an object of this package", ErrMalformedData, o)
	}
	if err == nil {
		err = enc.Close()
	}
	if err == nil && buf.Len() == 0 {
		err = errors.New("nil object")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: encode %s: %w", ErrMalformedData, o.Kind(), err)
	}
	return buf.Bytes(), nil
}

// unmarshalTree is the shared body of the UnmarshalXML methods.
func unmarshalTree(d *xml.Decoder, start xml.StartElement, decode func(*elem) error) error {
	root, err := decodeTree(d, start)
	if err != nil {
		return err
	}
	return wrapData(decode(root))
}

// wrapData makes sure a decode error wraps ErrMalformedData.
func wrapData(err error) error {
	if err == nil || errors.Is(err, ErrMalformedData) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrMalformedData, err)
}

func marshalJSON(v any) ([]byte, error) { return json.Marshal(v) }
