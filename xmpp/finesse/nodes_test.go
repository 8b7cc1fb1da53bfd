package finesse

import (
	"errors"
	"testing"
)

func TestNodeHelpers(t *testing.T) {
	tests := []struct{ got, want string }{
		{SystemInfoNode, "/finesse/api/SystemInfo"},
		{UserNode("1001"), "/finesse/api/User/1001"},
		{DialogsNode("1001"), "/finesse/api/User/1001/Dialogs"},
		{MediaDialogsNode("1001"), "/finesse/api/User/1001/Dialogs/Media"},
		{MediaNode("1001", "5001"), "/finesse/api/User/1001/Media/5001"},
		{MediaListURI("1001"), "/finesse/api/User/1001/Media"},
		{MRDDialogsURI("1001", "5001"), "/finesse/api/User/1001/Media/5001/Dialogs"},
		{UserQueuesNode("1001"), "/finesse/api/User/1001/Queues"},
		{TeamUsersNode("10"), "/finesse/api/Team/10/Users"},
		{TeamURI("10"), "/finesse/api/Team/10"},
		{QueueNode("5001"), "/finesse/api/Queue/5001"},
		{DialogURI("16817001"), "/finesse/api/Dialog/16817001"},
	}
	for _, tt := range tests {
		eq(t, "path", tt.got, tt.want)
	}
}

func TestParseNode(t *testing.T) {
	tests := []struct {
		path string
		want Node
	}{
		{"/finesse/api/SystemInfo", Node{Kind: NodeSystemInfo}},
		{"/finesse/api/SystemInfo/", Node{Kind: NodeSystemInfo}},
		{"/finesse/api/User/1001001", Node{Kind: NodeUser, ID: "1001001"}},
		{"/finesse/api/User/asilva@example.com", Node{Kind: NodeUser, ID: "asilva@example.com"}},
		{"/finesse/api/User/1001001/", Node{Kind: NodeUser, ID: "1001001"}},
		{"/finesse/api/User/1001001/Dialogs", Node{Kind: NodeDialogs, ID: "1001001"}},
		{"/finesse/api/User/1001001/Dialogs//", Node{Kind: NodeDialogs, ID: "1001001"}},
		{"/finesse/api/user/1001001/dialogs", Node{Kind: NodeDialogs, ID: "1001001"}},
		{"/FINESSE/API/User/AbC/Dialogs", Node{Kind: NodeDialogs, ID: "AbC"}},
		{"/finesse/api/User/1001001/Dialogs/Media", Node{Kind: NodeMediaDialogs, ID: "1001001"}},
		{"/finesse/api/User/1001001/Media/5001", Node{Kind: NodeMedia, ID: "1001001", MediaID: "5001"}},
		{"/finesse/api/User/1001001/Queues", Node{Kind: NodeUserQueues, ID: "1001001"}},
		{"/finesse/api/User/1001001/Media", Node{Kind: NodeMediaList, ID: "1001001"}},
		{"/finesse/api/User/1001001/media/", Node{Kind: NodeMediaList, ID: "1001001"}},
		{"/finesse/api/User/1001001/Media/5001/Dialogs", Node{Kind: NodeMRDDialogs, ID: "1001001", MediaID: "5001"}},
		{"/finesse/api/Dialog/16817001", Node{Kind: NodeDialog, ID: "16817001"}},
		{"/finesse/api/Team/5000", Node{Kind: NodeTeam, ID: "5000"}},
		{"/finesse/api/Team/5000/Users", Node{Kind: NodeTeamUsers, ID: "5000"}},
		{"/finesse/api/Queue/5022", Node{Kind: NodeQueue, ID: "5022"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := ParseNode(tt.path)
			if err != nil {
				t.Fatalf("ParseNode: %v", err)
			}
			assertEqual(t, "node", got, tt.want)
			back, err := ParseNode(got.String())
			if err != nil || back != got {
				t.Errorf("ParseNode(%q.String() = %q) = %v, %v", tt.path, got.String(), back, err)
			}
		})
	}
}

func TestParseNodeRejects(t *testing.T) {
	for _, path := range []string{
		"",
		"/",
		"/finesse/api/",
		"/finesse/api",
		"finesse/api/User/1",
		"/finesse/desktop/User/1",
		"https://finesse-a:8445/finesse/api/User/1",
		"/finesse/api/User",
		"/finesse/api/User/",
		"/finesse/api/User//Dialogs",
		"/finesse/api/User/1/Dialogs/2",
		"/finesse/api/User/1/Phonebooks",
		"/finesse/api/User/1/Media/5001/Extra",
		"/finesse/api/User/1/Media//Dialogs",
		"/finesse/api/User/1/Media/5001/Dialogs/2",
		"/finesse/api/User/1/Dialogs/Media/5001",
		"/finesse/api/User/1?x=y",
		"/finesse/api/User/1#f",
		"/finesse/api/User/%31",
		"/finesse/api/User/a b",
		"/finesse/api/User/a\nb",
		"/finesse/api/User/..",
		"/finesse/api/User/./Dialogs",
		"/finesse/api/User/a\\b",
		"/finesse/api/User/\xff",
		"/finesse/api/Dialog/1/Extra",
		"/finesse/api/Queue",
		"/finesse/api/Team/5/Queues",
		"/finesse/api/SystemInfo/x",
		"/finesse/api/ReasonCode/16",
	} {
		if n, err := ParseNode(path); !errors.Is(err, ErrUnknownNode) {
			t.Errorf("ParseNode(%q) = %+v, %v; want ErrUnknownNode", path, n, err)
		}
	}
}

func TestIsCollection(t *testing.T) {
	tests := []struct {
		source, node string
		want         bool
	}{
		{"/finesse/api/User/1001/Dialogs", "/finesse/api/User/1001/Dialogs", true},
		{"/finesse/api/User/1001/Dialogs/", "/finesse/api/user/1001/dialogs", true},
		{"/finesse/api/Team/5000/Users", "/finesse/api/Team/5000/Users", true},
		{"/finesse/api/User/1001/Queues", "/finesse/api/User/1001/Queues", true},
		{"/finesse/api/User/1001/Dialogs/Media", "/finesse/api/User/1001/Dialogs/Media", true},
		// Dialogs/Media notification: node Dialogs/Media, source the MRD's
		// collection (developer.cisco.com/docs/finesse/dialogsmedia-notification).
		{"/finesse/api/User/1001/Media/5001/Dialogs", "/finesse/api/User/1001/Dialogs/Media", true},
		{"/finesse/api/User/1001/Media/5001/Dialogs", "/finesse/api/User/1001/Media/5001/Dialogs", true},
		{"/finesse/api/User/1002/Media/5001/Dialogs", "/finesse/api/User/1001/Dialogs/Media", false}, // another user's
		{"/finesse/api/User/1001/Media/5001/Dialogs", "/finesse/api/User/1001/Dialogs", false},       // not the voice list
		{"/finesse/api/User/1001/Media/5001", "/finesse/api/User/1001/Media/5001", false},            // a Media state
		{"/finesse/api/User/1001/Media", "/finesse/api/User/1001/Media", false},                      // a REST list, not a node
		{"/finesse/api/Dialog/16817001", "/finesse/api/User/1001/Dialogs", false},                    // item update (F.3)
		{"/finesse/api/User/1001", "/finesse/api/Team/5000/Users", false},                            // member update (F.6)
		{"/finesse/api/User/1001", "/finesse/api/User/1001", false},                                  // the object itself
		{"/finesse/api/SystemInfo", "/finesse/api/SystemInfo", false},                                // not a collection
		{"/finesse/api/User/1002/Dialogs", "/finesse/api/User/1001/Dialogs", false},                  // another user's
		{"/finesse/api/User/1001/Dialogs", "/bogus", false},
		{"", "", false},
	}
	for _, tt := range tests {
		eq(t, tt.source+" on "+tt.node, IsCollection(tt.source, tt.node), tt.want)
	}
}

func TestHoldsDialogs(t *testing.T) {
	for _, k := range []NodeKind{NodeSystemInfo, NodeUser, NodeDialogs, NodeMediaDialogs, NodeMedia, NodeMediaList, NodeMRDDialogs, NodeUserQueues, NodeDialog, NodeTeam, NodeTeamUsers, NodeQueue} {
		want := k == NodeDialogs || k == NodeMediaDialogs || k == NodeMRDDialogs
		eq(t, string(k), k.HoldsDialogs(), want)
	}
}
