package main

import (
	"context"

	"finesse-relay/server/agent"
	"finesse-relay/server/cred"
	"finesse-relay/xmpp/finesse"
)

// localAgents is signin.Agents on one instance: every agent's upstream
// session runs in this process's agent.Manager.
type localAgents struct{ m *agent.Manager }

// Join starts or joins the agent's Session here.
func (l localAgents) Join(_ context.Context, user *finesse.User, creds cred.Source) (bool, error) {
	_, created, err := l.m.Join(user, creds)
	return created, err
}

// Running reports whether the agent's Session runs here.
func (l localAgents) Running(_ context.Context, loginID string) bool {
	_, ok := l.m.Get(loginID)
	return ok
}
