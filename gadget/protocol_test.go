package gadget

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \`, "ctl \x00\x01\x1f\t\n\r\b\f", "<script>&amp;</script>",
		"bad utf8 \xff\xfe end", "line sep \u2028 para sep \u2029", "héllo wörld ☎ 𝄞",
	} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("x\"\\<\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestFramesAreValidJSON(t *testing.T) {
	for name, b := range map[string][]byte{
		"welcome":          welcomeFrame("1001\"", []string{"Agent", "Supervisor"}, 41, true, 0.25, "00ff"),
		"welcome no roles": welcomeFrame("1001", nil, -1, false, 25, "00ff"),
		"state":            stateFrame(3, "/finesse/api/User/1001", []byte(`{"a":1}`)),
		"status":           statusFrame(4, Status{"failover", "B", "h<b>"}),
		"reply":            replyFrame("c7", true),
		"reply no id":      replyFrame("", false),
		"error":            errorFrame(&protoError{Code: CodeForbidden, Message: "no \"way\"", ID: "x"}),
	} {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("%s: %s: %v", name, b, err)
		}
	}
	var w wireMsg
	_ = json.Unmarshal(welcomeFrame("1001", nil, -1, false, 25, "00ff"), &w)
	if w.Roles == nil || len(w.Roles) != 0 || w.Heartbeat != 25 || *w.Seq != -1 {
		t.Fatalf("welcome = %+v", w)
	}
}

func TestDecodeCommand(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	tests := []struct {
		in   string
		want command
		code string
		id   string
	}{
		{in: `{"type":"ping"}`, want: command{Type: "ping"}},
		{in: `{"type":"ping","id":"p1","extra":[1,{"x":2}]}`, want: command{Type: "ping", ID: "p1"}},
		{in: `{"type":"subscribe","id":"c1","node":"/finesse/api/Team/10/Users"}`, want: command{Type: "subscribe", ID: "c1", Node: "/finesse/api/Team/10/Users"}},
		{in: `{"type":"unsubscribe","node":"/q"}`, want: command{Type: "unsubscribe", Node: "/q"}},
		{in: `{"type":"resume","since":40}`, want: command{Type: "resume", Since: n(40)}},
		{in: `{"type":"resume","since":-1,"stream":"abc"}`, want: command{Type: "resume", Since: n(-1), Stream: "abc"}},
		{in: `{"type":"ping","id":null}`, want: command{Type: "ping"}},
		{in: ``, code: CodeBadRequest},
		{in: `null`, code: CodeBadRequest},
		{in: `"ping"`, code: CodeBadRequest},
		{in: `{"type":1}`, code: CodeBadRequest},
		{in: `{"type":""}`, code: CodeUnknownType},
		{in: `{"type":"resume","since":-2,"id":"r"}`, code: CodeBadRequest, id: "r"},
		{in: `{"type":"resume","since":1.5}`, code: CodeBadRequest},
		{in: `{"type":"resume","since":99999999999999999999}`, code: CodeBadRequest},
		{in: `{"type":"subscribe","node":""}`, code: CodeBadRequest},
		{in: `{"type":"subscribe","node":{}}`, code: CodeBadRequest},
		{in: `{"type":"ping","id":"` + strings.Repeat("i", maxIDLen+1) + `"}`, code: CodeBadRequest},
		{in: `{"type":"subscribe","id":"s","node":"` + strings.Repeat("n", maxNodeLen+1) + `"}`, code: CodeBadRequest, id: "s"},
		{in: `{"type":"x","id":"x1"}`, code: CodeUnknownType, id: "x1"},
	}
	for _, tt := range tests {
		got, perr := decodeCommand([]byte(tt.in))
		if tt.code != "" {
			if perr == nil || perr.Code != tt.code || perr.ID != tt.id {
				t.Errorf("%s: err %+v, want code %s id %q", tt.in, perr, tt.code, tt.id)
			}
			continue
		}
		if perr != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v %v, want %+v", tt.in, got, perr, tt.want)
		}
	}
}

// FuzzDecodeCommand: the decoder never panics, refusals carry a known code
// and a bounded id, and an accepted command re-encodes to itself.
func FuzzDecodeCommand(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping","id":"p1"}`, `{"type":"subscribe","id":"c1","node":"/finesse/api/Team/10/Users"}`,
		`{"type":"resume","since":40,"stream":"00ff"}`, `{"type":"unsubscribe","node":"x"}`, `{not json`,
		`{"type":"resume","since":1e3}`, `[{"type":"ping"}]`, `{"type":"ping","type":"resume"}`,
	} {
		f.Add([]byte(s))
	}
	codes := map[string]bool{CodeBadRequest: true, CodeUnknownType: true}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, perr := decodeCommand(b)
		if perr != nil {
			if !codes[perr.Code] || len(perr.ID) > maxIDLen || perr.Message == "" {
				t.Fatalf("bad refusal %+v", perr)
			}
			if !json.Valid(errorFrame(perr)) {
				t.Fatalf("error frame not JSON: %s", errorFrame(perr))
			}
			return
		}
		if len(c.ID) > maxIDLen || len(c.Node) > maxNodeLen || len(c.Stream) > maxStreamLen {
			t.Fatalf("over-long field accepted: %+v", c)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, perr := decodeCommand(again)
		if perr != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip %s → %+v %v, want %+v", again, c2, perr, c)
		}
	})
}
