package xmppd

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// supervisorAuth lets 2001 subscribe to team 10's users and queue 5001;
// team 77 does not exist.
func supervisorAuth(user, node string) error {
	switch {
	case node == "/finesse/api/Team/77/Users":
		return fmt.Errorf("team 77: %w", ErrItemNotFound)
	case user == "2001" && (node == "/finesse/api/Team/10/Users" || node == "/finesse/api/Queue/5001"):
		return nil
	}
	return ErrForbidden
}

// TestSubscribeErrors: refused subscribe and unsubscribe requests get the
// XEP-0060 stanza errors.
func TestSubscribeErrors(t *testing.T) {
	full := "2001@" + testDomain + "/relay"
	tests := []struct {
		name, typ, payload string
		nilAuthorize       bool
		want               string
	}{
		{"team not supervised", "set", `<subscribe node='/finesse/api/Team/11/Users' jid='` + full + `'/>`, false, "forbidden"},
		{"no such team", "set", `<subscribe node='/finesse/api/Team/77/Users' jid='` + full + `'/>`, false, "item-not-found"},
		{"not a Finesse node", "set", `<subscribe node='/foo/bar' jid='` + full + `'/>`, false, "item-not-found"},
		{"resource URI, not a node", "set", `<subscribe node='/finesse/api/Team/10' jid='` + full + `'/>`, false, "item-not-found"},
		{"node not canonical", "set", `<subscribe node='/finesse/api/team/10/users' jid='` + full + `'/>`, false, "item-not-found"},
		{"someone else's JID", "set", `<subscribe node='/finesse/api/Team/10/Users' jid='1001@` + testDomain + `'/>`, false, "forbidden"},
		{"another resource of mine", "set", `<subscribe node='/finesse/api/Team/10/Users' jid='2001@` + testDomain + `/other'/>`, false, "forbidden"},
		{"no jid", "set", `<subscribe node='/finesse/api/Team/10/Users'/>`, false, "bad-request+jid-required"},
		{"bad jid", "set", `<subscribe node='/finesse/api/Team/10/Users' jid='@x'/>`, false, "bad-request+invalid-jid"},
		{"no node", "set", `<subscribe jid='` + full + `'/>`, false, "bad-request+nodeid-required"},
		{"empty pubsub", "set", ``, false, "bad-request"},
		{"publish", "set", `<publish node='/finesse/api/Team/10/Users'/>`, false, "feature-not-implemented"},
		{"subscribe with get", "get", `<subscribe node='/finesse/api/Team/10/Users' jid='` + full + `'/>`, false, "feature-not-implemented"},
		{"default rule: team", "set", `<subscribe node='/finesse/api/Team/10/Users' jid='` + full + `'/>`, true, "forbidden"},
		{"default rule: another user", "set", `<subscribe node='/finesse/api/User/1001/Dialogs/Media' jid='` + full + `'/>`, true, "forbidden"},
		{"unsubscribe not subscribed", "set", `<unsubscribe node='/finesse/api/Team/10/Users' jid='` + full + `'/>`, false, "unexpected-request+not-subscribed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, func(c *Config) {
				if !tt.nilAuthorize {
					c.AuthorizeSubscribe = supervisorAuth
				}
			})
			c := connect(t, s, "secure")
			c.login("2001", "relay")
			n := c.pubsubIQ(tt.typ, "q", tt.payload)
			if got := stanzaError(n); got != tt.want {
				t.Fatalf("error %q, want %q", got, tt.want)
			}
			if n.get("from") != testPubSub {
				t.Fatalf("from %q", n.get("from"))
			}
			if subs := s.Subscriptions("/finesse/api/Team/10/Users"); len(subs) != 0 {
				t.Fatalf("stored %v", subs)
			}
		})
	}
}

// TestSubscribePublishUnsubscribe: an explicit full-JID subscription
// delivers to that session only (addressed to the full JID), is listed,
// and ends with unsubscribe.
func TestSubscribePublishUnsubscribe(t *testing.T) {
	const node = "/finesse/api/Team/10/Users"
	s := newTestServer(t, func(c *Config) { c.AuthorizeSubscribe = supervisorAuth })
	sup := connect(t, s, "secure")
	full := sup.login("2001", "relay")
	other := connect(t, s, "websocket") // the same supervisor's desktop
	other.login("2001", "desktop")
	for _, c := range []*rawClient{sup, other} {
		c.presence(0)
		c.expectServicePresence(true)
	}

	n := sup.pubsubIQ("set", "s1", `<subscribe node='`+node+`' jid='`+full+`'/>`)
	sub := n.path("pubsub", "subscription")
	if n.get("type") != "result" || sub == nil || sub.get("node") != node || sub.get("jid") != full || sub.get("subscription") != "subscribed" {
		t.Fatalf("subscribe answer %+v", n)
	}
	// Subscribing twice is idempotent.
	sup.pubsubIQ("set", "s2", `<subscribe node='`+node+`' jid='`+full+`'/>`)
	if got := s.Subscriptions(node); !slices.Equal(got, []string{full}) {
		t.Fatalf("Subscriptions = %v", got)
	}
	n = sup.pubsubIQ("get", "l1", `<subscriptions/>`)
	subs := n.path("pubsub", "subscriptions")
	if subs == nil || len(subs.Nodes) != 1 || subs.Nodes[0].get("node") != node || subs.Nodes[0].get("jid") != full {
		t.Fatalf("retrieve subscriptions %+v", n)
	}
	// The other session sees the same list (it belongs to the bare JID).
	if n := other.pubsubIQ("get", "l2", `<subscriptions node='`+node+`'/>`); len(n.path("pubsub", "subscriptions").Nodes) != 1 {
		t.Fatalf("other session's list %+v", n)
	}

	doc := []byte(`<Update><data><user><loginId>1001</loginId><state>READY</state></user></data><event>PUT</event><requestId></requestId><source>/finesse/api/User/1001</source></Update>`)
	s.Publish(node, doc)
	n, raw, err := sup.next()
	if err != nil {
		t.Fatal(err)
	}
	if n.get("to") != full || !strings.HasPrefix(n.get("id"), node+"__"+full+"__") ||
		n.path("event", "items", "item", "notification").Text != string(doc) {
		t.Fatalf("event %s", raw)
	}
	other.pingBarrier() // the desktop session got nothing

	if n := sup.pubsubIQ("set", "u1", `<unsubscribe node='`+node+`' jid='`+full+`'/>`); n.get("type") != "result" {
		t.Fatalf("unsubscribe %+v", n)
	}
	if got := s.Subscriptions(node); len(got) != 0 {
		t.Fatalf("Subscriptions after unsubscribe = %v", got)
	}
	s.Publish(node, doc)
	sup.pingBarrier()
	if n := sup.pubsubIQ("set", "u2", `<unsubscribe node='`+node+`' jid='`+full+`'/>`); stanzaError(n) != "unexpected-request+not-subscribed" {
		t.Fatalf("second unsubscribe %+v", n)
	}
}

// TestDefaultNodeSubscription: subscribing to one's own default node
// succeeds without storing anything, and unsubscribing cannot stop it.
func TestDefaultNodeSubscription(t *testing.T) {
	s := newTestServer(t, nil)
	c := connect(t, s, "secure")
	full := c.login("1001", "relay")
	c.presence(0)
	c.expectServicePresence(true)
	for _, node := range []string{"/finesse/api/User/1001/Dialogs", "/finesse/api/SystemInfo"} {
		if n := c.pubsubIQ("set", "s", `<subscribe node='`+node+`' jid='`+full+`'/>`); n.get("type") != "result" {
			t.Fatalf("subscribe %s: %+v", node, n)
		}
		if n := c.pubsubIQ("set", "u", `<unsubscribe node='`+node+`' jid='`+full+`'/>`); n.get("type") != "result" {
			t.Fatalf("unsubscribe %s: %+v", node, n)
		}
		if got := s.Subscriptions(node); len(got) != 0 {
			t.Fatalf("stored %v", got)
		}
		s.Publish(node, []byte("<Update/>"))
		if n := c.must(); n.path("event", "items").get("node") != node {
			t.Fatalf("no event on %s after unsubscribe", node)
		}
	}
	// The default rule allows the user's own explicit nodes.
	node := "/finesse/api/User/1001/Dialogs/Media"
	if n := c.pubsubIQ("set", "s", `<subscribe node='`+node+`' jid='1001@`+testDomain+`'/>`); n.get("type") != "result" {
		t.Fatalf("subscribe %s: %+v", node, n)
	}
	if got := s.Subscriptions(node); !slices.Equal(got, []string{"1001@" + testDomain}) {
		t.Fatalf("Subscriptions = %v", got)
	}
}

// TestSubscriptionsOutliveSessions: subscriptions are stored per JID and
// used again by a later session with the same full JID (or any session,
// for a bare-JID subscription), as in Finesse.
func TestSubscriptionsOutliveSessions(t *testing.T) {
	const team, queue = "/finesse/api/Team/10/Users", "/finesse/api/Queue/5001"
	s := newTestServer(t, func(c *Config) { c.AuthorizeSubscribe = supervisorAuth })
	addr := serve(t, s, ModeSTARTTLS)
	c := dialRaw(t, addr, false)
	full := c.login("2001", "relay")
	c.pubsubIQ("set", "s1", `<subscribe node='`+team+`' jid='`+full+`'/>`)
	c.pubsubIQ("set", "s2", `<subscribe node='`+queue+`' jid='2001@`+testDomain+`'/>`)
	c.send(`</stream:stream>`)
	c.expectEnd()
	eventually(t, "session gone", func() bool { return len(s.sessionsOf("2001")) == 0 })
	s.Publish(team, []byte("<Update/>")) // nobody available: dropped, not queued

	again := dialRaw(t, addr, false)
	again.login("2001", "relay")
	other := dialRaw(t, addr, false)
	other.login("2001", "other")
	for _, c := range []*rawClient{again, other} {
		c.presence(0)
		c.expectServicePresence(true)
	}
	s.Publish(team, []byte("<Update/>"))
	s.Publish(queue, []byte("<Update/>"))
	for _, want := range []struct{ node, to string }{{team, full}, {queue, "2001@" + testDomain}} {
		n := again.must()
		if n.path("event", "items").get("node") != want.node || n.get("to") != want.to {
			t.Fatalf("got node %s to %s, want %+v", n.path("event", "items").get("node"), n.get("to"), want)
		}
	}
	again.pingBarrier()
	if n := other.must(); n.path("event", "items").get("node") != queue {
		t.Fatalf("other session got %s", n.path("event", "items").get("node"))
	}
	other.pingBarrier()
}

// TestSubscriptionLimit: MaxSubscriptions bounds the stored subscriptions
// of one bare JID.
func TestSubscriptionLimit(t *testing.T) {
	s := newTestServer(t, func(c *Config) {
		c.MaxSubscriptions = 2
		c.AuthorizeSubscribe = func(string, string) error { return nil }
	})
	c := connect(t, s, "secure")
	full := c.login("2001", "relay")
	for i, want := range []string{"", "", "policy-violation"} {
		n := c.pubsubIQ("set", fmt.Sprint("s", i), fmt.Sprintf(`<subscribe node='/finesse/api/Queue/%d' jid='%s'/>`, i, full))
		if got := stanzaError(n); got != want {
			t.Fatalf("subscription %d: error %q, want %q", i, got, want)
		}
	}
	// Unsubscribing frees a slot.
	c.pubsubIQ("set", "u", `<unsubscribe node='/finesse/api/Queue/0' jid='`+full+`'/>`)
	if n := c.pubsubIQ("set", "s3", `<subscribe node='/finesse/api/Queue/3' jid='`+full+`'/>`); stanzaError(n) != "" {
		t.Fatalf("after unsubscribe: %s", stanzaError(n))
	}
}
