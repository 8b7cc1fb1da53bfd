// Package finesse is the Cisco Finesse data model shared by the relay's XMPP
// client, REST client, session core and simulator: the <Update> notification
// envelope, the pubsub node paths, and the objects Finesse sends (User,
// Dialog, Team, Queue, SystemInfo, apiErrors).
//
// It imports nothing but the standard library. All functions are safe for
// concurrent use; values are plain data.
package finesse
