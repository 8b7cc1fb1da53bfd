package xmppd

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"finesse-relay/server/sim/boshd"
)

// TestBOSH runs a whole session through the simulator's BOSH connection
// manager (ModeSecure): creation, SASL, restart, bind, presence, an event
// in a long-poll response, terminate.
func TestBOSH(t *testing.T) {
	s := newTestServer(t, nil)
	bosh := boshd.New(boshd.Config{Domain: testDomain, Wait: 2 * time.Second})
	serveOn(t, s, bosh, ModeSecure) // Serve closes bosh when it returns
	hs := httptest.NewServer(bosh)
	t.Cleanup(hs.Close)

	const nsBind = "http://jabber.org/protocol/httpbind"
	rid := 1000
	var sid string
	post := func(attrs, payload string) (*xnode, string) {
		t.Helper()
		rid++
		body := fmt.Sprintf("<body xmlns='%s' rid='%d' sid='%s'%s>%s</body>", nsBind, rid, sid, attrs, payload)
		if sid == "" {
			body = fmt.Sprintf("<body xmlns='%s' xmlns:xmpp='urn:xmpp:xbosh' content='text/xml; charset=utf-8' hold='1' rid='%d' to='%s' ver='1.6' wait='2' xmpp:version='1.0'/>",
				nsBind, rid, testDomain)
		}
		resp, err := http.Post(hs.URL+"/http-bind", "text/xml; charset=utf-8", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: %d %v %s", resp.StatusCode, err, raw)
		}
		var n xnode
		if err := xml.Unmarshal(raw, &n); err != nil {
			t.Fatalf("response %s: %v", raw, err)
		}
		return &n, string(raw)
	}

	n, raw := post("", "")
	sid = n.get("sid")
	if sid == "" || n.path("features", "mechanisms") == nil {
		t.Fatalf("creation: %s", raw)
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x001001\x00tok-1001"))
	if n, raw = post("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+plain+"</auth>"); n.child("success") == nil {
		t.Fatalf("auth: %s", raw)
	}
	if n, raw = post(" xmlns:xmpp='urn:xmpp:xbosh' xmpp:restart='true' to='"+testDomain+"'", ""); n.path("features", "bind") == nil {
		t.Fatalf("restart: %s", raw)
	}
	n, raw = post("", "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>relay</resource></bind></iq>")
	if j := n.path("iq", "bind", "jid"); j == nil || j.Text != "1001@"+testDomain+"/relay" {
		t.Fatalf("bind: %s", raw)
	}
	if n, raw = post("", "<presence xmlns='jabber:client'><priority>0</priority></presence>"); n.child("presence").get("from") != "finesse@"+testDomain+"/server" {
		t.Fatalf("presence: %s", raw)
	}
	doc := updateDoc("1001", "READY")
	s.Publish("/finesse/api/User/1001", doc)
	n, raw = post("", "")
	msg := n.child("message")
	if msg == nil || msg.XMLName.Space != nsClient || msg.path("event", "items", "item", "notification").Text != string(doc) {
		t.Fatalf("event: %s", raw)
	}
	n, raw = post(" type='terminate'", "<presence xmlns='jabber:client' type='unavailable'/>")
	if n.get("type") != "terminate" {
		t.Fatalf("terminate: %s", raw)
	}
	eventually(t, "session gone", func() bool { return !s.Available("1001") && len(s.sessionsOf("1001")) == 0 })
}
