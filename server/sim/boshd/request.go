package boshd

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

// Limits on request attributes.
const (
	maxBodyDepth = 256
	maxRID       = 1 << 53 // XEP-0124 §7
	maxSeconds   = 86400
)

// request is a parsed client <body/>.
type request struct {
	rid      uint64
	sid      string
	to       string
	typ      string // "terminate" or empty
	lang     string
	ver      string
	hold     int // -1 when absent
	wait     time.Duration
	restart  bool     // xmpp:restart='true'
	payload  [][]byte // child elements, each standing alone
	hasHold  bool
	hasWait  bool
	hasPause bool
}

// parseRequest parses a request body: exactly one <body/> in the httpbind
// namespace with a valid rid. DTDs, processing instructions inside the body
// and text outside the payload elements are refused.
func parseRequest(data []byte) (*request, error) {
	req, err := parseRequestBody(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errProtocol, err)
	}
	return req, nil
}

func parseRequestBody(data []byte) (*request, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var (
		req        *request
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
				req, prefixes, err = requestAttrs(t)
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
				req.payload = append(req.payload, withNamespaces(raw, "", prefixes))
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
	return req, nil
}

func requestAttrs(start xml.StartElement) (*request, map[string]string, error) {
	r := &request{hold: -1}
	prefixes := make(map[string]string)
	hasRID := false
	for _, a := range start.Attr {
		var err error
		switch {
		case a.Name.Space == "xmlns":
			prefixes[a.Name.Local] = a.Value
		case a.Name.Space == nsXBOSH && a.Name.Local == "restart":
			r.restart = a.Value == "true" || a.Value == "1"
		case a.Name.Space == "http://www.w3.org/XML/1998/namespace" && a.Name.Local == "lang":
			r.lang = a.Value
		case a.Name.Space != "":
		default:
			switch a.Name.Local {
			case "rid":
				r.rid, err = strconv.ParseUint(strings.TrimSpace(a.Value), 10, 64)
				if err == nil && (r.rid == 0 || r.rid >= maxRID) {
					err = fmt.Errorf("rid %d out of range", r.rid)
				}
				hasRID = true
			case "sid":
				r.sid = a.Value
			case "to":
				r.to = a.Value
			case "type":
				r.typ = a.Value
			case "ver":
				r.ver = a.Value
			case "hold":
				var n uint64
				n, err = strconv.ParseUint(strings.TrimSpace(a.Value), 10, 8)
				r.hold, r.hasHold = int(n), true
			case "wait":
				var n uint64
				n, err = strconv.ParseUint(strings.TrimSpace(a.Value), 10, 32)
				if err == nil && n > maxSeconds {
					err = fmt.Errorf("%d seconds is more than %d", n, maxSeconds)
				}
				r.wait, r.hasWait = time.Duration(n)*time.Second, true
			case "pause":
				r.hasPause = true
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("attribute %s: %w", a.Name.Local, err)
		}
	}
	if !hasRID {
		return nil, nil, errors.New("missing rid")
	}
	return r, prefixes, nil
}

// responseBody builds a response <body/> with extra attributes (already
// formatted, each starting with a space) and the payload elements.
func responseBody(attrs string, payload [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString("<body")
	b.WriteString(attrs)
	b.WriteString(" xmlns='" + nsHTTPBind + "' xmlns:stream='" + nsStream + "'")
	if len(payload) == 0 {
		b.WriteString("/>")
		return b.Bytes()
	}
	b.WriteByte('>')
	for _, p := range payload {
		b.Write(p)
	}
	b.WriteString("</body>")
	return b.Bytes()
}

// terminateBody builds a type='terminate' response.
func terminateBody(condition string, payload [][]byte) []byte {
	attrs := " type='terminate'"
	if condition != "" {
		attrs += " condition='" + escapeAttr(condition) + "'"
	}
	return responseBody(attrs, payload)
}

// attr formats one attribute for responseBody.
func attr(name, value string) string {
	return " " + name + "='" + escapeAttr(value) + "'"
}
