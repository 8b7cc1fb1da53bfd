package finesse

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

// UserQueuesNode is the node of the queues assigned to a user (UCCE).
func UserQueuesNode(loginID string) string { return UserNode(loginID) + "/Queues" }

// TeamUsersNode is the node a supervisor subscribes to for a team's members.
func TeamUsersNode(teamID string) string { return APIPrefix + "Team/" + teamID + "/Users" }

// QueueNode is the node of one queue's statistics (UCCE, every 10 s if changed).
func QueueNode(queueID string) string { return APIPrefix + "Queue/" + queueID }
