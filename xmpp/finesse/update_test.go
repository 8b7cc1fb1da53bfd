package finesse

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func assertEqual(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

const userData = `<user><loginId>1001</loginId><state>READY</state></user>`

func TestParseUpdate(t *testing.T) {
	const node = "/finesse/api/User/1001"
	tests := []struct {
		name string
		doc  string
		want Update
	}{
		{"canonical order",
			`<Update><data>` + userData + `</data><event>PUT</event><requestId>r1</requestId><source>/finesse/api/User/1001</source></Update>`,
			Update{Node: node, Event: EventPut, Source: "/finesse/api/User/1001", RequestID: "r1", Data: []byte(userData)}},
		{"any child order",
			`<Update><source>/s</source><event>POST</event><data>` + userData + `</data><requestId>r2</requestId></Update>`,
			Update{Node: node, Event: EventPost, Source: "/s", RequestID: "r2", Data: []byte(userData)}},
		{"lower-case names and event",
			`<update><requestid>r3</requestid><event>delete</event><source>/s</source><data>` + userData + `</data></update>`,
			Update{Node: node, Event: EventDelete, Source: "/s", RequestID: "r3", Data: []byte(userData)}},
		{"mixed-case names",
			`<UPDATE><Event>Put</Event><SOURCE>/s</SOURCE><RequestID>r4</RequestID></UPDATE>`,
			Update{Node: node, Event: EventPut, Source: "/s", RequestID: "r4"}},
		{"pretty-printed, values trimmed",
			"<?xml version=\"1.0\"?>\n<Update>\n  <data>\n    " + userData + "\n  </data>\n  <event>\n PUT\n </event>\n  <requestId>\n  </requestId>\n  <source> /s </source>\n</Update>\n",
			Update{Node: node, Event: EventPut, Source: "/s", Data: []byte(userData)}},
		{"no data (user deleted)",
			`<Update><event>DELETE</event><requestId></requestId><source>/finesse/api/User/1009</source></Update>`,
			Update{Node: node, Event: EventDelete, Source: "/finesse/api/User/1009"}},
		{"empty data",
			`<Update><data/><event>PUT</event><source>/s</source></Update>`,
			Update{Node: node, Event: EventPut, Source: "/s"}},
		{"comment beside the object is not data",
			`<Update><data><!-- x -->` + userData + `<!-- y --></data><event>PUT</event></Update>`,
			Update{Node: node, Event: EventPut, Data: []byte(userData)}},
		{"namespace on Update (inline pubsub form)",
			`<Update xmlns="http://jabber.org/protocol/pubsub"><data>` + userData + `</data><event>PUT</event></Update>`,
			Update{Node: node, Event: EventPut, Data: []byte(userData)}},
		{"unknown child skipped",
			`<Update><extra><a><b/></a></extra><event>PUT</event></Update>`,
			Update{Node: node, Event: EventPut}},
		{"entities stay escaped in Data",
			`<Update><data><user><firstName>Tom &amp; Jerry &lt;3</firstName></user></data><event>PUT</event><source>/a?b=1&amp;c=2</source></Update>`,
			Update{Node: node, Event: EventPut, Source: "/a?b=1&c=2", Data: []byte(`<user><firstName>Tom &amp; Jerry &lt;3</firstName></user>`)}},
		{"self-closing object",
			`<Update><data><dialogs/></data><event>POST</event></Update>`,
			Update{Node: node, Event: EventPost, Data: []byte(`<dialogs/>`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUpdate(node, []byte(tt.doc))
			if err != nil {
				t.Fatalf("ParseUpdate: %v", err)
			}
			assertEqual(t, "Update", got, tt.want)
		})
	}
}

func TestParseUpdateErrors(t *testing.T) {
	deep := strings.Repeat("<a>", MaxDepth) + strings.Repeat("</a>", MaxDepth)
	tests := []struct {
		name    string
		doc     string
		limit   bool   // must also wrap ErrLimit
		message string // part of the error text
	}{
		{"empty", ``, false, "no root element"},
		{"not XML", `hello`, false, "before the root element"},
		{"wrong root", `<Notification><event>PUT</event></Notification>`, false, "root element <Notification>"},
		{"no event", `<Update><source>/s</source></Update>`, false, "no <event>"},
		{"unknown event", `<Update><event>PATCH</event></Update>`, false, `"PATCH" is not PUT, POST or DELETE`},
		{"empty event", `<Update><event></event></Update>`, false, "is not PUT"},
		{"two events", `<Update><event>PUT</event><event>POST</event></Update>`, false, "more than one <event>"},
		{"two data", `<Update><data/><data/><event>PUT</event></Update>`, false, "more than one <data>"},
		{"two objects in data", `<Update><data><user/><user/></data><event>PUT</event></Update>`, false, "a second object element <user>"},
		{"text in data", `<Update><data>hello<user/></data><event>PUT</event></Update>`, false, "outside the object element"},
		{"text in Update", `<Update>hi<event>PUT</event></Update>`, false, `text "hi"`},
		{"element in source", `<Update><event>PUT</event><source><b>x</b></source></Update>`, false, "unexpected element <b>"},
		{"truncated", `<Update><event>PUT</event><data><user>`, false, "unexpected EOF"},
		{"mismatched tags", `<Update><event>PUT</source></Update>`, false, "element <event> closed by </source>"},
		{"second root", `<Update><event>PUT</event></Update><Update/>`, false, "second root element"},
		{"trailing text", `<Update><event>PUT</event></Update>junk`, false, "after the root element"},
		{"undefined entity", `<Update><event>PUT&nbsp;</event></Update>`, false, "invalid character entity"},
		{"too large", `<Update>` + strings.Repeat(" ", MaxUpdateSize) + `</Update>`, true, "byte limit"},
		{"too deep in data", `<Update><data>` + deep + `</data><event>PUT</event></Update>`, true, "deeper than 64"},
		{"too deep in unknown child", `<Update><x>` + deep + `</x><event>PUT</event></Update>`, true, "deeper than 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseUpdate("/n", []byte(tt.doc))
			if !errors.Is(err, ErrMalformedUpdate) {
				t.Fatalf("error %v, want ErrMalformedUpdate", err)
			}
			if errors.Is(err, ErrLimit) != tt.limit {
				t.Errorf("errors.Is(err, ErrLimit) = %v, want %v (%v)", !tt.limit, tt.limit, err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not say %q", err, tt.message)
			}
			if !reflect.DeepEqual(u, Update{}) {
				t.Errorf("got %+v with the error, want the zero Update", u)
			}
		})
	}
}

// The depth limit counts from the Update root: an object nested exactly to
// MaxDepth is accepted.
func TestParseUpdateDepthBoundary(t *testing.T) {
	inner := MaxDepth - 2 // Update and data are levels 1 and 2
	doc := `<Update><data>` + strings.Repeat("<a>", inner) + strings.Repeat("</a>", inner) + `</data><event>PUT</event></Update>`
	if _, err := ParseUpdate("/n", []byte(doc)); err != nil {
		t.Fatalf("depth %d refused: %v", MaxDepth, err)
	}
	inner++
	doc = `<Update><data>` + strings.Repeat("<a>", inner) + strings.Repeat("</a>", inner) + `</data><event>PUT</event></Update>`
	if _, err := ParseUpdate("/n", []byte(doc)); !errors.Is(err, ErrLimit) {
		t.Fatalf("depth %d: error %v, want ErrLimit", MaxDepth+1, err)
	}
}

func TestParseUpdateDataIsACopy(t *testing.T) {
	doc := []byte(`<Update><data>` + userData + `</data><event>PUT</event></Update>`)
	u, err := ParseUpdate("/n", doc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range doc {
		doc[i] = 'x'
	}
	eq(t, "Data after the input was overwritten", string(u.Data), userData)
}

// escape returns doc the way Cisco puts it inside <notification>.
func escape(doc string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(doc))
	return b.String()
}

func TestParseNotification(t *testing.T) {
	const node = "/finesse/api/User/1001"
	doc := `<Update><data><user><firstName>Tom &amp; Jerry</firstName><lastName>&lt;3 &amp;amp;</lastName></user></data><event>PUT</event><requestId>r1</requestId><source>/finesse/api/User/1001</source></Update>`
	want := Update{Node: node, Event: EventPut, Source: "/finesse/api/User/1001", RequestID: "r1",
		Data: []byte(`<user><firstName>Tom &amp; Jerry</firstName><lastName>&lt;3 &amp;amp;</lastName></user>`)}
	tests := []struct {
		name    string
		content string
	}{
		{"escaped text (Cisco form)", escape(doc)},
		{"escaped with only &lt; &gt; (Python sample form)", strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(doc)},
		{"escaped, surrounded by whitespace", "\n   " + escape(doc) + "\n  "},
		{"inline XML", doc},
		{"inline XML, indented", "\n      " + doc + "\n    "},
		{"already-unescaped character data (same as inline)", doc},
		{"CDATA section", "<![CDATA[" + doc + "]]>"},
		{"escaped text split by a CDATA section", escape(doc[:40]) + "<![CDATA[" + doc[40:90] + "]]>" + escape(doc[90:])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNotification(node, []byte(tt.content))
			if err != nil {
				t.Fatalf("ParseNotification: %v", err)
			}
			assertEqual(t, "Update", got, want)
			o, err := DecodeData(got.Data)
			if err != nil {
				t.Fatal(err)
			}
			u := o.(*User)
			eq(t, "firstName decoded once", u.FirstName, "Tom & Jerry")
			eq(t, "lastName decoded once", u.LastName, "<3 &amp;")
		})
	}
}

func TestParseNotificationErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		limit   bool
	}{
		{"empty", "", false},
		{"whitespace", "  \n ", false},
		{"plain text", "hello", false},
		{"escaped text then an element", escape(`<Update><event>PUT</event></Update>`) + `<x/>`, false},
		{"broken entity", "&lt;Update&gt;&lt;event&gt;PUT&lt;/event&gt;&lt;/Update&gt;&bogus;", false},
		{"escaped non-Update", escape(`<presence/>`), false},
		{"too large", strings.Repeat(" ", MaxNotificationSize+1), true},
		{"unescaped too large", "&lt;Update&gt;" + strings.Repeat("a", MaxUpdateSize) + "&lt;/Update&gt;", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNotification("/n", []byte(tt.content))
			if !errors.Is(err, ErrMalformedUpdate) {
				t.Fatalf("error %v, want ErrMalformedUpdate", err)
			}
			if errors.Is(err, ErrLimit) != tt.limit {
				t.Errorf("errors.Is(err, ErrLimit) = %v, want %v (%v)", !tt.limit, tt.limit, err)
			}
		})
	}
}

func TestEncodeUpdate(t *testing.T) {
	u := Update{Node: "/n", Event: EventPost, Source: "/finesse/api/User/1001/Dialogs", RequestID: "a&b<c>", Data: []byte(`<dialogs><Dialog><id>1</id></Dialog></dialogs>`)}
	got := string(EncodeUpdate(u))
	want := `<Update><data><dialogs><Dialog><id>1</id></Dialog></dialogs></data><event>POST</event><requestId>a&amp;b&lt;c&gt;</requestId><source>/finesse/api/User/1001/Dialogs</source></Update>`
	eq(t, "document", got, want)

	deleted := Update{Event: EventDelete, Source: "/finesse/api/User/1009"}
	eq(t, "no data", string(EncodeUpdate(deleted)), `<Update><event>DELETE</event><requestId></requestId><source>/finesse/api/User/1009</source></Update>`)
}

func TestEncodeUpdateRoundTrip(t *testing.T) {
	tests := []Update{
		{Node: "/finesse/api/User/1001", Event: EventPut, Source: "/finesse/api/User/1001", RequestID: "3f2a", Data: []byte(userData)},
		{Node: "/finesse/api/User/1001/Dialogs", Event: EventDelete, Source: "/finesse/api/User/1001/Dialogs", Data: []byte(`<dialogs><Dialog><id>7</id></Dialog></dialogs>`)},
		{Node: "/finesse/api/Team/1/Users", Event: EventDelete, Source: "/finesse/api/User/9"},
		{Node: "", Event: EventPost, Source: `quotes " and ' and & and <>`, RequestID: "ü ✓", Data: []byte(`<x a="1">&amp;&lt;</x>`)},
	}
	for i, u := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			doc := EncodeUpdate(u)
			back, err := ParseUpdate(u.Node, doc)
			if err != nil {
				t.Fatalf("ParseUpdate(%s): %v", doc, err)
			}
			assertEqual(t, "ParseUpdate(EncodeUpdate(u))", back, u)

			// The same document carried as Cisco does, escaped in a notification.
			back, err = ParseNotification(u.Node, []byte(escape(string(doc))))
			if err != nil {
				t.Fatalf("ParseNotification: %v", err)
			}
			assertEqual(t, "ParseNotification(escaped EncodeUpdate(u))", back, u)
		})
	}
}

func TestEncodeUpdateOfEncodeData(t *testing.T) {
	user := &User{LoginID: "1001", FirstName: "A & B", State: "READY", Roles: []string{"Agent"}}
	data, err := EncodeData(user)
	if err != nil {
		t.Fatal(err)
	}
	doc := EncodeUpdate(Update{Event: EventPut, Source: UserNode("1001"), Data: data})
	if !bytes.HasPrefix(doc, []byte("<Update><data><user>")) {
		t.Errorf("document %s does not start with <Update><data><user>", doc)
	}
	u, err := ParseNotification(UserNode("1001"), []byte(escape(string(doc))))
	if err != nil {
		t.Fatal(err)
	}
	o, err := DecodeData(u.Data)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "user", o, user)
}
