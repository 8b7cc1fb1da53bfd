package finesse

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Event says what happened to the object a notification describes.
type Event string

// The three events Finesse sends. Finesse documentation shows both upper and
// lower case; ParseUpdate normalises to these upper-case values.
const (
	EventPut    Event = "PUT"    // the object changed
	EventPost   Event = "POST"   // a member was added to a collection
	EventDelete Event = "DELETE" // a member was removed from a collection
)

// MaxUpdateSize is the largest <Update> document ParseUpdate accepts.
const MaxUpdateSize = 1 << 20

// ErrMalformedUpdate is returned (wrapped) for a payload that is not a
// Finesse <Update> document.
var ErrMalformedUpdate = errors.New("finesse: malformed Update")

// Update is one Finesse notification: the decoded <Update> envelope.
type Update struct {
	// Node is the pubsub node the notification arrived on, e.g.
	// /finesse/api/User/1001/Dialogs. It is set by the transport, not by the
	// envelope.
	Node string
	// Event is PUT, POST or DELETE (always upper case).
	Event Event
	// Source is the URI of the object that changed (<source>).
	Source string
	// RequestID is the requestId header of the REST request that caused the
	// notification, empty when unsolicited.
	RequestID string
	// Data is the XML of the single object element inside <data> (for
	// example "<user>...</user>" or "<apiErrors>...</apiErrors>"), empty when
	// the notification carries no data.
	Data []byte
}

// ParseUpdate decodes an <Update> document (already unescaped). Element names
// are matched case-insensitively and the order of children is free.
func ParseUpdate(node string, doc []byte) (Update, error) {
	if len(doc) > MaxUpdateSize {
		return Update{}, fmt.Errorf("%w: %d bytes exceeds the %d byte limit", ErrMalformedUpdate, len(doc), MaxUpdateSize)
	}
	u := Update{Node: node}
	dec := xml.NewDecoder(bytes.NewReader(doc))
	start, err := firstStart(dec)
	if err != nil {
		return Update{}, fmt.Errorf("%w: %w", ErrMalformedUpdate, err)
	}
	if !strings.EqualFold(start.Name.Local, "Update") {
		return Update{}, fmt.Errorf("%w: root element <%s>, want <Update>", ErrMalformedUpdate, start.Name.Local)
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return Update{}, fmt.Errorf("%w: %w", ErrMalformedUpdate, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return u, nil
		case xml.StartElement:
			if strings.EqualFold(t.Name.Local, "data") {
				off := dec.InputOffset()
				if err := dec.Skip(); err != nil {
					return Update{}, fmt.Errorf("%w: <data>: %w", ErrMalformedUpdate, err)
				}
				inner := doc[off:dec.InputOffset()]
				// Strip the closing </data> tag.
				if i := bytes.LastIndexByte(inner, '<'); i >= 0 {
					inner = inner[:i]
				}
				u.Data = bytes.TrimSpace(inner)
				continue
			}
			var text string
			if err := dec.DecodeElement(&text, &t); err != nil {
				return Update{}, fmt.Errorf("%w: <%s>: %w", ErrMalformedUpdate, t.Name.Local, err)
			}
			text = strings.TrimSpace(text)
			switch strings.ToLower(t.Name.Local) {
			case "event":
				u.Event = Event(strings.ToUpper(text))
			case "source":
				u.Source = text
			case "requestid":
				u.RequestID = text
			}
		}
	}
}

func firstStart(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return xml.StartElement{}, io.ErrUnexpectedEOF
		}
		if err != nil {
			return xml.StartElement{}, err
		}
		if s, ok := tok.(xml.StartElement); ok {
			return s, nil
		}
	}
}
