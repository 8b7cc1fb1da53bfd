package bosh

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Namespaces of XEP-0124, XEP-0206 and RFC 6120.
const (
	nsHTTPBind = "http://jabber.org/protocol/httpbind"
	nsXBOSH    = "urn:xmpp:xbosh"
	nsStream   = "http://etherx.jabber.org/streams"
	nsClient   = "jabber:client"
)

// maxBodyDepth bounds the element nesting accepted in a response body.
const maxBodyDepth = 256

// Body is one parsed XEP-0124 <body/> wrapper element.
//
// Only the attributes this package uses are kept. Durations are given in
// seconds on the wire; a missing attribute leaves the zero value.
type Body struct {
	SID       string // sid: the session id (session creation response)
	RID       uint64 // rid: request id (requests only)
	Type      string // type: "terminate", "error" or empty
	Condition string // condition: the terminal binding condition, if any
	From      string // from: the domain that answers
	AuthID    string // authid: the XMPP stream id (XEP-0206)
	Ver       string // ver: highest BOSH version the sender supports
	Restart   bool   // xmpp:restart='true' (XEP-0206 restart request)

	Wait       time.Duration // wait: longest time the server holds a request
	Inactivity time.Duration // inactivity: longest time with no request in flight
	Polling    time.Duration // polling: shortest allowed interval between empty polls
	MaxPause   time.Duration // maxpause: longest pause the client may request
	Hold       int           // hold: requests the server may keep waiting
	Requests   int           // requests: requests the client may have in flight

	// Payload holds each child element of the body, serialized so that it can
	// stand on its own inside an XMPP stream: namespace prefixes declared on
	// the body and used by a child are declared on the child.
	Payload [][]byte
}

// ParseBody parses data, which must hold exactly one <body/> element in the
// http://jabber.org/protocol/httpbind namespace (an XML declaration and
// surrounding whitespace are allowed). Errors wrap ErrProtocol.
//
// ParseBody does not limit the size of data; callers do (Config.MaxBodySize).
// Element nesting is limited to 256 levels, DTDs and entity declarations are
// refused.
func ParseBody(data []byte) (*Body, error) {
	b, err := parseBody(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return b, nil
}

func parseBody(data []byte) (*Body, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var (
		body       *Body
		prefixes   map[string]string
		depth      int
		childStart int64
		ended      bool
	)
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if ended {
				return nil, errors.New("content after </body>")
			}
			depth++
			if depth > maxBodyDepth {
				return nil, fmt.Errorf("elements nested deeper than %d", maxBodyDepth)
			}
			switch depth {
			case 1:
				if t.Name.Space != nsHTTPBind || t.Name.Local != "body" {
					return nil, fmt.Errorf("root element is {%s}%s, want {%s}body", t.Name.Space, t.Name.Local, nsHTTPBind)
				}
				body, prefixes, err = bodyAttrs(t)
				if err != nil {
					return nil, err
				}
			case 2:
				childStart = off
			}
		case xml.EndElement:
			depth--
			switch depth {
			case 0:
				ended = true
			case 1:
				raw := data[childStart:d.InputOffset()]
				body.Payload = append(body.Payload, withNamespaces(raw, "", prefixes))
			}
		case xml.CharData:
			if depth <= 1 && len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("character data outside of a payload element")
			}
		case xml.Directive:
			return nil, errors.New("markup declarations are not allowed")
		case xml.ProcInst:
			if depth > 0 || t.Target != "xml" {
				return nil, errors.New("processing instruction inside the body")
			}
		}
	}
	if !ended {
		return nil, errors.New("no complete <body/> element")
	}
	return body, nil
}

// bodyAttrs reads the attributes of a <body/> start element and the
// namespace prefixes it declares.
func bodyAttrs(start xml.StartElement) (*Body, map[string]string, error) {
	b := &Body{}
	prefixes := make(map[string]string)
	for _, a := range start.Attr {
		var err error
		switch {
		case a.Name.Space == "xmlns":
			prefixes[a.Name.Local] = a.Value
		case a.Name.Space == nsXBOSH && a.Name.Local == "restart":
			b.Restart = a.Value == "true" || a.Value == "1"
		case a.Name.Space != "":
			// xml:lang, xmpp:version, xmpp:restartlogic, …: not needed.
		default:
			switch a.Name.Local {
			case "sid":
				b.SID = a.Value
			case "rid":
				b.RID, err = strconv.ParseUint(a.Value, 10, 64)
			case "type":
				b.Type = a.Value
			case "condition":
				b.Condition = a.Value
			case "from":
				b.From = a.Value
			case "authid":
				b.AuthID = a.Value
			case "ver":
				b.Ver = a.Value
			case "wait":
				b.Wait, err = seconds(a.Value)
			case "inactivity":
				b.Inactivity, err = seconds(a.Value)
			case "polling":
				b.Polling, err = seconds(a.Value)
			case "maxpause":
				b.MaxPause, err = seconds(a.Value)
			case "hold":
				b.Hold, err = smallInt(a.Value)
			case "requests":
				b.Requests, err = smallInt(a.Value)
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("attribute %s: %w", a.Name.Local, err)
		}
	}
	return b, prefixes, nil
}

// maxSeconds bounds every duration attribute (one day).
const maxSeconds = 86400

func seconds(v string) (time.Duration, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, err
	}
	if n > maxSeconds {
		return 0, fmt.Errorf("%d seconds is more than %d", n, maxSeconds)
	}
	return time.Duration(n) * time.Second, nil
}

func smallInt(v string) (int, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
	return int(n), err
}

// bodyWriter builds request bodies.
type bodyWriter struct{ bytes.Buffer }

func (w *bodyWriter) attr(name, value string) {
	w.WriteByte(' ')
	w.WriteString(name)
	w.WriteString("='")
	w.WriteString(escapeAttr(value))
	w.WriteByte('\'')
}

// open writes "<body" and the attributes common to every request.
func (w *bodyWriter) open(rid uint64, sid string) {
	w.WriteString("<body")
	w.attr("rid", strconv.FormatUint(rid, 10))
	if sid != "" {
		w.attr("sid", sid)
	}
}

// close ends the body start tag, writes the payload and the end tag.
func (w *bodyWriter) close(payload [][]byte) []byte {
	w.attr("xmlns", nsHTTPBind)
	if len(payload) == 0 {
		w.WriteString("/>")
		return w.Bytes()
	}
	w.WriteByte('>')
	for _, p := range payload {
		w.Write(p)
	}
	w.WriteString("</body>")
	return w.Bytes()
}
