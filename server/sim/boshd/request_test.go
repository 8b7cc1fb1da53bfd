package boshd

import (
	"errors"
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

// TestParseRequestRejects covers the request attribute checks; the
// structural ones (namespace, DTDs, depth, …) are wire's, tested there. Both
// kinds wrap errProtocol.
func TestParseRequestRejects(t *testing.T) {
	for name, in := range map[string]string{
		"no rid":       "<body xmlns='http://jabber.org/protocol/httpbind'/>",
		"rid zero":     "<body rid='0' xmlns='http://jabber.org/protocol/httpbind'/>",
		"rid too big":  "<body rid='9007199254740993' xmlns='http://jabber.org/protocol/httpbind'/>",
		"rid 2^53":     "<body rid='9007199254740992' xmlns='http://jabber.org/protocol/httpbind'/>",
		"rid not int":  "<body rid='x' xmlns='http://jabber.org/protocol/httpbind'/>",
		"hold too big": "<body rid='1' hold='1000' xmlns='http://jabber.org/protocol/httpbind'/>",
		"wait too big": "<body rid='1' wait='100000' xmlns='http://jabber.org/protocol/httpbind'/>",
		"wait not int": "<body rid='1' wait='ten' xmlns='http://jabber.org/protocol/httpbind'/>",
		"wrong ns":     "<body rid='1' xmlns='jabber:client'/>",
		"doctype":      "<!DOCTYPE body><body rid='1' xmlns='http://jabber.org/protocol/httpbind'/>",
		"truncated":    "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><message>",
	} {
		if _, err := parseRequest([]byte(in)); !errors.Is(err, errProtocol) {
			t.Errorf("%s: parseRequest(%q) = %v, want errProtocol", name, in, err)
		}
	}
	// The largest rid XEP-0124 allows is accepted.
	if r, err := parseRequest([]byte("<body rid='9007199254740991' xmlns='http://jabber.org/protocol/httpbind'/>")); err != nil || r.rid != maxRID-1 {
		t.Errorf("rid 2^53-1: %v, %v", r, err)
	}
}
