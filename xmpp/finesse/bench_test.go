package finesse

import (
	"os"
	"testing"
)

func readSample(b *testing.B, name string) []byte {
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkParseNotification is the relay's per-event envelope cost: the
// escaped F.1 User notification, as the xmpp client hands it over.
func BenchmarkParseNotification(b *testing.B) {
	node, content := notificationContent(b, readSample(b, "f01_user_ready_stanza.xml"))
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseNotification(node, content); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseNotificationInline is the same Update sent as inline XML.
func BenchmarkParseNotificationInline(b *testing.B) {
	node, content := notificationContent(b, readSample(b, "f01_user_ready_stanza.xml"))
	u, err := ParseNotification(node, content)
	if err != nil {
		b.Fatal(err)
	}
	inline := EncodeUpdate(u)
	b.SetBytes(int64(len(inline)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseNotification(node, inline); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecodeData(b *testing.B, file, node string) {
	u, err := ParseUpdate(node, readSample(b, file))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(u.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeData(u.Data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeDataUser decodes the F.6 team-member user.
func BenchmarkDecodeDataUser(b *testing.B) {
	benchDecodeData(b, "f06_team_user_put.xml", "/finesse/api/Team/5000/Users")
}

// BenchmarkDecodeDataDialogs decodes the F.2 new-call Dialogs (two
// participants, two call variables).
func BenchmarkDecodeDataDialogs(b *testing.B) {
	benchDecodeData(b, "f02_dialogs_post_alerting.xml", "/finesse/api/User/1001001/Dialogs")
}

func BenchmarkEncodeUpdate(b *testing.B) {
	u, err := ParseUpdate("/finesse/api/User/1001001/Dialogs", readSample(b, "f02_dialogs_post_alerting.xml"))
	if err != nil {
		b.Fatal(err)
	}
	o, err := DecodeData(u.Data)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		data, err := EncodeData(o)
		if err != nil {
			b.Fatal(err)
		}
		u.Data = data
		_ = EncodeUpdate(u)
	}
}
