package wire_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"finesse-relay/xmpp/bosh/wire"
)

type scanned struct {
	kind wire.ItemKind
	text string
}

// scanAll scans b completely; rest is what remained incomplete.
func scanAll(b []byte) (items []scanned, rest string, err error) {
	for len(b) > 0 {
		kind, n, err := wire.ScanItem(b)
		if err != nil {
			return items, string(b), err
		}
		if kind == wire.ItemNeedMore {
			return items, string(b), nil
		}
		items = append(items, scanned{kind, string(b[:n])})
		b = b[n:]
	}
	return items, "", nil
}

func TestScanItem(t *testing.T) {
	in := `<?xml version="1.0" encoding="UTF-8"?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='d'>` +
		`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">AA==</auth> ` +
		`<message a='>' b="/>"><body>x > y</body><!-- c --><![CDATA[</message>]]><?pi x?></message>` +
		"\n<presence/><!-- between --></stream:stream>"
	want := []scanned{
		{wire.ItemProcInst, `<?xml version="1.0" encoding="UTF-8"?>`},
		{wire.ItemStreamStart, `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='d'>`},
		{wire.ItemElement, `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">AA==</auth>`},
		{wire.ItemSpace, " "},
		{wire.ItemElement, `<message a='>' b="/>"><body>x > y</body><!-- c --><![CDATA[</message>]]><?pi x?></message>`},
		{wire.ItemSpace, "\n"},
		{wire.ItemElement, `<presence/>`},
		{wire.ItemComment, `<!-- between -->`},
		{wire.ItemStreamEnd, `</stream:stream>`},
	}
	got, rest, err := scanAll([]byte(in))
	if err != nil || rest != "" {
		t.Fatalf("scan: %v, rest %q", err, rest)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d items %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("item %d: got %v %q, want %v %q", i, got[i].kind, got[i].text, want[i].kind, want[i].text)
		}
	}
	// Every prefix of the input scans to a prefix of the items, with the rest
	// pending: the scanner never reports an incomplete item as complete.
	for cut := range len(in) {
		items, rest, err := scanAll([]byte(in[:cut]))
		if err != nil {
			t.Fatalf("prefix %d: %v", cut, err)
		}
		var joined strings.Builder
		for i, it := range items {
			if it.kind != wire.ItemSpace && it != want[i] {
				t.Fatalf("prefix %d: item %d is %q, want %q", cut, i, it.text, want[i].text)
			}
			joined.WriteString(it.text)
		}
		if joined.String()+rest != in[:cut] {
			t.Fatalf("prefix %d: items and rest do not add up", cut)
		}
	}
}

func TestScanItemErrors(t *testing.T) {
	tests := map[string]string{
		"character data":        "text",
		"stray end tag":         "</message>",
		"doctype":               "<!DOCTYPE x>",
		"lt inside a tag":       "<a <b>",
		"lt inside a child tag": "<a><b <c></b></a>",
		"empty stream element":  "<stream:stream/>",
		"doctype in element":    "<a><!DOCTYPE x></a>",
		"too deep":              strings.Repeat("<a>", wire.MaxDepth+1),
	}
	for name, in := range tests {
		if kind, n, err := wire.ScanItem([]byte(in)); !errors.Is(err, wire.ErrMalformed) || n != 0 {
			t.Errorf("%s: ScanItem(%.40q) = %v, %d, %v; want ErrMalformed", name, in, kind, n, err)
		}
	}
	// Exactly MaxDepth levels are fine: the scanner waits for the end tags.
	atLimit := strings.Repeat("<a>", wire.MaxDepth)
	if kind, _, err := wire.ScanItem([]byte(atLimit)); err != nil || kind != wire.ItemNeedMore {
		t.Errorf("element nested %d deep: %v, %v; want need-more", wire.MaxDepth, kind, err)
	}
}

func TestItemKindString(t *testing.T) {
	for kind, want := range map[wire.ItemKind]string{wire.ItemNeedMore: "need-more", wire.ItemElement: "element", wire.ItemKind(42): "ItemKind(42)"} {
		if got := kind.String(); got != want {
			t.Errorf("ItemKind(%d).String() = %q, want %q", int(kind), got, want)
		}
	}
}

func TestWithNamespaces(t *testing.T) {
	prefixes := map[string]string{"stream": "http://etherx.jabber.org/streams"}
	tests := []struct{ in, ns, want string }{
		{"<message to='a'/>", "jabber:client", "<message xmlns='jabber:client' to='a'/>"},
		{"<message xmlns='jabber:client'/>", "jabber:client", "<message xmlns='jabber:client'/>"},
		{"<iq><x xmlns='urn:x'/></iq>", "jabber:client", "<iq xmlns='jabber:client'><x xmlns='urn:x'/></iq>"},
		{"<stream:error><x/></stream:error>", "", "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><x/></stream:error>"},
		{"<stream:features xmlns:stream='urn:other'/>", "", "<stream:features xmlns:stream='urn:other'/>"},
		{"<presence\n/>", "a'b", "<presence xmlns='a&#39;b'\n/>"},
		{"<message", "jabber:client", "<message"}, // incomplete tag: unchanged
	}
	for _, tt := range tests {
		if got := string(wire.WithNamespaces([]byte(tt.in), tt.ns, prefixes)); got != tt.want {
			t.Errorf("WithNamespaces(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseStreamHeader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want wire.StreamHeader
	}{
		{"mellium client", `<stream:stream to='finesse.example' from='alice@finesse.example' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
			wire.StreamHeader{To: "finesse.example", From: "alice@finesse.example", Version: "1.0", Lang: "en", DefaultNS: "jabber:client",
				Prefixes: map[string]string{"stream": wire.NSStream}}},
		{"server, double quotes, escaped id", `<stream:stream from="d" id="a&amp;b" xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams">`,
			wire.StreamHeader{From: "d", ID: "a&b", DefaultNS: "jabber:client", Prefixes: map[string]string{"stream": wire.NSStream}}},
		{"other prefix", `<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>`,
			wire.StreamHeader{Prefixes: map[string]string{"s": wire.NSStream, "db": "jabber:server:dialback"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.ParseStreamHeader([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseStreamHeader: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	for _, in := range []string{
		`<stream:stream xmlns='jabber:client'>`,             // prefix not declared
		`<stream:stream xmlns:stream='urn:not-streams'>`,    // wrong namespace
		`<stream xmlns='http://etherx.jabber.org/streams'>`, // no prefix
	} {
		if _, err := wire.ParseStreamHeader([]byte(in)); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("ParseStreamHeader(%q) = %v, want ErrMalformed", in, err)
		}
	}
}

func TestTagName(t *testing.T) {
	for in, want := range map[string]string{
		"<stream:error><x/></stream:error>": "stream:error",
		"<presence/>":                       "presence",
		"<message\nto='a'>":                 "message",
		"<iq>":                              "iq",
	} {
		if got := string(wire.TagName([]byte(in))); got != want {
			t.Errorf("TagName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscapeAttr(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     "plain",
		"a'b":       "a&#39;b",
		`<&>"`:      "&lt;&amp;&gt;&#34;",
		"tab\there": "tab&#x9;here",
	} {
		if got := wire.EscapeAttr(in); got != want {
			t.Errorf("EscapeAttr(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzScanItem checks that the scanner never panics, never reads past its
// input, and reports the same items whether the input arrives whole or in
// two pieces.
func FuzzScanItem(f *testing.F) {
	f.Add([]byte(`<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'><a b='>'><![CDATA[x]]></a></stream:stream>`), 5)
	f.Add([]byte("<message><body>hi</body></message> <presence/>"), 10)
	f.Add([]byte("<!-- c --><a/>"), 3)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		whole, wholeRest, wholeErr := scanAll(data)
		var joined strings.Builder
		for _, it := range whole {
			if len(it.text) == 0 {
				t.Fatalf("empty item in %q", data)
			}
			joined.WriteString(it.text)
		}
		if joined.String()+wholeRest != string(data) {
			t.Fatalf("items and rest of %q do not add up", data)
		}
		if wholeErr != nil || len(data) == 0 {
			return
		}
		// Feed the same bytes in two pieces, as Write would receive them.
		if cut < 0 {
			cut = -cut
		}
		cut %= len(data) + 1
		buf := []byte{}
		var items []scanned
		for _, piece := range [][]byte{data[:cut], data[cut:]} {
			buf = append(buf, piece...)
			got, rest, err := scanAll(buf)
			if err != nil {
				t.Fatalf("piecewise scan of %q (cut %d): %v", data, cut, err)
			}
			items = append(items, got...)
			buf = []byte(rest)
		}
		// Whitespace runs may be split in two; compare the rest exactly.
		var a, b []scanned
		for _, it := range whole {
			if it.kind != wire.ItemSpace {
				a = append(a, it)
			}
		}
		for _, it := range items {
			if it.kind != wire.ItemSpace {
				b = append(b, it)
			}
		}
		if len(a) != len(b) {
			t.Fatalf("%q: whole gave %v, pieces (cut %d) gave %v", data, a, cut, b)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%q: item %d whole %q, pieces %q", data, i, a[i].text, b[i].text)
			}
		}
	})
}
