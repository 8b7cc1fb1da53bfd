package xmpp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"finesse-relay/xmpp/finesse"
)

// decodeStanza runs the message decoding path of the Serve handler on a
// whole <message> stanza.
func decodeStanza(stanza []byte) (updates []finesse.Update, errs []error, isEvent bool, err error) {
	d := xml.NewDecoder(bytes.NewReader(stanza))
	if _, err := nextStart(d); err != nil {
		return nil, nil, false, err
	}
	items, isEvent, _, err := readEventItems(d)
	if err != nil {
		return nil, nil, false, err
	}
	for _, it := range items {
		u, err := decodeItem(it)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		updates = append(updates, u)
	}
	return updates, errs, isEvent, nil
}

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name      string
		stanza    string
		isEvent   bool
		requests  []string // requestIds of the decoded updates, in order
		malformed int
	}{
		{"escaped (Cisco form)", stanzaEscaped, true, []string{"req-escaped"}, 0},
		{"inline with headline type", stanzaInline, true, []string{"req-inline"}, 0},
		{"two items and a retraction", stanzaTwoItems, true, []string{"req-two-1", "req-two-2"}, 0},
		{"chat message", stanzaChat, false, nil, 0},
		{"unknown payload", stanzaUnknownPayload, true, nil, 1},
		{"CDATA-wrapped Update", `<message from='pubsub.finesse.test'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='/finesse/api/User/1001'><item><notification xmlns='http://jabber.org/protocol/pubsub'><![CDATA[<Update><event>PUT</event><requestId>req-cdata</requestId><source>/finesse/api/User/1001</source></Update>]]></notification></item></items></event></message>`, true, []string{"req-cdata"}, 0},
		{"items without node", `<message><event xmlns='http://jabber.org/protocol/pubsub#event'><items><item><notification xmlns='http://jabber.org/protocol/pubsub'>&lt;Update&gt;&lt;event&gt;PUT&lt;/event&gt;&lt;/Update&gt;</notification></item></items></event></message>`, true, nil, 1},
		{"item without notification", `<message><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='/a'><item id='1'><entry xmlns='http://www.w3.org/2005/Atom'/></item></items></event></message>`, true, nil, 0},
		{"event of another namespace", `<message><event xmlns='urn:example'><items node='/a'><item><notification>&lt;Update&gt;&lt;event&gt;PUT&lt;/event&gt;&lt;/Update&gt;</notification></item></items></event></message>`, false, nil, 0},
		{"empty notification", `<message><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='/a'><item><notification xmlns='http://jabber.org/protocol/pubsub'/></item></items></event></message>`, true, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			updates, errs, isEvent, err := decodeStanza([]byte(tt.stanza))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if isEvent != tt.isEvent {
				t.Errorf("isEvent = %v, want %v", isEvent, tt.isEvent)
			}
			var got []string
			for _, u := range updates {
				got = append(got, u.RequestID)
			}
			if strings.Join(got, ",") != strings.Join(tt.requests, ",") {
				t.Errorf("updates %q, want %q", got, tt.requests)
			}
			if len(errs) != tt.malformed {
				t.Errorf("%d malformed (%v), want %d", len(errs), errs, tt.malformed)
			}
			for _, e := range errs {
				if !errors.Is(e, finesse.ErrMalformedUpdate) && !errors.Is(e, errNoNode) {
					t.Errorf("malformed error %v wraps neither ErrMalformedUpdate nor errNoNode", e)
				}
			}
		})
	}
}

// TestEscapedAndInlineAgree: the two wire forms of one Update decode to
// the same value, entities kept escaped exactly once in Data. (The inline
// form is re-serialised from tokens, so an empty element written <a/>
// comes out as <a></a>; the sample avoids that form.)
func TestEscapedAndInlineAgree(t *testing.T) {
	update := `<Update><data><user><firstName>Tom &amp; Jerry &lt;3</firstName><note a="x&quot;y"></note></user></data><event>PUT</event><requestId>r</requestId><source>/finesse/api/User/1001</source></Update>`
	wrap := func(content string) string {
		return `<message><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='/finesse/api/User/1001'><item><notification xmlns='http://jabber.org/protocol/pubsub'>` +
			content + `</notification></item></items></event></message>`
	}
	var escaped bytes.Buffer
	_ = xml.EscapeText(&escaped, []byte(update))
	a, errsA, _, err := decodeStanza([]byte(wrap(escaped.String())))
	if err != nil || len(errsA) > 0 || len(a) != 1 {
		t.Fatalf("escaped: %v %v %d", err, errsA, len(a))
	}
	b, errsB, _, err := decodeStanza([]byte(wrap(update)))
	if err != nil || len(errsB) > 0 || len(b) != 1 {
		t.Fatalf("inline: %v %v %d", err, errsB, len(b))
	}
	if string(a[0].Data) != string(b[0].Data) || a[0].Source != b[0].Source || a[0].RequestID != b[0].RequestID {
		t.Errorf("escaped %+v %s\ninline  %+v %s", a[0], a[0].Data, b[0], b[0].Data)
	}
	if want := `<user><firstName>Tom &amp; Jerry &lt;3</firstName><note a="x&quot;y"></note></user>`; string(b[0].Data) != want {
		t.Errorf("inline Data = %s, want %s", b[0].Data, want)
	}
}

// FuzzDecodeEvent feeds arbitrary stanzas to the event decoder: it must
// not panic, and every Update it returns is well-formed.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{stanzaEscaped, stanzaInline, stanzaTwoItems, stanzaChat, stanzaUnknownPayload, stanzaForged} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stanza []byte) {
		updates, _, _, err := decodeStanza(stanza)
		if err != nil {
			return
		}
		for _, u := range updates {
			switch u.Event {
			case finesse.EventPut, finesse.EventPost, finesse.EventDelete:
			default:
				t.Fatalf("update with event %q", u.Event)
			}
			if u.Node == "" {
				t.Fatal("update without node")
			}
			again, err := finesse.ParseUpdate(u.Node, finesse.EncodeUpdate(u))
			if err != nil || string(again.Data) != string(u.Data) || again.RequestID != u.RequestID {
				t.Fatalf("update does not survive a round trip: %+v -> %+v, %v", u, again, err)
			}
		}
	})
}

// BenchmarkDecodeEvent measures stanza bytes -> finesse.Update for one
// pubsub event message (XML tokenising, event walk, notification
// re-serialisation and ParseNotification). Escaped notifications are
// unescaped once, by the stream decoder.
func BenchmarkDecodeEvent(b *testing.B) {
	for _, bc := range []struct{ name, stanza string }{
		{"escaped", stanzaEscaped},
		{"inline", stanzaInline},
		{"dialog", dialogStanza()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := []byte(bc.stanza)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for range b.N {
				updates, errs, _, err := decodeStanza(in)
				if err != nil || len(errs) > 0 || len(updates) != 1 {
					b.Fatalf("%v %v %d", err, errs, len(updates))
				}
			}
		})
	}
}

// dialogStanza is the F.2 ALERTING dialog POST, escaped, as Finesse sends
// it: a realistic large notification.
func dialogStanza() string {
	update := `<Update><data><dialogs><Dialog><associatedDialogUri></associatedDialogUri><fromAddress>5551234567</fromAddress><id>16817001</id>` +
		`<mediaProperties><DNIS>1001001</DNIS><callType>ACD_IN</callType><dialedNumber>8001</dialedNumber><queueName>Sales_SG</queueName><queueNumber>5022</queueNumber><mediaId>1</mediaId>` +
		`<callvariables><CallVariable><name>callVariable1</name><value>ACC-778812</value></CallVariable><CallVariable><name>user.CustomerTier</name><value>Gold</value></CallVariable></callvariables></mediaProperties>` +
		`<mediaType>Voice</mediaType><participants>` +
		`<Participant><actions><action>ANSWER</action></actions><mediaAddress>1001001</mediaAddress><mediaAddressType>AGENT_DEVICE</mediaAddressType><startTime>2025-03-04T09:16:40.502Z</startTime><state>ALERTING</state><stateCause></stateCause><stateChangeTime>2025-03-04T09:16:40.502Z</stateChangeTime></Participant>` +
		`<Participant><actions><action>UPDATE_CALL_DATA</action><action>DROP</action></actions><mediaAddress>5551234567</mediaAddress><mediaAddressType></mediaAddressType><startTime>2025-03-04T09:16:40.502Z</startTime><state>INITIATED</state><stateCause></stateCause><stateChangeTime>2025-03-04T09:16:40.502Z</stateChangeTime></Participant>` +
		`</participants><state>ALERTING</state><toAddress>1001001</toAddress><uri>/finesse/api/Dialog/16817001</uri></Dialog></dialogs></data>` +
		`<event>POST</event><requestId></requestId><source>/finesse/api/User/1001001/Dialogs</source></Update>`
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(update))
	return `<message from='pubsub.finesse-a.lab.local' to='1001001@finesse-a.lab.local'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='/finesse/api/User/1001001/Dialogs'><item id='1'><notification xmlns='http://jabber.org/protocol/pubsub'>` +
		esc.String() + `</notification></item></items></event></message>`
}
