package wire_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"finesse-relay/xmpp/bosh/wire"
)

// prosodyCreation is a session creation response captured from Prosody 0.12.
const prosodyCreation = `<body requests='2' ver='1.6' secure='true' xmlns:stream='http://etherx.jabber.org/streams' wait='10' xmlns='http://jabber.org/protocol/httpbind' polling='5' hold='1' xmpp:version='1.0' sid='8139ff18-dd60-40de-8a42-af8f47519f98' from='finesse.local' inactivity='60' xmlns:xmpp='urn:xmpp:xbosh' authid='8139ff18-dd60-40de-8a42-af8f47519f98'><stream:features xmlns='jabber:client'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features></body>`

// attrMap flattens attributes to "space local" → value.
func attrMap(attrs []xml.Attr) map[string]string {
	m := make(map[string]string)
	for _, a := range attrs {
		m[a.Name.Space+" "+a.Name.Local] = a.Value
	}
	return m
}

func TestParseBody(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		attrs   map[string]string // a subset of the attributes, "space local" → value
		payload []string
	}{
		{"prosody creation", prosodyCreation,
			map[string]string{" sid": "8139ff18-dd60-40de-8a42-af8f47519f98", " wait": "10", wire.NSXBOSH + " version": "1.0", "xmlns stream": wire.NSStream},
			[]string{"<stream:features xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"}},
		{"empty", `<body xmlns='http://jabber.org/protocol/httpbind'/>`, map[string]string{" xmlns": wire.NSHTTPBind}, nil},
		{"xml declaration and whitespace", "<?xml version='1.0'?>\n<body xmlns='http://jabber.org/protocol/httpbind'>\n <message xmlns='jabber:client'/>\n</body>\n", nil,
			[]string{"<message xmlns='jabber:client'/>"}},
		{"two stanzas kept verbatim", `<body rid='2' sid='s' xmlns="http://jabber.org/protocol/httpbind"><message xmlns="jabber:client" id="a"><body>x &amp; &lt;y&gt;</body></message><presence xmlns="jabber:client"/></body>`,
			map[string]string{" rid": "2", " sid": "s"},
			[]string{`<message xmlns="jabber:client" id="a"><body>x &amp; &lt;y&gt;</body></message>`, `<presence xmlns="jabber:client"/>`}},
		{"terminate with stream error", `<body type='terminate' condition='remote-stream-error' xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams'><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></body>`,
			map[string]string{" type": "terminate", " condition": "remote-stream-error"},
			[]string{"<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"}},
		{"escaped attribute", `<body to='a&amp;b' xmlns='http://jabber.org/protocol/httpbind'/>`, map[string]string{" to": "a&b"}, nil},
		{"prefixed child with CDATA", `<body rid='4' xmlns='http://jabber.org/protocol/httpbind' xmlns:p='urn:p'><p:x><![CDATA[<]]>&amp;</p:x></body>`, nil,
			[]string{`<p:x xmlns:p='urn:p'><![CDATA[<]]>&amp;</p:x>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := wire.ParseBody([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseBody: %v", err)
			}
			got := attrMap(b.Attr)
			for k, v := range tt.attrs {
				if got[k] != v {
					t.Errorf("attribute %q = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			var payload []string
			for _, p := range b.Payload {
				payload = append(payload, string(p))
			}
			if strings.Join(payload, "|") != strings.Join(tt.payload, "|") {
				t.Errorf("payload\n got %q\nwant %q", payload, tt.payload)
			}
		})
	}
}

func TestParseBodyRejects(t *testing.T) {
	tests := map[string]string{
		"not xml":         "<html>",
		"wrong namespace": "<body xmlns='jabber:client'/>",
		"no namespace":    "<body rid='1'/>",
		"wrong root":      "<foo xmlns='http://jabber.org/protocol/httpbind'/>",
		"text in body":    "<body xmlns='http://jabber.org/protocol/httpbind'>hello</body>",
		"text after body": "<body xmlns='http://jabber.org/protocol/httpbind'/>x",
		"two bodies":      "<body xmlns='http://jabber.org/protocol/httpbind'/><body xmlns='http://jabber.org/protocol/httpbind'/>",
		"trailing":        "<body xmlns='http://jabber.org/protocol/httpbind'/><x/>",
		"doctype":         "<!DOCTYPE body [<!ENTITY x 'y'>]><body xmlns='http://jabber.org/protocol/httpbind'/>",
		"entity":          "<body xmlns='http://jabber.org/protocol/httpbind'><m>&x;</m></body>",
		"unclosed":        "<body xmlns='http://jabber.org/protocol/httpbind'><message>",
		"pi inside":       "<body xmlns='http://jabber.org/protocol/httpbind'><?foo bar?></body>",
		"pi before":       "<?foo bar?><body xmlns='http://jabber.org/protocol/httpbind'/>",
		"empty":           "",
		"only space":      " \n",
		"too deep":        "<body xmlns='http://jabber.org/protocol/httpbind'>" + strings.Repeat("<a>", wire.MaxDepth) + strings.Repeat("</a>", wire.MaxDepth) + "</body>",
		"mismatched end":  "<body xmlns='http://jabber.org/protocol/httpbind'><a></b></body>",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := wire.ParseBody([]byte(in)); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("ParseBody(%.60q) = %v, want ErrMalformed", in, err)
			}
		})
	}
	// The body itself is level 1: MaxDepth-1 levels of payload are fine.
	atLimit := "<body xmlns='http://jabber.org/protocol/httpbind'>" + strings.Repeat("<a>", wire.MaxDepth-1) + strings.Repeat("</a>", wire.MaxDepth-1) + "</body>"
	if _, err := wire.ParseBody([]byte(atLimit)); err != nil {
		t.Errorf("payload nested %d deep: %v", wire.MaxDepth-1, err)
	}
	// encoding/xml tolerates undeclared prefixes; the element is kept as
	// written. Documented, not an error.
	if b, err := wire.ParseBody([]byte("<body xmlns='http://jabber.org/protocol/httpbind'><x:a/></body>")); err != nil || len(b.Payload) != 1 || string(b.Payload[0]) != "<x:a/>" {
		t.Errorf("undeclared prefix: %v, %v", b, err)
	}
}

func TestIsRestart(t *testing.T) {
	tests := []struct {
		attr xml.Attr
		want bool
	}{
		{xml.Attr{Name: xml.Name{Space: wire.NSXBOSH, Local: "restart"}, Value: "true"}, true},
		{xml.Attr{Name: xml.Name{Space: wire.NSXBOSH, Local: "restart"}, Value: "1"}, true},
		{xml.Attr{Name: xml.Name{Space: wire.NSXBOSH, Local: "restart"}, Value: "false"}, false},
		{xml.Attr{Name: xml.Name{Local: "restart"}, Value: "true"}, false},
		{xml.Attr{Name: xml.Name{Space: wire.NSXBOSH, Local: "version"}, Value: "true"}, false},
	}
	for _, tt := range tests {
		if got := wire.IsRestart(tt.attr); got != tt.want {
			t.Errorf("IsRestart(%+v) = %v, want %v", tt.attr, got, tt.want)
		}
	}
	// Through ParseBody, whatever prefix the sender chose.
	b, err := wire.ParseBody([]byte(`<body rid='3' x:restart='true' xmlns='http://jabber.org/protocol/httpbind' xmlns:x='urn:xmpp:xbosh'/>`))
	if err != nil {
		t.Fatal(err)
	}
	restart := false
	for _, a := range b.Attr {
		restart = restart || wire.IsRestart(a)
	}
	if !restart {
		t.Errorf("x:restart='true' with x bound to %s not seen as a restart: %+v", wire.NSXBOSH, b.Attr)
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"0", 0, false},
		{"60", time.Minute, false},
		{" 10 ", 10 * time.Second, false},
		{"86400", 24 * time.Hour, false},
		{"86401", 0, true},
		{"99999999999", 0, true},
		{"-1", 0, true},
		{"1.5", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := wire.ParseSeconds(tt.in)
		if tt.wantErr {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("ParseSeconds(%q) = %v, %v; want ErrMalformed", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSeconds(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// FuzzParseBody checks that ParseBody never panics and that every payload
// element it returns is exactly one well-formed element standing on its own
// (the client feeds it to mellium, the connection manager writes it into the
// XMPP server's stream), which the stream scanner also sees as one whole
// element.
func FuzzParseBody(f *testing.F) {
	f.Add([]byte(prosodyCreation))
	f.Add([]byte(`<body xmlns='http://jabber.org/protocol/httpbind'><message xmlns='jabber:client'><body>a&amp;b</body></message></body>`))
	f.Add([]byte(`<body type='terminate' condition='x' xmlns='http://jabber.org/protocol/httpbind' xmlns:s='http://etherx.jabber.org/streams'><s:error/></body>`))
	f.Add([]byte(`<?xml version='1.0'?><body xmlns='http://jabber.org/protocol/httpbind' xmlns:p='urn:p'><p:x a='1'><![CDATA[<>]]></p:x></body>`))
	f.Add([]byte(`<body rid='2' sid='s' xmlns='http://jabber.org/protocol/httpbind'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth></body>`))
	f.Add([]byte(`<body content='text/xml; charset=utf-8' hold='1' rid='1' to='d' ver='1.6' wait='10' xml:lang='en' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>`))
	f.Add([]byte(`<body rid='4' sid='s' type='terminate' xmlns='http://jabber.org/protocol/httpbind' xmlns:p='urn:p'><p:x><![CDATA[<]]>&amp;</p:x></body>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := wire.ParseBody(data)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for _, p := range b.Payload {
			d := xml.NewDecoder(bytes.NewReader(p))
			depth, elements := 0, 0
			for {
				tok, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("payload %q of %q is not well-formed: %v", p, data, err)
				}
				switch tok.(type) {
				case xml.StartElement:
					if depth == 0 {
						elements++
					}
					depth++
				case xml.EndElement:
					depth--
				}
			}
			if elements != 1 || depth != 0 {
				t.Fatalf("payload %q of %q is not exactly one element", p, data)
			}
			kind, n, err := wire.ScanItem(p)
			if err != nil || kind != wire.ItemElement || n != len(p) {
				t.Fatalf("ScanItem(%q) = %v, %d, %v; want the whole element", p, kind, n, err)
			}
		}
	})
}
