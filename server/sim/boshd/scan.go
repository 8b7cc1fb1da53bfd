package boshd

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// The stream scanner splits the XMPP byte stream written by the XMPP server
// into stream-level items (stream header, stanzas, whitespace, stream end). It
// does not validate the XML of a stanza (the writer is the local XMPP server);
// it only finds where each top-level element ends, so that whole elements can
// be placed into <body/> payloads. It is a copy of xmpp/bosh/scan.go: the
// import rules forbid the simulator to import the client package (and the
// other way round), so fixes must be made in both files.

// itemKind is the kind of a stream-level item found by scanItem.
type itemKind int

const (
	itemNeedMore    itemKind = iota // b holds only the beginning of an item
	itemSpace                       // whitespace between elements (keepalive)
	itemProcInst                    // <?xml …?> declaration or another processing instruction
	itemComment                     // <!-- … -->
	itemStreamStart                 // <stream:stream …> (no end tag follows)
	itemStreamEnd                   // </stream:stream>
	itemElement                     // one complete top-level element
)

// maxElementDepth bounds the nesting of a scanned element.
const maxElementDepth = 256

// scanItem reports the kind and length of the first complete stream-level
// item in b. It returns itemNeedMore when b ends inside an item; the caller
// appends more bytes and scans again from the start of the item.
func scanItem(b []byte) (itemKind, int, error) {
	if len(b) == 0 {
		return itemNeedMore, 0, nil
	}
	if isSpace(b[0]) {
		n := 1
		for n < len(b) && isSpace(b[n]) {
			n++
		}
		return itemSpace, n, nil
	}
	if b[0] != '<' {
		return 0, 0, fmt.Errorf("%w: character data at stream level", errProtocol)
	}
	if len(b) < 2 {
		return itemNeedMore, 0, nil
	}
	switch b[1] {
	case '?':
		i := bytes.Index(b[2:], []byte("?>"))
		if i < 0 {
			return itemNeedMore, 0, nil
		}
		return itemProcInst, i + 4, nil
	case '!':
		return scanBang(b, 0, itemComment, false)
	case '/':
		i := bytes.IndexByte(b, '>')
		if i < 0 {
			return itemNeedMore, 0, nil
		}
		if isStreamName(bytes.TrimSpace(b[2:i])) {
			return itemStreamEnd, i + 1, nil
		}
		return 0, 0, fmt.Errorf("%w: unexpected end tag at stream level", errProtocol)
	}
	end, selfClosing, err := scanTag(b, 0)
	if err != nil || end == 0 {
		return itemNeedMore, 0, err
	}
	if isStreamName(tagName(b)) {
		if selfClosing {
			return 0, 0, fmt.Errorf("%w: empty stream element", errProtocol)
		}
		return itemStreamStart, end, nil
	}
	if selfClosing {
		return itemElement, end, nil
	}
	depth := 1
	i := end
	for depth > 0 {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return itemNeedMore, 0, nil
		}
		i += j
		if i+1 >= len(b) {
			return itemNeedMore, 0, nil
		}
		switch b[i+1] {
		case '/':
			k := bytes.IndexByte(b[i:], '>')
			if k < 0 {
				return itemNeedMore, 0, nil
			}
			depth--
			i += k + 1
		case '?':
			k := bytes.Index(b[i+2:], []byte("?>"))
			if k < 0 {
				return itemNeedMore, 0, nil
			}
			i += k + 4
		case '!':
			kind, n, err := scanBang(b, i, itemElement, true)
			if err != nil || kind == itemNeedMore {
				return kind, 0, err
			}
			i += n
		default:
			e, sc, err := scanTag(b, i)
			if err != nil || e == 0 {
				return itemNeedMore, 0, err
			}
			if !sc {
				depth++
				if depth > maxElementDepth {
					return 0, 0, fmt.Errorf("%w: element nested deeper than %d", errProtocol, maxElementDepth)
				}
			}
			i = e
		}
	}
	return itemElement, i, nil
}

// scanBang scans a comment (or, inside an element, a CDATA section) starting
// at b[i] == '<', b[i+1] == '!'. It returns the length of the construct.
func scanBang(b []byte, i int, kind itemKind, cdataOK bool) (itemKind, int, error) {
	rest := b[i:]
	switch {
	case bytes.HasPrefix(rest, []byte("<!--")):
		k := bytes.Index(rest[4:], []byte("-->"))
		if k < 0 {
			return itemNeedMore, 0, nil
		}
		return kind, k + 7, nil
	case cdataOK && bytes.HasPrefix(rest, []byte("<![CDATA[")):
		k := bytes.Index(rest[9:], []byte("]]>"))
		if k < 0 {
			return itemNeedMore, 0, nil
		}
		return kind, k + 12, nil
	case len(rest) < 9 && (bytes.HasPrefix([]byte("<!--"), rest) || (cdataOK && bytes.HasPrefix([]byte("<![CDATA["), rest))):
		return itemNeedMore, 0, nil
	}
	return 0, 0, fmt.Errorf("%w: markup declaration in stream", errProtocol)
}

// scanTag scans the start tag that begins at b[i] == '<'. It returns the
// index just past its '>' (0 when b ends inside the tag) and whether the tag
// is self-closing.
func scanTag(b []byte, i int) (end int, selfClosing bool, err error) {
	var quote byte
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '<':
			return 0, false, fmt.Errorf("%w: '<' inside a tag", errProtocol)
		case c == '>':
			return j + 1, b[j-1] == '/', nil
		}
	}
	return 0, false, nil
}

// tagName returns the qualified name of the tag that starts at b[0] == '<'.
func tagName(b []byte) []byte {
	n := 1
	for n < len(b) && !isSpace(b[n]) && b[n] != '/' && b[n] != '>' {
		n++
	}
	return b[1:n]
}

// isStreamName reports whether a qualified tag name is prefix:stream.
func isStreamName(name []byte) bool {
	i := bytes.IndexByte(name, ':')
	return i > 0 && string(name[i+1:]) == "stream"
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// tagAttrs returns the attributes (qualified name and unescaped value) of the
// well-formed start tag at the beginning of b.
func tagAttrs(b []byte) map[string]string {
	attrs := make(map[string]string)
	i := 1 + len(tagName(b))
	for i < len(b) {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) || b[i] == '/' || b[i] == '>' {
			break
		}
		start := i
		for i < len(b) && b[i] != '=' && !isSpace(b[i]) {
			i++
		}
		name := string(b[start:i])
		for i < len(b) && b[i] != '\'' && b[i] != '"' {
			i++
		}
		if i >= len(b) {
			break
		}
		q := b[i]
		i++
		vstart := i
		for i < len(b) && b[i] != q {
			i++
		}
		if i >= len(b) {
			break
		}
		attrs[name] = unescape(b[vstart:i])
		i++
	}
	return attrs
}

// unescape resolves the predefined entities and character references of an
// attribute value; it falls back to the raw text when the value is not valid.
func unescape(v []byte) string {
	if bytes.IndexByte(v, '&') < 0 {
		return string(v)
	}
	var s string
	if err := xml.Unmarshal(append(append([]byte("<v>"), v...), "</v>"...), &s); err != nil {
		return string(v)
	}
	return s
}

// withNamespaces returns elem, a complete element whose start tag is at its
// beginning, with namespace declarations added to that start tag so the
// element keeps its meaning when moved into another document: defaultNS
// becomes its default namespace if it declares none, and each prefix of
// prefixes that the element appears to use but does not declare is declared.
func withNamespaces(elem []byte, defaultNS string, prefixes map[string]string) []byte {
	end, _, err := scanTag(elem, 0)
	if err != nil || end == 0 {
		return elem
	}
	attrs := tagAttrs(elem[:end])
	var add strings.Builder
	if _, ok := attrs["xmlns"]; !ok && defaultNS != "" {
		add.WriteString(" xmlns='")
		add.WriteString(escapeAttr(defaultNS))
		add.WriteByte('\'')
	}
	for p, uri := range prefixes {
		if _, ok := attrs["xmlns:"+p]; ok {
			continue
		}
		if !bytes.Contains(elem, []byte(p+":")) {
			continue
		}
		add.WriteString(" xmlns:")
		add.WriteString(p)
		add.WriteString("='")
		add.WriteString(escapeAttr(uri))
		add.WriteByte('\'')
	}
	if add.Len() == 0 {
		return elem
	}
	at := 1 + len(tagName(elem))
	out := make([]byte, 0, len(elem)+add.Len())
	out = append(out, elem[:at]...)
	out = append(out, add.String()...)
	return append(out, elem[at:]...)
}

// escapeAttr escapes s for use inside a quoted attribute value.
func escapeAttr(s string) string {
	if !strings.ContainsAny(s, "&<>'\"\t\r\n") {
		return s
	}
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// streamHeader is what the scanner learned from a <stream:stream> start tag.
type streamHeader struct {
	to, from, id, version, lang string
	defaultNS                   string
	prefixes                    map[string]string // declared prefixes other than xml
}

// parseStreamHeader parses a <stream:stream …> start tag.
func parseStreamHeader(tag []byte) (streamHeader, error) {
	attrs := tagAttrs(tag)
	name := string(tagName(tag))
	prefix := name[:strings.IndexByte(name, ':')]
	if attrs["xmlns:"+prefix] != nsStream {
		return streamHeader{}, fmt.Errorf("%w: stream element not in namespace %s", errProtocol, nsStream)
	}
	h := streamHeader{
		to: attrs["to"], from: attrs["from"], id: attrs["id"], version: attrs["version"],
		lang: attrs["xml:lang"], defaultNS: attrs["xmlns"], prefixes: make(map[string]string),
	}
	for k, v := range attrs {
		if p, ok := strings.CutPrefix(k, "xmlns:"); ok {
			h.prefixes[p] = v
		}
	}
	return h, nil
}
