package boshd

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		check   func(*request) bool
		payload []string
	}{
		{"creation", `<body content='text/xml; charset=utf-8' hold='1' rid='1573741820' to='finesse.local' ver='1.6' wait='10' xml:lang='en' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>`,
			func(r *request) bool {
				return r.rid == 1573741820 && r.to == "finesse.local" && r.hold == 1 && r.hasHold && r.wait == 10*time.Second && r.lang == "en" && r.sid == ""
			}, nil},
		{"auth", `<body rid='2' sid='s' xmlns='http://jabber.org/protocol/httpbind'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth></body>`,
			func(r *request) bool { return r.rid == 2 && r.sid == "s" && !r.hasHold && r.hold == -1 },
			[]string{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>"}},
		{"restart", `<body rid='3' sid='s' to='d' xml:lang='en' xmpp:restart='true' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>`,
			func(r *request) bool { return r.restart }, nil},
		{"restart with another prefix", `<body rid='3' sid='s' x:restart='true' xmlns='http://jabber.org/protocol/httpbind' xmlns:x='urn:xmpp:xbosh'/>`,
			func(r *request) bool { return r.restart }, nil},
		{"restart attr in no namespace is not a restart", `<body rid='3' sid='s' restart='true' xmlns='http://jabber.org/protocol/httpbind'/>`,
			func(r *request) bool { return !r.restart }, nil},
		{"terminate with presence", `<body rid='4' sid='s' type='terminate' xmlns='http://jabber.org/protocol/httpbind'><presence type='unavailable' xmlns='jabber:client'/></body>`,
			func(r *request) bool { return r.typ == "terminate" }, []string{"<presence type='unavailable' xmlns='jabber:client'/>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRequest([]byte(tt.in))
			if err != nil {
				t.Fatalf("parseRequest: %v", err)
			}
			if !tt.check(r) {
				t.Errorf("unexpected request %+v", *r)
			}
			var got []string
			for _, p := range r.payload {
				got = append(got, string(p))
			}
			if strings.Join(got, "|") != strings.Join(tt.payload, "|") {
				t.Errorf("payload %q, want %q", got, tt.payload)
			}
		})
	}
}

func TestParseRequestRejects(t *testing.T) {
	for name, in := range map[string]string{
		"no rid":       "<body xmlns='http://jabber.org/protocol/httpbind'/>",
		"rid zero":     "<body rid='0' xmlns='http://jabber.org/protocol/httpbind'/>",
		"rid too big":  "<body rid='9007199254740993' xmlns='http://jabber.org/protocol/httpbind'/>",
		"rid not int":  "<body rid='x' xmlns='http://jabber.org/protocol/httpbind'/>",
		"hold too big": "<body rid='1' hold='1000' xmlns='http://jabber.org/protocol/httpbind'/>",
		"wait too big": "<body rid='1' wait='100000' xmlns='http://jabber.org/protocol/httpbind'/>",
		"wrong ns":     "<body rid='1' xmlns='jabber:client'/>",
		"doctype":      "<!DOCTYPE body><body rid='1' xmlns='http://jabber.org/protocol/httpbind'/>",
		"text":         "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>x</body>",
		"trailing":     "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'/><x/>",
		"truncated":    "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><message>",
		"too deep":     "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>" + strings.Repeat("<a>", 300) + strings.Repeat("</a>", 300) + "</body>",
	} {
		if _, err := parseRequest([]byte(in)); !errors.Is(err, errProtocol) {
			t.Errorf("%s: parseRequest(%q) = %v, want errProtocol", name, in, err)
		}
	}
}

// FuzzParseRequest checks that parseRequest never panics, and that each
// payload element it accepts is one well-formed element on its own (it is
// written as is into the XMPP server's stream).
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`<body rid='2' sid='s' xmlns='http://jabber.org/protocol/httpbind'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth></body>`))
	f.Add([]byte(`<body content='text/xml; charset=utf-8' hold='1' rid='1' to='d' ver='1.6' wait='10' xml:lang='en' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>`))
	f.Add([]byte(`<body rid='4' sid='s' type='terminate' xmlns='http://jabber.org/protocol/httpbind' xmlns:p='urn:p'><p:x><![CDATA[<]]>&amp;</p:x></body>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseRequest(data)
		if err != nil {
			return
		}
		if r.rid == 0 || r.rid >= maxRID {
			t.Fatalf("accepted rid %d", r.rid)
		}
		for _, p := range r.payload {
			d := xml.NewDecoder(bytes.NewReader(p))
			depth, top := 0, 0
			for {
				tok, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("payload %q is not well-formed: %v", p, err)
				}
				switch tok.(type) {
				case xml.StartElement:
					if depth == 0 {
						top++
					}
					depth++
				case xml.EndElement:
					depth--
				}
			}
			if top != 1 || depth != 0 {
				t.Fatalf("payload %q is not one element", p)
			}
			// The stream scanner that splits the XMPP side must agree.
			kind, n, err := scanItem(p)
			if err != nil || kind != itemElement || n != len(p) {
				t.Fatalf("scanItem(%q) = %v, %d, %v; want the whole element", p, kind, n, err)
			}
		}
	})
}

// TestScanCopyInSync guards the copy of xmpp/bosh/scan.go kept here (the
// import rules forbid sharing it): apart from the package clause, the error
// name and the introduction comment, both files must be identical.
func TestScanCopyInSync(t *testing.T) {
	orig, err := os.ReadFile("../../../xmpp/bosh/scan.go")
	if err != nil {
		t.Skipf("xmpp/bosh/scan.go not readable from here: %v", err)
	}
	copy, err := os.ReadFile("scan.go")
	if err != nil {
		t.Fatal(err)
	}
	intro := regexp.MustCompile(`(?s)// The stream scanner.*?\n\n`)
	norm := func(b []byte, pkg, errName string) string {
		s := intro.ReplaceAllString(string(b), "")
		s = strings.Replace(s, "package "+pkg+"\n", "package X\n", 1)
		return strings.ReplaceAll(s, errName, "ERR")
	}
	if norm(orig, "bosh", "ErrProtocol") != norm(copy, "boshd", "errProtocol") {
		t.Error("server/sim/boshd/scan.go differs from xmpp/bosh/scan.go: apply the same change to both")
	}
}
