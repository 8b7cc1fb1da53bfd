package xmpp

import (
	"encoding/xml"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// scanItems feeds in to a scanner and returns the top-level items it
// reported, cut at the bytes that completed them.
func scanItems(t *testing.T, in string, maxSize int64, maxDepth int) (items []string, sc *xmlScanner, err error) {
	t.Helper()
	sc = &xmlScanner{maxSize: maxSize, maxDepth: maxDepth}
	last := 0
	for i := range len(in) {
		done, err := sc.step(in[i])
		if err != nil {
			return items, sc, err
		}
		if done {
			items = append(items, strings.TrimSpace(in[last:i+1]))
			last = i + 1
		}
	}
	return items, sc, nil
}

func TestScannerBoundaries(t *testing.T) {
	tests := []struct {
		name  string
		items []string // concatenated (with optional whitespace) they are the input
	}{
		{"tcp stream", []string{
			`<?xml version='1.0'?>`,
			`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`,
			`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`,
			`<message to='x'><body>a &lt; b &amp; c</body></message>`,
			`<iq type='result' id='1'/>`,
			`</stream:stream>`,
		}},
		{"restart without close", []string{
			`<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>`,
			`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`,
			`<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>`,
			`<iq type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>a@b/c</jid></bind></iq>`,
		}},
		{"quotes, CDATA, comments", []string{
			`<stream:stream>`,
			`<message a='>' b="/>" c='"'><x/></message>`,
			`<message><![CDATA[</message><x>]]]]></message>`,
			`<message><!-- </message> - -- > --><y></y></message>`,
			`<!-- top-level comment -->`,
			`<message><?pi </message> ?></message>`,
		}},
		{"websocket framing", []string{
			`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='finesse.test' version='1.0'/>`,
			`<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`,
			`<message><event><items node='/a'/></event></message>`,
			`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`,
		}},
		{"element named stream inside a stanza", []string{
			`<stream:stream>`,
			`<message><stream>x</stream><a:stream/></message>`,
			`</stream:stream>`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Join(tt.items, "\n  ")
			got, _, err := scanItems(t, in, 1<<20, 16)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tt.items, "|") {
				t.Errorf("items:\n got  %q\n want %q", got, tt.items)
			}
		})
	}
}

func TestScannerStreamError(t *testing.T) {
	in := `<stream:stream><message/><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text>Replaced</text></stream:error></stream:stream>`
	_, sc, err := scanItems(t, in, 1<<20, 16)
	if err != nil {
		t.Fatal(err)
	}
	if sc.streamErr != "conflict" {
		t.Errorf("streamErr = %q, want conflict", sc.streamErr)
	}
	_, sc, _ = scanItems(t, `<stream:stream><message><stream:error><conflict/></stream:error></message>`, 1<<20, 16)
	if sc.streamErr != "" {
		t.Errorf("an error element inside a stanza was taken for a stream error: %q", sc.streamErr)
	}
}

func TestScannerLimits(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		maxSize  int64
		maxDepth int
		wantErr  bool
	}{
		{"stanza at the size limit", `<s:stream><m>` + strings.Repeat("x", 93) + `</m>`, 100, 8, false},
		{"stanza over the size limit", `<s:stream><m>` + strings.Repeat("x", 94) + `</m>`, 100, 8, true},
		{"many small stanzas", `<s:stream>` + strings.Repeat(`<m>`+strings.Repeat("x", 80)+`</m>`, 1000), 100, 8, false},
		{"whitespace run", `<s:stream>` + strings.Repeat(" ", 101), 100, 8, true},
		{"unterminated attribute", `<s:stream><m a='` + strings.Repeat("x", 200), 100, 8, true},
		{"unterminated comment", `<s:stream><!--` + strings.Repeat("x", 200), 100, 8, true},
		{"depth at the limit", `<s:stream>` + strings.Repeat("<a>", 8) + strings.Repeat("</a>", 8), 1000, 8, false},
		{"depth over the limit", `<s:stream>` + strings.Repeat("<a>", 9), 1000, 8, true},
		{"self-closing does not nest", `<s:stream>` + strings.Repeat("<a>", 7) + strings.Repeat("<b/>", 50), 1000, 8, false},
		{"websocket depth", strings.Repeat("<a>", 9), 1000, 8, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := scanItems(t, tt.in, tt.maxSize, tt.maxDepth)
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrLimit) {
				t.Errorf("err = %v, want ErrLimit", err)
			}
		})
	}
}

func TestLimitConnSticky(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	ls := &linkState{}
	lc := newLimitConn(c1, 64, 8, ls)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.WriteString(c2, `<s:stream><m>`+strings.Repeat("x", 100)+`</m>`)
	}()
	defer func() { c2.Close(); <-done }()
	buf := make([]byte, 16)
	var err error
	for err == nil {
		_, err = lc.Read(buf)
	}
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("Read = %v, want ErrLimit", err)
	}
	if _, err2 := lc.Read(buf); !errors.Is(err2, ErrLimit) {
		t.Errorf("second Read = %v, want the same ErrLimit", err2)
	}
	if _, got := ls.get(); !errors.Is(got, ErrLimit) {
		t.Errorf("linkState limit = %v, want ErrLimit", got)
	}
}

// FuzzScanner checks the scanner against encoding/xml: for any fragment
// that the standard decoder accepts as the content of a stream, the
// scanner reports one completed item per top-level element, comment and
// processing instruction (plus the stream header and end tag), and never
// errors with generous limits.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{
		`<message a='>'><body>x</body></message>`,
		`<a><![CDATA[<b>]]></a><!-- c --><?p q?>`,
		`<iq/> <presence type="unavailable"/>`,
		stanzaEscaped, stanzaInline, stanzaTwoItems,
		`<a b="&lt;/a&gt;"></a>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frag string) {
		doc := `<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>` + frag + `</stream:stream>`
		want, ok := topLevelItems(doc)
		sc := xmlScanner{maxSize: 1 << 30, maxDepth: 1 << 20}
		got := 0
		for i := range len(doc) {
			done, err := sc.step(doc[i])
			if err != nil {
				if ok {
					t.Fatalf("scanner error %v on a document encoding/xml accepts", err)
				}
				return
			}
			if done {
				got++
			}
		}
		if ok && got != want {
			t.Fatalf("scanner saw %d top-level items, encoding/xml %d, in %q", got, want, doc)
		}
	})
}

// topLevelItems counts what the scanner should report for doc, using
// encoding/xml; ok is false when the document is not one the comparison
// applies to (not well-formed, a directive, a child named "stream").
func topLevelItems(doc string) (n int, ok bool) {
	d := xml.NewDecoder(strings.NewReader(doc))
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return n, depth == 0
		}
		if err != nil {
			return 0, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 1 {
				if t.Name.Local == "stream" {
					return 0, false
				}
				n++
			}
			if depth == 0 {
				n++ // the stream header
			}
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				n++ // the stream end tag
			}
		case xml.Comment, xml.ProcInst:
			if depth <= 1 {
				n++
			}
		case xml.Directive:
			return 0, false
		}
	}
}
