package bosh

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// prosodyCreation is a session creation response captured from Prosody 0.12.
const prosodyCreation = `<body requests='2' ver='1.6' secure='true' xmlns:stream='http://etherx.jabber.org/streams' wait='10' xmlns='http://jabber.org/protocol/httpbind' polling='5' hold='1' xmpp:version='1.0' sid='8139ff18-dd60-40de-8a42-af8f47519f98' from='finesse.local' inactivity='60' xmlns:xmpp='urn:xmpp:xbosh' authid='8139ff18-dd60-40de-8a42-af8f47519f98'><stream:features xmlns='jabber:client'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features></body>`

func TestParseBody(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Body
		payload []string
	}{
		{"prosody creation", prosodyCreation, Body{
			SID: "8139ff18-dd60-40de-8a42-af8f47519f98", AuthID: "8139ff18-dd60-40de-8a42-af8f47519f98", From: "finesse.local", Ver: "1.6",
			Wait: 10 * time.Second, Inactivity: 60 * time.Second, Polling: 5 * time.Second, Hold: 1, Requests: 2,
		}, []string{"<stream:features xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"}},
		{"empty", `<body xmlns='http://jabber.org/protocol/httpbind'/>`, Body{}, nil},
		{"xml declaration and whitespace", "<?xml version='1.0'?>\n<body xmlns='http://jabber.org/protocol/httpbind'>\n <message xmlns='jabber:client'/>\n</body>\n", Body{}, []string{"<message xmlns='jabber:client'/>"}},
		{"two stanzas kept verbatim", `<body xmlns="http://jabber.org/protocol/httpbind"><message xmlns="jabber:client" id="a"><body>x &amp; &lt;y&gt;</body></message><presence xmlns="jabber:client"/></body>`, Body{},
			[]string{`<message xmlns="jabber:client" id="a"><body>x &amp; &lt;y&gt;</body></message>`, `<presence xmlns="jabber:client"/>`}},
		{"terminate", `<body type='terminate' condition='remote-stream-error' xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams'><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></body>`,
			Body{Type: "terminate", Condition: "remote-stream-error"}, []string{"<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"}},
		{"restart request", `<body rid='7' sid='s' xmpp:restart='true' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>`, Body{RID: 7, SID: "s", Restart: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBody([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseBody: %v", err)
			}
			var got []string
			for _, p := range b.Payload {
				got = append(got, string(p))
			}
			b.Payload = nil
			if !reflect.DeepEqual(*b, tt.want) {
				t.Errorf("got %+v, want %+v", *b, tt.want)
			}
			if strings.Join(got, "|") != strings.Join(tt.payload, "|") {
				t.Errorf("payload\n got %q\nwant %q", got, tt.payload)
			}
		})
	}
}

// TestParseBodyRejects covers the attribute checks of this package; the
// structural ones (namespace, DTDs, depth, …) are wire's, tested there. Both
// kinds wrap ErrProtocol.
func TestParseBodyRejects(t *testing.T) {
	tests := map[string]string{
		"not xml":          "<html>",
		"wrong namespace":  "<body xmlns='jabber:client'/>",
		"doctype":          "<!DOCTYPE body [<!ENTITY x 'y'>]><body xmlns='http://jabber.org/protocol/httpbind'/>",
		"bad wait":         "<body wait='-1' xmlns='http://jabber.org/protocol/httpbind'/>",
		"huge wait":        "<body wait='99999999' xmlns='http://jabber.org/protocol/httpbind'/>",
		"huge inactivity":  "<body inactivity='86401' xmlns='http://jabber.org/protocol/httpbind'/>",
		"bad polling":      "<body polling='x' xmlns='http://jabber.org/protocol/httpbind'/>",
		"bad hold":         "<body hold='many' xmlns='http://jabber.org/protocol/httpbind'/>",
		"requests too big": "<body requests='65536' xmlns='http://jabber.org/protocol/httpbind'/>",
		"bad rid":          "<body rid='-1' xmlns='http://jabber.org/protocol/httpbind'/>",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseBody([]byte(in)); !errors.Is(err, ErrProtocol) {
				t.Errorf("ParseBody(%q) = %v, want ErrProtocol", in, err)
			}
		})
	}
}
