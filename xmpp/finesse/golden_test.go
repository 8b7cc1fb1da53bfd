package finesse

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json")

// notificationContent finds the first pubsub <items node=...><item>
// <notification> in a message stanza and returns the node and the raw bytes
// between <notification ...> and </notification>, as an XMPP client reading
// the stream sees them.
func notificationContent(t testing.TB, stanza []byte) (node string, inner []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(stanza))
	var start int64 = -1
	depth := 0
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("stanza: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if el.Name.Local == "items" {
				for _, a := range el.Attr {
					if a.Name.Local == "node" {
						node = a.Value
					}
				}
			}
			if start >= 0 {
				depth++
			} else if el.Name.Local == "notification" {
				start = d.InputOffset()
			}
		case xml.EndElement:
			if start >= 0 {
				if depth == 0 {
					return node, stanza[start:off]
				}
				depth--
			}
		}
	}
}

// golden is one sample of the reference, with what it must decode to.
type golden struct {
	file  string
	node  string // empty for a REST body
	kind  string // Kind of the decoded data, "" for none
	event Event
	check func(t *testing.T, u Update, o Object)
}

var goldens = []golden{
	{file: "f01_user_ready_stanza.xml", kind: KindUser, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		user := o.(*User)
		eq(t, "node", u.Node, "/finesse/api/User/1001001")
		eq(t, "requestId", u.RequestID, "3f2a9c1e-77b0-4d62-a1f3-5e9d0c8b6a21")
		eq(t, "state", user.State, "READY")
		eq(t, "loginName", user.LoginName, "asilva")
		eq(t, "roles", strings.Join(user.Roles, ","), "Agent")
		eq(t, "wrapUpOnIncoming", user.Settings.WrapUpOnIncoming, "OPTIONAL")
		eq(t, "reasonCodeId", user.ReasonCodeID, "-1")
		eq(t, "dialogs", user.Dialogs, "/finesse/api/User/1001001/Dialogs")
	}},
	{file: "f02_dialogs_post_alerting.xml", node: "/finesse/api/User/1001001/Dialogs", kind: KindDialogs, event: EventPost, check: func(t *testing.T, u Update, o Object) {
		ds := o.(*Dialogs).Dialogs
		if len(ds) != 1 {
			t.Fatalf("%d dialogs, want 1", len(ds))
		}
		d := ds[0]
		eq(t, "id", d.ID, "16817001")
		eq(t, "DNIS", d.MediaProperties.DNIS, "1001001")
		eq(t, "queueName", d.MediaProperties.QueueName, "Sales_SG")
		eq(t, "callvar", d.MediaProperties.CallVariables[1].Name+"="+d.MediaProperties.CallVariables[1].Value, "user.CustomerTier=Gold")
		eq(t, "actions", strings.Join(d.Participants[1].Actions, ","), "UPDATE_CALL_DATA,DROP")
		eq(t, "participant state", d.Participants[0].State, "ALERTING")
		if !IsCollection(u.Source, u.Node) {
			t.Error("a POST with source = the Dialogs node is a collection change")
		}
	}},
	{file: "f03_dialog_put_active.xml", node: "/finesse/api/User/1001001/Dialogs", kind: KindDialog, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		d := o.(*Dialog)
		eq(t, "state", d.State, "ACTIVE")
		eq(t, "actions", len(d.Participants[0].Actions), 6)
		if d.MediaProperties.CallVariables != nil {
			t.Errorf("empty <callvariables/> gave %v, want nil", d.MediaProperties.CallVariables)
		}
		if IsCollection(u.Source, u.Node) {
			t.Error("a PUT with source Dialog/{id} is an item update")
		}
	}},
	{file: "f04_dialog_put_dropped.xml", node: "/finesse/api/User/1001001/Dialogs", kind: KindDialog, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		d := o.(*Dialog)
		eq(t, "state", d.State, "DROPPED")
		eq(t, "agent", d.Participants[0].State, "WRAP_UP")
		if d.Participants[1].Actions != nil {
			t.Errorf("<actions/> gave %v, want nil", d.Participants[1].Actions)
		}
	}},
	{file: "f05_dialogs_delete.xml", node: "/finesse/api/User/1001001/Dialogs", kind: KindDialogs, event: EventDelete, check: func(t *testing.T, u Update, o Object) {
		ds := o.(*Dialogs).Dialogs
		eq(t, "id", ds[0].ID, "16817001")
		if ds[0].Participants != nil {
			t.Errorf("<participants/> gave %v, want nil", ds[0].Participants)
		}
	}},
	{file: "f06_team_user_put.xml", node: "/finesse/api/Team/5000/Users", kind: KindUser, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		user := o.(*User)
		eq(t, "state", user.State, "NOT_READY")
		eq(t, "reason", user.ReasonCode.Label, "Team Meeting")
		eq(t, "reason id", user.ReasonCode.ID, "16")
		if user.Settings != nil {
			t.Error("a summary user without <settings> has Settings")
		}
	}},
	{file: "f07_dialog_apierrors.xml", node: "/finesse/api/User/1001001/Dialogs", kind: KindAPIErrors, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		e := o.(*APIErrors).Errors[0]
		eq(t, "errorData", e.ErrorData, "34")
		eq(t, "errorMessage", e.ErrorMessage, "CF_RESOURCE_OUT_OF_SERVICE")
		eq(t, "errorType", e.ErrorType, "Call Operation Failure")
		eq(t, "source", u.Source, "/finesse/api/Dialog/16817001")
	}},
	{file: "f08_user_apierrors.xml", node: "/finesse/api/User/1001001", kind: KindAPIErrors, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		eq(t, "error", o.(*APIErrors).Error(), "finesse: Device Busy: E_CTI_DEVICE_IN_USE (10)")
	}},
	{file: "f09_systeminfo_out_of_service.xml", node: "/finesse/api/SystemInfo", kind: KindSystemInfo, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		si := o.(*SystemInfo)
		eq(t, "status", si.Status, "OUT_OF_SERVICE")
		eq(t, "reason", si.StatusReason, "CTI connection lost")
		eq(t, "pubsub", si.XMPPPubSubDomain, "pubsub.finesse-a.lab.local")
		eq(t, "secondary", si.SecondaryNode.Host, "finesse-b.lab.local")
		eq(t, "port", si.PrimaryNode.HTTPSPort, 0)
	}},
	{file: "f10_queue_statistics.xml", node: "/finesse/api/Queue/5022", kind: KindQueue, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		q := o.(*Queue)
		eq(t, "id from uri", q.ID, "5022")
		eq(t, "callsInQueue", q.Statistics.CallsInQueue, 3)
		eq(t, "talking in", q.Statistics.AgentsTalkingInbound, 5)
		eq(t, "longest", q.Statistics.StartTimeOfLongestCallInQueue, "2025-03-04T09:29:41Z")
	}},
	{file: "n_user_inline_stanza.xml", kind: KindUser, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		eq(t, "node", u.Node, "/finesse/api/User/215194")
		eq(t, "firstName", o.(*User).FirstName, "Tom & Jerry")
	}},
	{file: "n_lowercase_variant.xml", node: "/finesse/api/User/1001001", kind: KindUser, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		eq(t, "requestId trimmed", u.RequestID, "7f00-aa")
		eq(t, "state", o.(*User).State, "READY")
		eq(t, "roles", strings.Join(o.(*User).Roles, ","), "Agent")
	}},
	{file: "n_user_deleted.xml", node: "/finesse/api/Team/5000/Users", event: EventDelete, check: func(t *testing.T, u Update, o Object) {
		if u.Data != nil || o != nil {
			t.Errorf("no <data>: Data %q, object %v", u.Data, o)
		}
		eq(t, "source", u.Source, "/finesse/api/User/1001009")
	}},
	{file: "n_media_minimal.xml", node: "/finesse/api/User/1001001/Media/5001", kind: KindMedia, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		m := o.(*Media)
		eq(t, "mrdId", m.MRDID, "5001")
		eq(t, "state", m.State, "READY")
		eq(t, "signed in", m.SignedIn(), true)
	}},
	{file: "n_team_full.xml", node: "/finesse/api/Team/5000/Users", kind: KindTeam, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		eq(t, "users", o.(*Team).Users[0].State, "READY")
	}},
	{file: "n_media_apierrors.xml", node: "/finesse/api/User/1001001/Media/5001", kind: KindAPIErrors, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		eq(t, "errorMedia", o.(*APIErrors).Errors[0].ErrorMedia, "5001")
	}},
	// Samples written from Cisco's developer guide (each file cites its page).
	{file: "dg_dialogs_media_post.xml", node: "/finesse/api/User/1001004/Dialogs/Media", kind: KindDialogs, event: EventPost, check: func(t *testing.T, u Update, o Object) {
		d := o.(*Dialogs).Dialogs[0]
		eq(t, "id", d.ID, "151635_312_1")
		eq(t, "mediaType", d.MediaType, "Cisco_Chat_MRD")
		eq(t, "mediaId", d.MediaProperties.MediaID, "5002")
		eq(t, "state", d.State, "OFFERED")
		eq(t, "action", strings.Join(d.Participants[0].Actions, ","), "ACCEPT")
		if !IsCollection(u.Source, u.Node) {
			t.Error("a POST from Media/{mrdId}/Dialogs on Dialogs/Media is a collection change")
		}
		n, err := ParseNode(u.Source)
		eq(t, "source kind", n.Kind, NodeMRDDialogs)
		eq(t, "source mrd", n.MediaID, "5002")
		if err != nil {
			t.Error(err)
		}
	}},
	{file: "dg_systeminfo_maintenance.xml", node: "/finesse/api/SystemInfo", kind: KindSystemInfo, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		si := o.(*SystemInfo)
		eq(t, "finesseMMode", si.FinesseMMode, "IN_PROGRESS")
		eq(t, "finesseTimeInMMode", si.FinesseTimeInMMode, 42)
		eq(t, "ctiTimeInMMode", si.CTITimeInMMode, -1)
		eq(t, "ctiVersion", si.CTIVersion, 24)
		eq(t, "heartbeat interval", si.CTIHeartbeatInterval, 5)
		eq(t, "heartbeat status", si.LastCTIHeartbeatStatus, "success")
		eq(t, "heartbeat time", si.LastSuccessCTIHeartbeatTime, "1741086000000")
		eq(t, "license", si.License, "UCCE_PREMIUM")
		eq(t, "peripheralId", si.PeripheralID, "5000")
		eq(t, "cti servers", len(si.CTIServers), 2)
		eq(t, "active", si.CTIServers[0].Active, true)
		eq(t, "connected", si.CTIServers[0].ConnectedDuration, 86400)
		eq(t, "in maintenance", si.InMaintenance(), true)
		eq(t, "usable", si.Usable(), false)
	}},
	{file: "dg_media_put.xml", node: "/finesse/api/User/1001004/Media/5000", kind: KindMedia, event: EventPut, check: func(t *testing.T, u Update, o Object) {
		m := o.(*Media)
		eq(t, "id", m.ID, "1001004")
		eq(t, "mrdId", m.MRDID, "5000")
		eq(t, "mediaConnected", m.MediaConnected, true)
		eq(t, "interruptible", m.Interruptible, true)
		eq(t, "maxDialogLimit", m.MaxDialogLimit, 3)
		eq(t, "interruptAction", m.InterruptAction, "ACCEPT")
		eq(t, "routable", m.Routable, true)
		eq(t, "requestId", u.RequestID, "7c1e2d3f-0000-4a5b-8c9d-112233445566")
	}},
	{file: "dg_dialog_voice_rest.xml", kind: KindDialog, check: func(t *testing.T, _ Update, o Object) {
		d := o.(*Dialog)
		eq(t, "secondaryId", d.SecondaryID, "16817043")
		eq(t, "callbackNumber", d.CallbackNumber, "9785551212")
		eq(t, "wrapUpItems", strings.Join(d.MediaProperties.WrapUpItems, "|"), "Wrong number|Satisfied Customer")
		eq(t, "callbackTime", d.ScheduledCallbackInfo.CallbackTime, "2025-03-07T14:30")
		eq(t, "callback number", d.ScheduledCallbackInfo.CallbackNumber, "9785551212")
		if d.Extra != nil || d.MediaProperties.Extra != nil {
			t.Errorf("documented fields left in extra: %v %v", d.Extra, d.MediaProperties.Extra)
		}
	}},
	{file: "dg_user_mobile_agent_rest.xml", kind: KindUser, check: func(t *testing.T, _ Update, o Object) {
		u := o.(*User)
		eq(t, "mode", u.MobileAgent.Mode, "CALL_BY_CALL")
		eq(t, "dialNumber", u.MobileAgent.DialNumber, "4085551234")
		eq(t, "skillTargetId", u.SkillTargetID, "6067")
		eq(t, "deviceSelection", u.Settings.DeviceSelection, "enabled")
		eq(t, "services", strings.Join(u.Services, ","), "AgentAnswers")
		if u.Extra != nil {
			t.Errorf("documented fields left in extra: %v", u.Extra)
		}
	}},
	{file: "dg_media_rest.xml", kind: KindMedia, check: func(t *testing.T, _ Update, o Object) {
		m := o.(*Media)
		eq(t, "mrdId from uri", m.MRDID, "5000")
		eq(t, "description unescaped once", m.Description, "Chat MRD & co-browse")
		eq(t, "reason", m.ReasonCode.Label, "Team Meeting")
		eq(t, "reasonCodeId", m.ReasonCodeID, "16")
		eq(t, "state", m.State, "NOT_READY")
		eq(t, "dialogLogoutAction", m.DialogLogoutAction, "CLOSE")
		if m.Extra != nil {
			t.Errorf("documented fields left in extra: %v", m.Extra)
		}
	}},
	{file: "dg_medialist_rest.xml", kind: KindMediaList, check: func(t *testing.T, _ Update, o Object) {
		ms := o.(*MediaList).Media
		eq(t, "media", len(ms), 2)
		eq(t, "chat", ms[0].Name, "Cisco_Chat_MRD")
		eq(t, "not assigned: no state", ms[1].State, "")
		eq(t, "not assigned: signed in", ms[1].SignedIn(), false)
		eq(t, "mrdId", ms[1].MRDID, "5002")
	}},
	{file: "dg_team_rest.xml", kind: KindTeam, check: func(t *testing.T, _ Update, o Object) {
		tm := o.(*Team)
		eq(t, "lower-case reasonCode", tm.Users[1].ReasonCode.Label, "Lunch Break")
		eq(t, "dialogs", tm.Users[0].Dialogs, "/finesse/api/User/1001001/Dialogs")
		if tm.Users[0].ReasonCode != nil {
			t.Error("a LOGOUT member has a reason code")
		}
	}},
	{file: "n_apierrors_overrideable.xml", kind: KindAPIErrors, check: func(t *testing.T, _ Update, o Object) {
		e := o.(*APIErrors).Errors[0]
		eq(t, "overrideable", e.Overrideable, true)
		eq(t, "extra", len(e.Extra), 1)
		eq(t, "extra xml", e.Extra[0].XML, "<PeripheralErrorCode>12</PeripheralErrorCode>")
	}},
	// REST bodies.
	{file: "c2_apierrors_rest.xml", kind: KindAPIErrors, check: func(t *testing.T, _ Update, o Object) {
		e := o.(*APIErrors).Errors[0]
		eq(t, "type", e.ErrorType, "Authentication Failure")
		eq(t, "message", e.ErrorMessage, "UNAUTHORIZED")
		eq(t, "data", e.ErrorData, "jsmith")
	}},
	{file: "rest_user_supervisor.xml", kind: KindUser, check: func(t *testing.T, _ Update, o Object) {
		u := o.(*User)
		eq(t, "roles", strings.Join(u.Roles, ","), "Agent,Supervisor")
		eq(t, "teams", len(u.Teams), 2)
		eq(t, "team name unescaped once", u.Teams[1].Name, "Sales & Retention")
		eq(t, "forAll", u.ReasonCode.ForAll, true)
		eq(t, "wrapUpOnOutgoing", u.Settings.WrapUpOnOutgoing, "NOT_ALLOWED")
		eq(t, "wrapUpTimer", u.WrapUpTimer, "60")
	}},
	{file: "rest_dialogs.xml", kind: KindDialogs, check: func(t *testing.T, _ Update, o Object) {
		d := o.(*Dialogs).Dialogs[0]
		eq(t, "callKeyPrefix", d.MediaProperties.CallKeyPrefix, "153460")
		eq(t, "empty value", d.MediaProperties.CallVariables[1].Value, "")
	}},
	{file: "rest_dialogs_empty.xml", kind: KindDialogs, check: func(t *testing.T, _ Update, o Object) {
		if o.(*Dialogs).Dialogs != nil {
			t.Error("<Dialogs/> gave dialogs")
		}
	}},
	{file: "rest_team.xml", kind: KindTeam, check: func(t *testing.T, _ Update, o Object) {
		tm := o.(*Team)
		eq(t, "users", len(tm.Users), 2)
		eq(t, "lower-case reasonCode", tm.Users[0].ReasonCode.Code, "10")
	}},
	{file: "rest_queue.xml", kind: KindQueue, check: func(t *testing.T, _ Update, o Object) {
		eq(t, "loggedOn", o.(*Queue).Statistics.AgentsLoggedOn, 13)
	}},
	{file: "rest_queues.xml", kind: KindQueues, check: func(t *testing.T, _ Update, o Object) {
		qs := o.(*Queues).Queues
		eq(t, "unassigned", qs[0].Statistics.CallsInQueue, -1)
		eq(t, "id", qs[1].ID, "5023")
		if qs[1].Statistics != nil {
			t.Error("a queue without <statistics> has Statistics")
		}
	}},
	{file: "rest_systeminfo.xml", kind: KindSystemInfo, check: func(t *testing.T, _ Update, o Object) {
		si := o.(*SystemInfo)
		eq(t, "secure port", si.SecondaryNode.XMPPSecurePort, 5223)
		eq(t, "auth", si.SystemAuthMode, "SSO")
	}},
	{file: "rest_reasoncodes.xml", kind: KindReasonCodes, check: func(t *testing.T, _ Update, o Object) {
		rc := o.(*ReasonCodes).ReasonCodes
		eq(t, "systemCode TRUE", rc[1].SystemCode, true)
		eq(t, "label", rc[1].Label, "Supervisor Initiated")
	}},
}

func eq[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// decodeGolden decodes one sample the way the relay would: a stanza through
// ParseNotification, an Update document through ParseUpdate, a REST body
// through DecodeData.
func decodeGolden(t *testing.T, g golden) (Update, Object) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", g.file))
	if err != nil {
		t.Fatal(err)
	}
	var u Update
	switch {
	case bytes.Contains(raw, []byte("<message")):
		node, inner := notificationContent(t, raw)
		u, err = ParseNotification(node, inner)
	case g.node != "":
		u, err = ParseUpdate(g.node, raw)
	default:
		u.Data = raw
	}
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	o, err := DecodeData(u.Data)
	if err != nil {
		t.Fatalf("DecodeData: %v", err)
	}
	return u, o
}

func TestGoldenSamples(t *testing.T) {
	for _, g := range goldens {
		t.Run(strings.TrimSuffix(g.file, ".xml"), func(t *testing.T) {
			u, o := decodeGolden(t, g)
			if g.event != "" {
				eq(t, "event", u.Event, g.event)
			}
			kind := ""
			if o != nil {
				kind = o.Kind()
			}
			eq(t, "kind", kind, g.kind)
			g.check(t, u, o)

			got, err := json.MarshalIndent(map[string]any{
				"node": u.Node, "event": u.Event, "source": u.Source, "requestId": u.RequestID, "data": o,
			}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", strings.TrimSuffix(g.file, ".xml")+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("JSON differs from %s:\n%s", path, got)
			}
		})
	}
}

// TestGoldenRoundTrip checks, for every sample, that the object survives
// both XML forms and JSON, and that the Update survives EncodeUpdate.
func TestGoldenRoundTrip(t *testing.T) {
	for _, g := range goldens {
		t.Run(strings.TrimSuffix(g.file, ".xml"), func(t *testing.T) {
			u, o := decodeGolden(t, g)
			if g.event != "" {
				back, err := ParseUpdate(u.Node, EncodeUpdate(u))
				if err != nil {
					t.Fatalf("ParseUpdate(EncodeUpdate): %v", err)
				}
				assertEqual(t, "Update", back, u)
			}
			if o == nil {
				return
			}
			assertObjectRoundTrip(t, o)
		})
	}
}

// TestPresenceSampleIsNotAnUpdate: F.11 is a presence stanza, which the
// xmpp package handles; as an Update it must be refused cleanly.
func TestPresenceSampleIsNotAnUpdate(t *testing.T) {
	raw, err := os.ReadFile("testdata/f11_presence.xml")
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(raw))
	var presences int
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("F.11 is not well-formed: %v", err)
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "presence" {
			presences++
		}
	}
	eq(t, "presences", presences, 2)
	if _, err := ParseUpdate(SystemInfoNode, raw); !errors.Is(err, ErrMalformedUpdate) {
		t.Errorf("ParseUpdate(presence) error %v, want ErrMalformedUpdate", err)
	}
}
