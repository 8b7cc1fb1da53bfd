package finesse

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// seeds adds every testdata sample (the Update document, or the
// notification content of a stanza) to f.
func seeds(f *testing.F, add func(b []byte)) {
	files, _ := filepath.Glob("testdata/*.xml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if bytes.Contains(b, []byte("<message")) {
			_, b = notificationContent(f, b)
		}
		add(b)
	}
}

func FuzzParseUpdate(f *testing.F) {
	seeds(f, func(b []byte) { f.Add(b) })
	f.Add([]byte(`<update><event>put</event><data><x/></data></update>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		u, err := ParseUpdate("/n", doc)
		if err != nil {
			if !errors.Is(err, ErrMalformedUpdate) {
				t.Fatalf("error %v does not wrap ErrMalformedUpdate", err)
			}
			return
		}
		if len(u.Data) > len(doc) {
			t.Fatalf("Data longer than the document")
		}
		back, err := ParseUpdate("/n", EncodeUpdate(u))
		if err != nil {
			t.Fatalf("ParseUpdate(EncodeUpdate(u)): %v\n%s", err, EncodeUpdate(u))
		}
		assertEqual(t, "round trip", back, u)
	})
}

func FuzzParseNotification(f *testing.F) {
	seeds(f, func(b []byte) {
		f.Add(b)
		f.Add([]byte(escape(string(b))))
	})
	f.Add([]byte("<![CDATA[<Update><event>PUT</event></Update>]]>"))
	f.Fuzz(func(t *testing.T, content []byte) {
		u, err := ParseNotification("/n", content)
		if err != nil {
			if !errors.Is(err, ErrMalformedUpdate) {
				t.Fatalf("error %v does not wrap ErrMalformedUpdate", err)
			}
			return
		}
		// Whatever parsed must parse the same when carried the Cisco way.
		doc := EncodeUpdate(u)
		back, err := ParseNotification("/n", []byte(escape(string(doc))))
		if err != nil {
			t.Fatalf("escaped EncodeUpdate(u): %v\n%s", err, doc)
		}
		assertEqual(t, "round trip", back, u)
	})
}

func FuzzDecodeData(f *testing.F) {
	seeds(f, func(b []byte) {
		if u, err := ParseUpdate("/n", b); err == nil && len(u.Data) > 0 {
			f.Add(u.Data)
		} else {
			f.Add(b)
		}
	})
	f.Add([]byte(`<Queue><statistics><callsInQueue>-1</callsInQueue></statistics></Queue>`))
	f.Add([]byte(`<user><future a="1">x<y>&amp;</y>z</future><mobileAgent><mode/></mobileAgent></user>`))
	f.Add([]byte(`<MediaList><Media><maxDialogLimit>3</maxDialogLimit><routable>true</routable></Media></MediaList>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := DecodeData(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedData) {
				t.Fatalf("error %v does not wrap ErrMalformedData", err)
			}
			return
		}
		if o == nil {
			return
		}
		assertObjectRoundTrip(t, o)
	})
}

func FuzzParseNode(f *testing.F) {
	for _, s := range []string{SystemInfoNode, DialogsNode("1"), MediaNode("1", "2"), TeamUsersNode("5"), "/finesse/api/User/a/b/c",
		MediaListURI("1"), MRDDialogsURI("1", "5001"), MediaDialogsNode("1")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		n, err := ParseNode(path)
		if err != nil {
			return
		}
		back, err := ParseNode(n.String())
		if err != nil || back != n {
			t.Fatalf("ParseNode(%q) = %+v; its String %q gives %+v, %v", path, n, n.String(), back, err)
		}
	})
}
