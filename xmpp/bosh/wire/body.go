package wire

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

// Body is one parsed XEP-0124 <body/> wrapper element.
type Body struct {
	// Attr holds the attributes of the <body/> start tag as encoding/xml
	// resolves them: Name.Space is the namespace of a prefixed attribute
	// (NSXBOSH for xmpp:restart, "xmlns" for a prefix declaration) and empty
	// for an unprefixed one (rid, sid, wait, …); Value is unescaped.
	Attr []xml.Attr

	// Payload holds each child element of the body, serialized so that it can
	// stand on its own inside an XMPP stream: namespace prefixes declared on
	// the body and used by a child are declared on the child. A payload
	// element that needs no declaration shares memory with the parsed data.
	Payload [][]byte
}

// ParseBody parses data, which must hold exactly one <body/> element in the
// NSHTTPBind namespace (an XML declaration and surrounding whitespace are
// allowed). The attributes are not interpreted. Errors wrap ErrMalformed.
//
// ParseBody does not limit the size of data; callers do. Element nesting is
// limited to MaxDepth levels; DTDs and entity declarations, processing
// instructions inside the body and character data outside the payload
// elements are refused.
func ParseBody(data []byte) (*Body, error) {
	b, err := parseBody(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
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
			if depth > MaxDepth {
				return nil, fmt.Errorf("elements nested deeper than %d", MaxDepth)
			}
			switch depth {
			case 1:
				if t.Name.Space != NSHTTPBind || t.Name.Local != "body" {
					return nil, fmt.Errorf("root element is {%s}%s, want {%s}body", t.Name.Space, t.Name.Local, NSHTTPBind)
				}
				body = &Body{Attr: t.Copy().Attr}
				prefixes = declaredPrefixes(t.Attr)
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
				body.Payload = append(body.Payload, WithNamespaces(raw, "", prefixes))
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

// declaredPrefixes returns the namespace prefixes declared by attrs.
func declaredPrefixes(attrs []xml.Attr) map[string]string {
	prefixes := make(map[string]string)
	for _, a := range attrs {
		if a.Name.Space == "xmlns" {
			prefixes[a.Name.Local] = a.Value
		}
	}
	return prefixes
}

// IsRestart reports whether a is XEP-0206's xmpp:restart='true' (or '1'),
// whatever prefix the sender bound to NSXBOSH.
func IsRestart(a xml.Attr) bool {
	return a.Name.Space == NSXBOSH && a.Name.Local == "restart" && (a.Value == "true" || a.Value == "1")
}

// MaxSeconds bounds every duration attribute ParseSeconds accepts (one day).
const MaxSeconds = 86400

// ParseSeconds parses a duration attribute given in whole seconds (wait,
// inactivity, polling, …); surrounding spaces are allowed. Values that are
// not a non-negative integer, or are above MaxSeconds, are errors wrapping
// ErrMalformed.
func ParseSeconds(v string) (time.Duration, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if n > MaxSeconds {
		return 0, fmt.Errorf("%w: %d seconds is more than %d", ErrMalformed, n, MaxSeconds)
	}
	return time.Duration(n) * time.Second, nil
}
