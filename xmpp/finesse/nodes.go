package finesse

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// APIPrefix is the path prefix of every Finesse REST resource and node.
const APIPrefix = "/finesse/api/"

// SystemInfoNode is the node every user receives SystemInfo changes on.
const SystemInfoNode = APIPrefix + "SystemInfo"

// UserNode is the node of a user's own User object (default subscription).
func UserNode(loginID string) string { return APIPrefix + "User/" + loginID }

// DialogsNode is the node of a user's voice Dialogs (default subscription).
func DialogsNode(loginID string) string { return UserNode(loginID) + "/Dialogs" }

// MediaNode is the node of a user's state in one media routing domain.
func MediaNode(loginID, mrdID string) string { return UserNode(loginID) + "/Media/" + mrdID }

// MediaListURI is the list of a user's Media objects, one per nonvoice MRD
// (GET /finesse/api/User/{id}/Media).
func MediaListURI(loginID string) string { return UserNode(loginID) + "/Media" }

// MRDDialogsURI is a user's dialogs in one nonvoice MRD (GET
// /finesse/api/User/{id}/Media/{mrdId}/Dialogs), and the <source> of the
// collection changes Finesse publishes on MediaDialogsNode.
func MRDDialogsURI(loginID, mrdID string) string { return MediaNode(loginID, mrdID) + "/Dialogs" }

// UserQueuesNode is the node of the queues assigned to a user (UCCE).
func UserQueuesNode(loginID string) string { return UserNode(loginID) + "/Queues" }

// TeamUsersNode is the node a supervisor subscribes to for a team's members.
func TeamUsersNode(teamID string) string { return APIPrefix + "Team/" + teamID + "/Users" }

// QueueNode is the node of one queue's statistics (UCCE, every 10 s if changed).
func QueueNode(queueID string) string { return APIPrefix + "Queue/" + queueID }

// MediaDialogsNode is the node of a user's nonvoice dialogs (every MRD's).
func MediaDialogsNode(loginID string) string { return DialogsNode(loginID) + "/Media" }

// DialogURI is the URI of one dialog, the <source> of its item updates.
func DialogURI(dialogID string) string { return APIPrefix + "Dialog/" + dialogID }

// TeamURI is the URI of one team (GET /finesse/api/Team/{id}).
func TeamURI(teamID string) string { return APIPrefix + "Team/" + teamID }

// NodeKind classifies a node or resource path.
type NodeKind string

// The node and resource paths ParseNode knows.
const (
	NodeSystemInfo   NodeKind = "SystemInfo"   // /finesse/api/SystemInfo
	NodeUser         NodeKind = "User"         // /finesse/api/User/{id}
	NodeDialogs      NodeKind = "Dialogs"      // /finesse/api/User/{id}/Dialogs (collection)
	NodeMediaDialogs NodeKind = "MediaDialogs" // /finesse/api/User/{id}/Dialogs/Media (collection)
	NodeMedia        NodeKind = "Media"        // /finesse/api/User/{id}/Media/{mrdId}
	NodeMediaList    NodeKind = "MediaList"    // /finesse/api/User/{id}/Media (REST list, one Media per MRD)
	NodeMRDDialogs   NodeKind = "MRDDialogs"   // /finesse/api/User/{id}/Media/{mrdId}/Dialogs (collection)
	NodeUserQueues   NodeKind = "UserQueues"   // /finesse/api/User/{id}/Queues (collection)
	NodeDialog       NodeKind = "Dialog"       // /finesse/api/Dialog/{id}
	NodeTeam         NodeKind = "Team"         // /finesse/api/Team/{id}
	NodeTeamUsers    NodeKind = "TeamUsers"    // /finesse/api/Team/{id}/Users (collection)
	NodeQueue        NodeKind = "Queue"        // /finesse/api/Queue/{id}
)

// Node is a parsed node or resource path.
type Node struct {
	Kind NodeKind
	// ID is the loginId for the User kinds, else the dialog, team or queue
	// id; empty for SystemInfo.
	ID string
	// MediaID is the media routing domain id of a Media or MRDDialogs
	// node, else empty.
	MediaID string
}

// IsCollection reports whether the kind is a collection whose members are
// added (POST) and removed (DELETE).
func (k NodeKind) IsCollection() bool {
	switch k {
	case NodeDialogs, NodeMediaDialogs, NodeMRDDialogs, NodeUserQueues, NodeTeamUsers:
		return true
	}
	return false
}

// HoldsDialogs reports whether the kind's state is a list of dialogs: a
// user's voice Dialogs, nonvoice Dialogs/Media, or one MRD's Dialogs.
// Notifications on such a node add, remove or update dialogs (see
// IsCollection); they never replace the list.
func (k NodeKind) HoldsDialogs() bool {
	switch k {
	case NodeDialogs, NodeMediaDialogs, NodeMRDDialogs:
		return true
	}
	return false
}

// String returns the canonical path, as the node helpers build it.
func (n Node) String() string {
	switch n.Kind {
	case NodeSystemInfo:
		return SystemInfoNode
	case NodeUser:
		return UserNode(n.ID)
	case NodeDialogs:
		return DialogsNode(n.ID)
	case NodeMediaDialogs:
		return MediaDialogsNode(n.ID)
	case NodeMedia:
		return MediaNode(n.ID, n.MediaID)
	case NodeMediaList:
		return MediaListURI(n.ID)
	case NodeMRDDialogs:
		return MRDDialogsURI(n.ID, n.MediaID)
	case NodeUserQueues:
		return UserQueuesNode(n.ID)
	case NodeDialog:
		return DialogURI(n.ID)
	case NodeTeam:
		return TeamURI(n.ID)
	case NodeTeamUsers:
		return TeamUsersNode(n.ID)
	case NodeQueue:
		return QueueNode(n.ID)
	}
	return ""
}

// ParseNode classifies a pubsub node or a <source> URI and extracts its
// ids. The /finesse/api/ prefix and the fixed segments (User, Dialogs, ...)
// are matched case-insensitively and trailing slashes are ignored; ids are
// kept as they are. Ids must be non-empty and hold no '/', '?', '#', '%',
// '\', space or control character, and must not be "." or "..". Anything
// else (another prefix, a query, an unknown resource, an empty segment)
// wraps ErrUnknownNode.
func ParseNode(path string) (Node, error) {
	n, ok := parseNode(path)
	if !ok {
		return Node{}, fmt.Errorf("%w: %s", ErrUnknownNode, quoteSnippet([]byte(path)))
	}
	return n, nil
}

func parseNode(path string) (Node, bool) {
	if len(path) < len(APIPrefix) || !strings.EqualFold(path[:len(APIPrefix)], APIPrefix) {
		return Node{}, false
	}
	seg := strings.Split(strings.TrimRight(path[len(APIPrefix):], "/"), "/")
	is := func(i int, s string) bool { return strings.EqualFold(seg[i], s) }
	for _, s := range seg[1:] {
		if !validID(s) {
			return Node{}, false
		}
	}
	switch {
	case len(seg) == 1 && is(0, "SystemInfo"):
		return Node{Kind: NodeSystemInfo}, true
	case len(seg) < 2:
		return Node{}, false
	case is(0, "User"):
		id := seg[1]
		switch {
		case len(seg) == 2:
			return Node{Kind: NodeUser, ID: id}, true
		case len(seg) == 3 && is(2, "Dialogs"):
			return Node{Kind: NodeDialogs, ID: id}, true
		case len(seg) == 3 && is(2, "Queues"):
			return Node{Kind: NodeUserQueues, ID: id}, true
		case len(seg) == 3 && is(2, "Media"):
			return Node{Kind: NodeMediaList, ID: id}, true
		case len(seg) == 5 && is(2, "Media") && is(4, "Dialogs"):
			return Node{Kind: NodeMRDDialogs, ID: id, MediaID: seg[3]}, true
		case len(seg) == 4 && is(2, "Dialogs") && is(3, "Media"):
			return Node{Kind: NodeMediaDialogs, ID: id}, true
		case len(seg) == 4 && is(2, "Media"):
			return Node{Kind: NodeMedia, ID: id, MediaID: seg[3]}, true
		}
	case len(seg) == 2 && is(0, "Dialog"):
		return Node{Kind: NodeDialog, ID: seg[1]}, true
	case len(seg) == 2 && is(0, "Queue"):
		return Node{Kind: NodeQueue, ID: seg[1]}, true
	case is(0, "Team"):
		switch {
		case len(seg) == 2:
			return Node{Kind: NodeTeam, ID: seg[1]}, true
		case len(seg) == 3 && is(2, "Users"):
			return Node{Kind: NodeTeamUsers, ID: seg[1]}, true
		}
	}
	return Node{}, false
}

// validID reports whether s can be an id segment of a node path.
func validID(s string) bool {
	if s == "" || s == "." || s == ".." || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r <= ' ', r == 0x7f, r >= 0x80 && r < 0xa0:
			return false
		case r == '/', r == '?', r == '#', r == '%', r == '\\':
			return false
		}
	}
	return true
}

// IsCollection reports whether a notification with this source, arriving
// on this node, adds or removes collection members (Finesse's routing rule:
// the source is the collection's own URL, e.g. source and node both
// /finesse/api/User/1001/Dialogs with data <dialogs><Dialog>...). Nonvoice
// dialogs are the documented exception: the node is the user's
// Dialogs/Media and the source the MRD's collection,
// /finesse/api/User/{id}/Media/{mrdId}/Dialogs, of the same user.
// Otherwise it is an item update, routed by the id in the data or the
// source (a PUT with source /finesse/api/Dialog/16817001). Paths are
// compared after ParseNode's normalisation; a path ParseNode rejects is
// never a collection.
func IsCollection(source, node string) bool {
	s, ok := parseNode(source)
	if !ok || !s.Kind.IsCollection() {
		return false
	}
	n, ok := parseNode(node)
	if !ok {
		return false
	}
	return s == n || s.Kind == NodeMRDDialogs && n.Kind == NodeMediaDialogs && s.ID == n.ID
}
