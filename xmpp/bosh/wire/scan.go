package wire

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// ItemKind is the kind of a stream-level item found by ScanItem.
type ItemKind int

// Kinds of stream-level items.
const (
	ItemNeedMore    ItemKind = iota // the input holds only the beginning of an item
	ItemSpace                       // whitespace between elements (keepalive)
	ItemProcInst                    // <?xml …?> declaration or another processing instruction
	ItemComment                     // <!-- … -->
	ItemStreamStart                 // <stream:stream …> (no end tag follows)
	ItemStreamEnd                   // </stream:stream>
	ItemElement                     // one complete top-level element
)

var itemNames = [...]string{"need-more", "space", "proc-inst", "comment", "stream-start", "stream-end", "element"}

// String returns a short name of k, for messages and test output.
func (k ItemKind) String() string {
	if k >= 0 && int(k) < len(itemNames) {
		return itemNames[k]
	}
	return fmt.Sprintf("ItemKind(%d)", int(k))
}

// MaxDepth bounds the nesting of an element, in ScanItem and in ParseBody.
const MaxDepth = 256

// ScanItem reports the kind and length of the first complete stream-level
// item in b. It returns ItemNeedMore (and length 0) when b ends inside an
// item; the caller appends more bytes and scans again from the start of the
// item. The length of any other item is at least 1. Character data at stream
// level, a stray end tag, a DTD, a self-closing <stream:stream/>, '<' inside a
// tag and elements nested deeper than MaxDepth are errors wrapping
// ErrMalformed; the stream cannot be resumed after one. The XML inside an
// element is not validated (the writer is a local encoder): ScanItem only
// finds where the element ends.
func ScanItem(b []byte) (ItemKind, int, error) {
	if len(b) == 0 {
		return ItemNeedMore, 0, nil
	}
	if isSpace(b[0]) {
		n := 1
		for n < len(b) && isSpace(b[n]) {
			n++
		}
		return ItemSpace, n, nil
	}
	if b[0] != '<' {
		return 0, 0, fmt.Errorf("%w: character data at stream level", ErrMalformed)
	}
	if len(b) < 2 {
		return ItemNeedMore, 0, nil
	}
	switch b[1] {
	case '?':
		i := bytes.Index(b[2:], []byte("?>"))
		if i < 0 {
			return ItemNeedMore, 0, nil
		}
		return ItemProcInst, i + 4, nil
	case '!':
		return scanBang(b, 0, ItemComment, false)
	case '/':
		i := bytes.IndexByte(b, '>')
		if i < 0 {
			return ItemNeedMore, 0, nil
		}
		if isStreamName(bytes.TrimSpace(b[2:i])) {
			return ItemStreamEnd, i + 1, nil
		}
		return 0, 0, fmt.Errorf("%w: unexpected end tag at stream level", ErrMalformed)
	}
	end, selfClosing, err := scanTag(b, 0)
	if err != nil || end == 0 {
		return ItemNeedMore, 0, err
	}
	if isStreamName(TagName(b)) {
		if selfClosing {
			return 0, 0, fmt.Errorf("%w: empty stream element", ErrMalformed)
		}
		return ItemStreamStart, end, nil
	}
	if selfClosing {
		return ItemElement, end, nil
	}
	depth := 1
	i := end
	for depth > 0 {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return ItemNeedMore, 0, nil
		}
		i += j
		if i+1 >= len(b) {
			return ItemNeedMore, 0, nil
		}
		switch b[i+1] {
		case '/':
			k := bytes.IndexByte(b[i:], '>')
			if k < 0 {
				return ItemNeedMore, 0, nil
			}
			depth--
			i += k + 1
		case '?':
			k := bytes.Index(b[i+2:], []byte("?>"))
			if k < 0 {
				return ItemNeedMore, 0, nil
			}
			i += k + 4
		case '!':
			kind, n, err := scanBang(b, i, ItemElement, true)
			if err != nil || kind == ItemNeedMore {
				return kind, 0, err
			}
			i += n
		default:
			e, sc, err := scanTag(b, i)
			if err != nil || e == 0 {
				return ItemNeedMore, 0, err
			}
			if !sc {
				depth++
				if depth > MaxDepth {
					return 0, 0, fmt.Errorf("%w: element nested deeper than %d", ErrMalformed, MaxDepth)
				}
			}
			i = e
		}
	}
	return ItemElement, i, nil
}

// scanBang scans a comment (or, inside an element, a CDATA section) starting
// at b[i] == '<', b[i+1] == '!'. It returns the length of the construct.
func scanBang(b []byte, i int, kind ItemKind, cdataOK bool) (ItemKind, int, error) {
	rest := b[i:]
	switch {
	case bytes.HasPrefix(rest, []byte("<!--")):
		k := bytes.Index(rest[4:], []byte("-->"))
		if k < 0 {
			return ItemNeedMore, 0, nil
		}
		return kind, k + 7, nil
	case cdataOK && bytes.HasPrefix(rest, []byte("<![CDATA[")):
		k := bytes.Index(rest[9:], []byte("]]>"))
		if k < 0 {
			return ItemNeedMore, 0, nil
		}
		return kind, k + 12, nil
	case len(rest) < 9 && (bytes.HasPrefix([]byte("<!--"), rest) || (cdataOK && bytes.HasPrefix([]byte("<![CDATA["), rest))):
		return ItemNeedMore, 0, nil
	}
	return 0, 0, fmt.Errorf("%w: markup declaration in stream", ErrMalformed)
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
			return 0, false, fmt.Errorf("%w: '<' inside a tag", ErrMalformed)
		case c == '>':
			return j + 1, b[j-1] == '/', nil
		}
	}
	return 0, false, nil
}

// TagName returns the qualified name (prefix:local or local) of the tag that
// starts at b[0] == '<', such as an element returned by ScanItem. The result
// aliases b.
func TagName(b []byte) []byte {
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
	i := 1 + len(TagName(b))
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

// WithNamespaces returns elem, a complete element whose start tag is at its
// beginning, with namespace declarations added to that start tag so the
// element keeps its meaning when moved into another document: defaultNS
// becomes its default namespace if it declares none, and each prefix of
// prefixes that the element appears to use but does not declare is declared.
// When nothing is added, or elem does not start with a complete tag, elem
// itself is returned; otherwise the result is a new slice.
func WithNamespaces(elem []byte, defaultNS string, prefixes map[string]string) []byte {
	end, _, err := scanTag(elem, 0)
	if err != nil || end == 0 {
		return elem
	}
	attrs := tagAttrs(elem[:end])
	var add strings.Builder
	if _, ok := attrs["xmlns"]; !ok && defaultNS != "" {
		add.WriteString(" xmlns='")
		add.WriteString(EscapeAttr(defaultNS))
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
		add.WriteString(EscapeAttr(uri))
		add.WriteByte('\'')
	}
	if add.Len() == 0 {
		return elem
	}
	at := 1 + len(TagName(elem))
	out := make([]byte, 0, len(elem)+add.Len())
	out = append(out, elem[:at]...)
	out = append(out, add.String()...)
	return append(out, elem[at:]...)
}

// EscapeAttr escapes s for use inside an attribute value quoted with ' or ".
func EscapeAttr(s string) string {
	if !strings.ContainsAny(s, "&<>'\"\t\r\n") {
		return s
	}
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// StreamHeader is what a <stream:stream> start tag says.
type StreamHeader struct {
	To, From, ID, Version, Lang string
	// DefaultNS is the default namespace (xmlns), usually jabber:client.
	DefaultNS string
	// Prefixes maps each prefix declared on the tag (xmlns:p, such as
	// stream) to its namespace.
	Prefixes map[string]string
}

// ParseStreamHeader parses a <stream:stream …> start tag, as returned by
// ScanItem with ItemStreamStart. A tag whose prefix is not bound to NSStream
// is an error wrapping ErrMalformed.
func ParseStreamHeader(tag []byte) (StreamHeader, error) {
	attrs := tagAttrs(tag)
	name := string(TagName(tag))
	colon := strings.IndexByte(name, ':')
	if colon <= 0 || attrs["xmlns:"+name[:colon]] != NSStream {
		return StreamHeader{}, fmt.Errorf("%w: stream element not in namespace %s", ErrMalformed, NSStream)
	}
	h := StreamHeader{
		To: attrs["to"], From: attrs["from"], ID: attrs["id"], Version: attrs["version"],
		Lang: attrs["xml:lang"], DefaultNS: attrs["xmlns"], Prefixes: make(map[string]string),
	}
	for k, v := range attrs {
		if p, ok := strings.CutPrefix(k, "xmlns:"); ok {
			h.Prefixes[p] = v
		}
	}
	return h, nil
}
