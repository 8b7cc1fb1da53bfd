package xmppd

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// newOfflineConn returns a bound-looking connection of user/relay with no
// transport, for driving the stanza handlers directly.
func newOfflineConn(t testing.TB, s *Server, queue int) *conn {
	t.Helper()
	j, err := jid.New("2001", testDomain, "relay")
	if err != nil {
		t.Fatal(err)
	}
	return &conn{
		s: s, log: s.log, user: "2001", jid: j, full: j.String(),
		bareAttr: appendAttr(nil, j.Bare().String()), fullAttr: appendAttr(nil, j.String()),
		pubsubAttr: appendAttr(nil, testPubSub), rng: rand.NewPCG(1, 2),
		out: make(chan outItem, queue), quit: make(chan struct{}), writerDone: make(chan struct{}),
	}
}

// FuzzHandleStanza feeds arbitrary client XML to the stanza decoder and
// handlers. Properties: no panic; every get or set IQ gets exactly one
// answer, a well-formed IQ of type result or error carrying the same id.
func FuzzHandleStanza(f *testing.F) {
	for _, seed := range []string{
		`<iq type='get' id='1' to='` + testDomain + `'><ping xmlns='urn:xmpp:ping'/></iq>`,
		`<iq type='set' id='2' to='` + testPubSub + `'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='/finesse/api/Team/10/Users' jid='2001@` + testDomain + `/relay'/></pubsub></iq>`,
		`<iq type='set' id='3' to='` + testPubSub + `'><pubsub xmlns='http://jabber.org/protocol/pubsub'><unsubscribe node='/finesse/api/Team/10/Users' jid='2001@` + testDomain + `'/></pubsub></iq>`,
		`<iq type='get' id='4' to='` + testPubSub + `'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions node='a&amp;b'/></pubsub></iq>`,
		`<iq type='get' id='&apos;&lt;5'><query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>`,
		`<presence><priority>-1</priority></presence><presence type='unavailable'/>`,
		`<message to='x@y'><body>hi</body></message>`,
		`<iq type='set' id='6'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`,
		`<iq type='get' id='7'/>`,
		`<a><b><c><d><e><f><g><h><i><j><k><l><m><n><o><p><q><r/></q></p></o></n></m></l></k></j></i></h></g></f></e></d></c></b></a>`,
	} {
		f.Add([]byte(seed))
	}
	s := New(Config{Domain: testDomain, AuthorizeSubscribe: supervisorAuth, MaxSubscriptions: 4})
	defer s.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newOfflineConn(t, s, 4096)
		dec := xml.NewDecoder(bytes.NewReader(data))
		for range 64 {
			tok, err := dec.Token()
			if err != nil {
				return
			}
			start, ok := tok.(xml.StartElement)
			if !ok {
				continue
			}
			el, err := readElement(dec, start)
			if err != nil {
				if errors.Is(err, errTooDeep) || errors.Is(err, io.EOF) || isSyntax(err) {
					return
				}
				t.Fatalf("readElement: %v", err)
			}
			before := len(c.out)
			_ = c.handle(el)
			typ := el.get("type")
			isRequest := el.name.Local == "iq" && (typ == "get" || typ == "set") && (el.name.Space == "" || el.name.Space == nsClient)
			answers := len(c.out) - before
			if !isRequest {
				if answers != 0 {
					t.Fatalf("%d answers to <%s type=%q>", answers, el.name.Local, typ)
				}
				continue
			}
			if answers != 1 {
				t.Fatalf("%d answers to an IQ %s", answers, typ)
			}
			it := <-c.out
			checkAnswer(t, it.raw, el.get("id"))
		}
	})
}

func isSyntax(err error) bool {
	var se *xml.SyntaxError
	return errors.As(err, &se)
}

// checkAnswer asserts that b is one well-formed IQ result or error with id.
func checkAnswer(t *testing.T, b []byte, id string) {
	t.Helper()
	var iq struct {
		XMLName xml.Name
		ID      string `xml:"id,attr"`
		Type    string `xml:"type,attr"`
		To      string `xml:"to,attr"`
	}
	if err := xml.Unmarshal(b, &iq); err != nil {
		t.Fatalf("answer not well-formed: %v: %s", err, b)
	}
	if iq.XMLName.Local != "iq" || iq.ID != id || (iq.Type != "result" && iq.Type != "error") || iq.To != "2001@"+testDomain+"/relay" {
		t.Fatalf("answer %s to id %q", b, id)
	}
}

// xmlChars reports whether s is UTF-8 made of characters XML 1.0 allows.
func xmlChars(s []byte) bool {
	if !utf8.Valid(s) {
		return false
	}
	for _, r := range string(s) {
		if !(r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
			return false
		}
	}
	return true
}

// FuzzPublicationRoundTrip: for any node and document made of XML
// characters, the event message the writer builds is well-formed and
// carries both back exactly (the escaping round-trips).
func FuzzPublicationRoundTrip(f *testing.F) {
	f.Add("/finesse/api/User/1001", []byte(`<Update><data><user><firstName>A &amp; B</firstName></user></data><event>PUT</event></Update>`), false)
	f.Add("/finesse/api/Team/10/Users", []byte("<Update>\r\n\t'\"]]>&lt;</Update>"), true)
	f.Add("a'b\"c<d>&e\tf\ng\rh", []byte("plain text, not even XML"), false)
	s := New(Config{Domain: testDomain})
	defer s.Close()
	f.Fuzz(func(t *testing.T, node string, doc []byte, full bool) {
		if !xmlChars([]byte(node)) || !xmlChars(doc) {
			t.Skip()
		}
		c := newOfflineConn(t, s, 1)
		b := c.appendItem(nil, outItem{pub: s.newPublication(node, doc), full: full})
		var msg struct {
			XMLName xml.Name
			From    string `xml:"from,attr"`
			To      string `xml:"to,attr"`
			ID      string `xml:"id,attr"`
			Items   struct {
				Node string `xml:"node,attr"`
				Item struct {
					ID           string `xml:"id,attr"`
					Notification struct {
						XMLName xml.Name
						Text    string `xml:",chardata"`
						Inner   []struct {
							XMLName xml.Name
						} `xml:",any"`
					} `xml:"notification"`
				} `xml:"item"`
			} `xml:"http://jabber.org/protocol/pubsub#event event>items"`
		}
		if err := xml.Unmarshal(b, &msg); err != nil {
			t.Fatalf("not well-formed: %v: %s", err, b)
		}
		to := c.jid.Bare().String()
		if full {
			to = c.full
		}
		nt := msg.Items.Item.Notification
		switch {
		case msg.XMLName.Local != "message" || msg.From != testPubSub || msg.To != to:
			t.Fatalf("envelope %s", b)
		case len(msg.ID) != len(node)+len(to)+9 || msg.ID[:len(node)+2+len(to)+2] != node+"__"+to+"__":
			t.Fatalf("message id %q", msg.ID)
		case msg.Items.Node != node || msg.Items.Item.ID == "":
			t.Fatalf("items %s", b)
		case nt.XMLName.Space != nsPubSub || len(nt.Inner) != 0:
			t.Fatalf("notification %s", b)
		case nt.Text != string(doc):
			t.Fatalf("text %q, want %q", nt.Text, doc)
		}
	})
}
