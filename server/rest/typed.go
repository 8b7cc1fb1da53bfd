package rest

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"finesse-relay/xmpp/finesse"
)

// maxIDLength bounds an id passed to a typed call.
const maxIDLength = 256

// SystemInfo reads GET /finesse/api/SystemInfo on the current side.
func (c *Client) SystemInfo(ctx context.Context) (*finesse.SystemInfo, error) {
	if c.cfg.Side == nil {
		return nil, fmt.Errorf("%w: no side configured", ErrInvalidRequest)
	}
	return c.SystemInfoAt(ctx, c.cfg.Side())
}

// SystemInfoAt reads SystemInfo on a given side (failover probes). A side
// answering 503 gives an *APIError matching ErrOutOfService.
func (c *Client) SystemInfoAt(ctx context.Context, side Side) (*finesse.SystemInfo, error) {
	rsp, err := c.DoAt(ctx, side, Request{Path: "SystemInfo"})
	if err != nil {
		return nil, err
	}
	return decode(rsp, "SystemInfo", finesse.ParseSystemInfo)
}

// User reads GET /finesse/api/User/{id}. On UCCE id may be the loginName;
// the User returned carries the loginId.
func (c *Client) User(ctx context.Context, id string) (*finesse.User, error) {
	p, err := resource("User", id)
	if err != nil {
		return nil, err
	}
	return get(ctx, c, p, nil, finesse.ParseUser)
}

// Dialogs reads the user's voice dialogs, GET /finesse/api/User/{id}/Dialogs.
func (c *Client) Dialogs(ctx context.Context, loginID string) ([]finesse.Dialog, error) {
	p, err := resource("User", loginID, "Dialogs")
	if err != nil {
		return nil, err
	}
	return get(ctx, c, p, nil, finesse.ParseDialogs)
}

// Team reads GET /finesse/api/Team/{id} (the team with its users).
func (c *Client) Team(ctx context.Context, teamID string) (*finesse.Team, error) {
	p, err := resource("Team", teamID)
	if err != nil {
		return nil, err
	}
	return get(ctx, c, p, nil, finesse.ParseTeam)
}

// Queue reads GET /finesse/api/Queue/{id} (UCCE).
func (c *Client) Queue(ctx context.Context, queueID string) (*finesse.Queue, error) {
	p, err := resource("Queue", queueID)
	if err != nil {
		return nil, err
	}
	return get(ctx, c, p, nil, finesse.ParseQueue)
}

// UserQueues reads the queues assigned to a user, GET
// /finesse/api/User/{id}/Queues (UCCE).
func (c *Client) UserQueues(ctx context.Context, loginID string) ([]finesse.Queue, error) {
	p, err := resource("User", loginID, "Queues")
	if err != nil {
		return nil, err
	}
	return get(ctx, c, p, nil, finesse.ParseQueues)
}

// MediaList reads the user's state in every nonvoice Media Routing Domain,
// GET /finesse/api/User/{id}/Media (UCCE; one Media per MRD, with state
// fields only for MRDs the user has skills in).
func (c *Client) MediaList(ctx context.Context, loginID string) ([]finesse.Media, error) {
	p, err := resource("User", loginID, "Media")
	if err != nil {
		return nil, err
	}
	return get(ctx, c, p, nil, finesse.ParseMediaList)
}

// Media reads the user's state in one MRD, GET
// /finesse/api/User/{id}/Media/{mrdId}.
func (c *Client) Media(ctx context.Context, loginID, mrdID string) (*finesse.Media, error) {
	p, err := resource("User", loginID, "Media")
	if err != nil {
		return nil, err
	}
	if !validID(mrdID) {
		return nil, fmt.Errorf("%w: mrdId %q", ErrInvalidRequest, mrdID)
	}
	return get(ctx, c, p+"/"+url.PathEscape(mrdID), nil, finesse.ParseMedia)
}

// MRDDialogs reads the user's nonvoice dialogs in one MRD, GET
// /finesse/api/User/{id}/Media/{mrdId}/Dialogs.
func (c *Client) MRDDialogs(ctx context.Context, loginID, mrdID string) ([]finesse.Dialog, error) {
	p, err := resource("User", loginID, "Media")
	if err != nil {
		return nil, err
	}
	if !validID(mrdID) {
		return nil, fmt.Errorf("%w: mrdId %q", ErrInvalidRequest, mrdID)
	}
	return get(ctx, c, p+"/"+url.PathEscape(mrdID)+"/Dialogs", nil, finesse.ParseDialogs)
}

// ReasonCodes reads the user's reason codes of a category (NOT_READY or
// LOGOUT; empty: no category parameter), GET
// /finesse/api/User/{id}/ReasonCodes?category=....
func (c *Client) ReasonCodes(ctx context.Context, loginID, category string) ([]finesse.ReasonCode, error) {
	p, err := resource("User", loginID, "ReasonCodes")
	if err != nil {
		return nil, err
	}
	var q url.Values
	if category != "" {
		if !upperToken(category) {
			return nil, fmt.Errorf("%w: reason code category %q", ErrInvalidRequest, category)
		}
		q = url.Values{"category": {category}}
	}
	return get(ctx, c, p, q, finesse.ParseReasonCodes)
}

// SetState asks Finesse to change the user's state (PUT
// /finesse/api/User/{id} <User><state>...</state><reasonCodeId>...).
// reasonCodeID is the reason code's database id, empty for none. Finesse
// answers 202 at once; the outcome arrives later as a notification on the
// User node carrying the returned requestId (or an apiErrors notification).
// A non-2xx answer is an *APIError.
func (c *Client) SetState(ctx context.Context, loginID, state, reasonCodeID string) (requestID string, err error) {
	p, err := resource("User", loginID)
	if err != nil {
		return "", err
	}
	if !upperToken(state) {
		return "", fmt.Errorf("%w: state %q", ErrInvalidRequest, state)
	}
	if reasonCodeID != "" && !validID(reasonCodeID) {
		return "", fmt.Errorf("%w: reasonCodeId %q", ErrInvalidRequest, reasonCodeID)
	}
	body := stateBody{State: state, ReasonCodeID: reasonCodeID}
	data, err := xml.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("rest: encode state change: %w", err)
	}
	rsp, err := c.Do(ctx, Request{Method: http.MethodPut, Path: p, Body: data})
	if err != nil {
		return "", err
	}
	if rsp.Status < 200 || rsp.Status > 299 {
		return rsp.RequestID, newAPIError(rsp)
	}
	return rsp.RequestID, nil
}

// stateBody is the state change request.
type stateBody struct {
	XMLName      xml.Name `xml:"User"`
	State        string   `xml:"state"`
	ReasonCodeID string   `xml:"reasonCodeId,omitempty"`
}

// get reads a resource and decodes a 2xx body with parse.
func get[T any](ctx context.Context, c *Client, path string, q url.Values, parse func([]byte) (T, error)) (T, error) {
	rsp, err := c.Do(ctx, Request{Path: path, Query: q})
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(rsp, path, parse)
}

// decode turns a response into a typed value or an error.
func decode[T any](rsp *Response, what string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	if rsp.Status < 200 || rsp.Status > 299 {
		return zero, newAPIError(rsp)
	}
	v, err := parse(rsp.Body)
	if err != nil {
		return zero, fmt.Errorf("%w: %s from side %s: %w", ErrMalformedResponse, what, rsp.Side.Name, err)
	}
	return v, nil
}

// resource builds "Kind/id[/sub]" with the id escaped.
func resource(kind, id string, sub ...string) (string, error) {
	if !validID(id) {
		return "", fmt.Errorf("%w: %s id %q", ErrInvalidRequest, kind, id)
	}
	return strings.Join(append([]string{kind, url.PathEscape(id)}, sub...), "/"), nil
}

// validID accepts ids for typed calls: 1 to 256 bytes, no slash,
// backslash, control character, "." or "..". (The proxy is stricter.)
func validID(id string) bool {
	return id != "" && len(id) <= maxIDLength && id != "." && id != ".." &&
		!strings.ContainsAny(id, "/\\") && !strings.ContainsFunc(id, isControl)
}

// upperToken accepts NOT_READY-style constants.
func upperToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < 'A' || b > 'Z') && b != '_' && (b < '0' || b > '9') {
			return false
		}
	}
	return true
}
