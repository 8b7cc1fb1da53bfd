package bosh

import (
	"errors"
	"strings"
	"testing"
)

type scanned struct {
	kind itemKind
	text string
}

// scanAll scans b completely; rest is what remained incomplete.
func scanAll(b []byte) (items []scanned, rest string, err error) {
	for len(b) > 0 {
		kind, n, err := scanItem(b)
		if err != nil {
			return items, string(b), err
		}
		if kind == itemNeedMore {
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
		"\n<presence/></stream:stream>"
	want := []scanned{
		{itemProcInst, `<?xml version="1.0" encoding="UTF-8"?>`},
		{itemStreamStart, `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='d'>`},
		{itemElement, `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">AA==</auth>`},
		{itemSpace, " "},
		{itemElement, `<message a='>' b="/>"><body>x > y</body><!-- c --><![CDATA[</message>]]><?pi x?></message>`},
		{itemSpace, "\n"},
		{itemElement, `<presence/>`},
		{itemStreamEnd, `</stream:stream>`},
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
			if it.kind != itemSpace && it != want[i] {
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
	for _, in := range []string{"text", "</message>", "<!DOCTYPE x>", "<a <b>", "<stream:stream/>"} {
		if _, _, err := scanItem([]byte(in)); !errors.Is(err, ErrProtocol) {
			t.Errorf("scanItem(%q) = %v, want ErrProtocol", in, err)
		}
	}
	deep := strings.Repeat("<a>", maxElementDepth+1)
	if _, _, err := scanItem([]byte(deep)); !errors.Is(err, ErrProtocol) {
		t.Errorf("element nested %d deep: %v, want ErrProtocol", maxElementDepth+1, err)
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
	}
	for _, tt := range tests {
		if got := string(withNamespaces([]byte(tt.in), tt.ns, prefixes)); got != tt.want {
			t.Errorf("withNamespaces(%q) = %q, want %q", tt.in, got, tt.want)
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
			if it.kind != itemSpace {
				a = append(a, it)
			}
		}
		for _, it := range items {
			if it.kind != itemSpace {
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
