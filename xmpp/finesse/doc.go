// Package finesse is the Cisco Finesse data model shared by the relay's XMPP
// client, REST client, session core and simulator: the <Update> notification
// envelope, the pubsub node paths, and the objects Finesse sends (User,
// Dialog, Team, Queue, SystemInfo, apiErrors, reason codes, nonvoice
// Media).
//
// It imports nothing but the standard library.
//
// # Notifications
//
// Finesse publishes each change as an <Update> document inside a pubsub
// <notification>, usually escaped as text (the Cisco form), sometimes as
// inline XML. The XMPP client passes the bytes between <notification> and
// </notification> exactly as they arrived to ParseNotification, which
// accepts both forms (and the already-unescaped character data, which is
// the inline form). ParseUpdate takes an unescaped <Update> document.
// Either gives an Update: Event (PUT, POST, DELETE), Source, RequestID, and
// Data, the object element still as XML. DecodeData turns Data into an
// Object:
//
//	u, err := finesse.ParseNotification(node, content)
//	obj, err := finesse.DecodeData(u.Data) // nil, nil when there is no <data>
//	switch v := obj.(type) {
//	case *finesse.User:      // User/{id} or Team/{id}/Users member
//	case *finesse.Dialog:    // item update on a Dialogs node
//	case *finesse.Dialogs:   // collection add (POST) or remove (DELETE)
//	case *finesse.Media:     // a user's state in one nonvoice MRD
//	case *finesse.APIErrors: // an asynchronous failure of request u.RequestID
//	case *finesse.Raw:       // anything else, kept as XML
//	}
//
// IsCollection tells a collection add or remove (Source is the node's own
// URL) from an item update (Source is the item's URL); ParseNode classifies
// a node or source path.
//
// Element names are matched without regard to letter case everywhere
// (Finesse sends <user> in notifications and <User> over REST, <apiErrors>
// and <ApiErrors>), children may come in any order, and values are
// unescaped exactly once.
//
// # Extra: unknown children
//
// Every typed object (User, Settings, MobileAgent, ReasonCode, Team,
// Dialog, MediaProperties, Participant,
// ScheduledCallbackInfo, Queue, QueueStatistics, SystemInfo, ServerNode,
// CTIServer, APIError, Media) keeps each child element it has no field for,
// in order, in its Extra field: a Raw written again from the parsed tree
// (<name>text</name> or <name><child>...</child></name>; attributes,
// namespaces, comments and text beside child elements are dropped, text is
// escaped once). JSON carries them as "extra": [{"element", "xml"}],
// omitted when there are none; both XML forms write them back, so a field
// a newer Finesse adds reaches browsers instead of being dropped. Members
// of lists (Dialogs, Queues, ReasonCodes, MediaList, roles, actions) are
// decoded as the list's type whatever their name, and a CallVariable is a
// name/value pair only. String values are kept
// exactly as sent (states, ids, ISO 8601 times); counts and ports are ints,
// flags are bools.
//
// # Encoding
//
// xml.Marshal of an object writes the REST form (<User>, <Dialogs><Dialog>,
// <ApiErrors><ApiError><ErrorType>). EncodeData writes the notification form
// that goes inside <data> (<user>, <dialogs><Dialog>,
// <apiErrors><apiError><errorData>), and EncodeUpdate wraps it in an
// <Update>. ParseUpdate(EncodeUpdate(u)) returns u, and DecodeData of either
// form returns the object encoded.
//
// # JSON
//
// The JSON form of every object (what browsers receive as "data") uses
// camelCase names equal to Finesse's element names (loginId, stateChangeTime,
// mediaProperties, callVariables; ReasonCode becomes reasonCode and DNIS
// becomes dnis). Scalars are always present ("" or 0 when Finesse sent
// nothing); nested lists and optional objects (roles, teams, participants,
// actions, callVariables, wrapUpItems, services, reasonCode, settings,
// mobileAgent, scheduledCallbackInfo, statistics, primaryNode, ctiServers,
// extra) are left out when empty; list objects always carry their array:
// Dialogs is {"dialogs": [...]}, Queues {"queues": [...]}, ReasonCodes
// {"reasonCodes": [...]}, MediaList {"mediaList": [...]}, APIErrors
// {"apiErrors": [{"errorType", "errorMessage", "errorData", "errorMedia",
// "overrideable"}]}, Raw {"element", "xml"}.
// docs/finesse-model.md shows each shape with an example.
//
// # Limits
//
// Outside input is bounded: an Update or object document is at most
// MaxUpdateSize bytes, a notification MaxNotificationSize, elements nest at
// most MaxDepth deep (checked while decoding) and a document holds at most
// MaxElements elements. Errors wrap ErrMalformedUpdate or ErrMalformedData,
// plus ErrLimit when a limit was hit; ParseNode's wrap ErrUnknownNode. The
// Parse functions for REST bodies return an *APIErrors (which implements
// error) when the body is an error report.
//
// # Concurrency
//
// The package has no state and starts no goroutines: every function is safe
// for concurrent use. Returned values are plain data owned by the caller and
// share no memory with the input; they are not synchronised, so a value
// shared between goroutines must not be modified.
package finesse
