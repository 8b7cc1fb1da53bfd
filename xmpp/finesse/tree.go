package finesse

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// elem is one element of a parsed object document. Elements are matched by
// key, the ASCII lower-cased local name, so <User> and <user> are the same.
// Namespaces and attributes are ignored: Finesse uses neither in payloads.
type elem struct {
	name  string // local name as sent
	key   string // name, ASCII lower-cased
	text  string // character data, kept only when the element has no child elements
	child *elem  // first child element
	last  *elem  // last child element
	next  *elem  // next sibling
}

// find returns the first child whose key is key, or nil.
func (e *elem) find(key string) *elem {
	for c := e.child; c != nil; c = c.next {
		if c.key == key {
			return c
		}
	}
	return nil
}

// treeBuilder parses elements into a slab of elems (one allocation per
// chunk, not per element) while enforcing MaxDepth and MaxElements.
type treeBuilder struct {
	slab  []elem
	count int
	text  []byte // character data of the innermost open element
}

func (b *treeBuilder) alloc(name string) (*elem, error) {
	b.count++
	if b.count > MaxElements {
		return nil, fmt.Errorf("%w: more than %d elements", ErrLimit, MaxElements)
	}
	if len(b.slab) == cap(b.slab) {
		n := 2 * cap(b.slab)
		n = min(max(n, 16), 1024)
		b.slab = make([]elem, 0, n)
	}
	b.slab = b.slab[:len(b.slab)+1]
	e := &b.slab[len(b.slab)-1]
	e.name = name
	e.key = lowerASCII(name)
	return e, nil
}

// element reads the content of start (already consumed from d) up to its
// end tag and returns it as a tree. depth is start's nesting depth.
func (b *treeBuilder) element(d *xml.Decoder, start xml.StartElement, depth int) (*elem, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%w: elements nested deeper than %d", ErrLimit, MaxDepth)
	}
	root, err := b.alloc(start.Name.Local)
	if err != nil {
		return nil, err
	}
	stack := make([]*elem, 1, 16)
	stack[0] = root
	b.text = b.text[:0]
	for len(stack) > 0 {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			if depth+len(stack) > MaxDepth {
				return nil, fmt.Errorf("%w: elements nested deeper than %d", ErrLimit, MaxDepth)
			}
			e, err := b.alloc(t.Name.Local)
			if err != nil {
				return nil, err
			}
			if top.last == nil {
				top.child = e
			} else {
				top.last.next = e
			}
			top.last = e
			stack = append(stack, e)
			b.text = b.text[:0]
		case xml.CharData:
			if top.child == nil {
				b.text = append(b.text, t...)
			}
		case xml.EndElement:
			if top.child == nil && len(b.text) > 0 {
				top.text = string(b.text)
			}
			b.text = b.text[:0]
			stack = stack[:len(stack)-1]
		}
	}
	return root, nil
}

// parseTree parses a whole object document: an optional prolog, one root
// element, and nothing but whitespace, comments and processing
// instructions after it. raw is the root element's bytes in data.
func parseTree(data []byte) (root *elem, raw []byte, err error) {
	if len(data) > MaxUpdateSize {
		return nil, nil, fmt.Errorf("%w: %w: %d bytes exceeds the %d byte limit", ErrMalformedData, ErrLimit, len(data), MaxUpdateSize)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	start, off, err := firstStart(d)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformedData, err)
	}
	var b treeBuilder
	root, err = b.element(d, start, 1)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: <%s>: %w", ErrMalformedData, start.Name.Local, err)
	}
	raw = data[off:d.InputOffset()]
	if err := expectEOF(d); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformedData, err)
	}
	return root, raw, nil
}

// decodeTree is the UnmarshalXML side of parseTree: it reads start's
// element from d, which may be positioned anywhere in a larger document.
func decodeTree(d *xml.Decoder, start xml.StartElement) (*elem, error) {
	var b treeBuilder
	root, err := b.element(d, start, 1)
	if err != nil {
		return nil, fmt.Errorf("%w: <%s>: %w", ErrMalformedData, start.Name.Local, err)
	}
	return root, nil
}

// firstStart returns the first start element and its offset, skipping the
// prolog. Text before the root element is an error.
func firstStart(d *xml.Decoder) (xml.StartElement, int64, error) {
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			return xml.StartElement{}, 0, fmt.Errorf("no root element: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return xml.StartElement{}, 0, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, off, nil
		case xml.CharData:
			if !isSpace(t) {
				return xml.StartElement{}, 0, fmt.Errorf("text %s before the root element", quoteSnippet(t))
			}
		}
	}
}

// expectEOF reads the rest of a document after its root element: only
// whitespace, comments and processing instructions may follow.
func expectEOF(d *xml.Decoder) error {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return fmt.Errorf("second root element <%s>", t.Name.Local)
		case xml.CharData:
			if !isSpace(t) {
				return fmt.Errorf("text %s after the root element", quoteSnippet(t))
			}
		}
	}
}

func isSpace(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}

// quoteSnippet quotes at most 64 bytes of b for an error message.
func quoteSnippet(b []byte) string {
	if len(b) > 64 {
		return strconv.Quote(string(b[:64])) + "..."
	}
	return strconv.Quote(string(b))
}

// lowerASCII lower-cases the ASCII letters of s, without allocating when s
// has none.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// Value conversions used by the typed decoders. Strings are kept exactly as
// sent; numbers and booleans tolerate surrounding whitespace, and an empty
// element is the zero value.

func parseInt(e *elem) (int, error) {
	s := strings.TrimSpace(e.text)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: <%s> %s is not an integer", ErrMalformedData, e.name, quoteSnippet([]byte(s)))
	}
	return n, nil
}

func parseBool(e *elem) (bool, error) {
	s := strings.TrimSpace(e.text)
	switch {
	case s == "", strings.EqualFold(s, "false"):
		return false, nil
	case strings.EqualFold(s, "true"):
		return true, nil
	}
	return false, fmt.Errorf("%w: <%s> %s is not true or false", ErrMalformedData, e.name, quoteSnippet([]byte(s)))
}

// texts returns the text of every child of e (a list such as <roles><role>).
func texts(e *elem) []string {
	var out []string
	for c := e.child; c != nil; c = c.next {
		out = append(out, c.text)
	}
	return out
}

// rawOf keeps an element this package has no field for, the rule for every
// typed object (see Extra in the package documentation): the element is
// written again from the tree, as <name>text</name> or
// <name><child>…</child></name>, with its text escaped once. Attributes,
// namespaces, comments and text beside child elements are not kept
// (Finesse payloads use none of them), so the XML is canonical: decoding
// it and keeping it again gives the same string.
func rawOf(e *elem) Raw {
	var b strings.Builder
	writeElem(&b, e)
	return Raw{Element: e.name, XML: b.String()}
}

func writeElem(b *strings.Builder, e *elem) {
	b.WriteByte('<')
	b.WriteString(e.name)
	b.WriteByte('>')
	if e.child == nil {
		_ = xml.EscapeText(b, []byte(e.text)) // a strings.Builder never fails
	}
	for c := e.child; c != nil; c = c.next {
		writeElem(b, c)
	}
	b.WriteString("</")
	b.WriteString(e.name)
	b.WriteByte('>')
}
