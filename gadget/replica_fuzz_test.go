package gadget

import (
	"reflect"
	"testing"
)

// FuzzDecodeMessage: DecodeMessage never panics, and what it decodes
// encodes to bytes that decode to the same Message.
func FuzzDecodeMessage(f *testing.F) {
	msgs, _ := ownerMessages(f)
	for _, m := range msgs {
		f.Add(EncodeMessage(m))
	}
	f.Add([]byte(`{"v":1,"s":3,"k":4,"r":"x","i":{"agent":"a\u2028","roles":[],"allowed":["b","a","b"]}}`))
	f.Add([]byte(`{"v":1,"s":2,"k":2,"n":"n","f":{"type":"state","seq":2,"node":"n","data":{ "a" : 1 }},"st":{ "a" : 1 }}`))
	f.Add([]byte(`{"v":1,"s":0,"k":3,"u":{},"f":{"type":"status","seq":0,"upstream":"","side":"","host":""}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		enc := EncodeMessage(m)
		m2, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", enc, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoded message differs:\n%+v\n%+v", m, m2)
		}
	})
}

// FuzzDecodeSnapshot: DecodeSnapshot never panics, and what it decodes
// encodes to bytes that decode to the same Snapshot.
func FuzzDecodeSnapshot(f *testing.F) {
	_, snap := ownerMessages(f)
	f.Add(EncodeSnapshot(snap))
	f.Add(EncodeSnapshot(Snapshot{ID: "x", Seq: -1}))
	f.Add([]byte(`{"v":1,"id":"a","s":1,"i":{"agent":"1","allowed":["z","a"]},"u":{"upstream":"up"},"e":true,"r":"signed_out"}`))
	f.Add([]byte(`{"v":1,"id":"a","s":1,"i":{},"nodes":[{"n":"x","st":null},{"n":"y","st":[ 1, 2 ]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSnapshot(b)
		if err != nil {
			return
		}
		enc := EncodeSnapshot(s)
		s2, err := DecodeSnapshot(enc)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", enc, err)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("re-encoded snapshot differs:\n%+v\n%+v", s, s2)
		}
	})
}
