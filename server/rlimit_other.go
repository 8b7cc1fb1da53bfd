//go:build !unix

package main

import "go.uber.org/zap"

const (
	fdsPerSession   = 2
	fdReserve       = 1024
	plannedSessions = 10000
	fdsWanted       = plannedSessions*fdsPerSession + fdReserve
)

// noFileLimit is unknown outside Unix: sessions reports the planned figure.
type noFileLimit struct {
	Soft, Hard uint64
	Raised     bool
	Err        error
}

func (l noFileLimit) sessions() uint64 { return plannedSessions }

func raiseNoFileLimit(uint64) noFileLimit { return noFileLimit{Soft: fdsWanted, Hard: fdsWanted} }

func currentNoFileLimit() noFileLimit { return noFileLimit{Soft: fdsWanted, Hard: fdsWanted} }

func logNoFileLimit(*zap.Logger, noFileLimit) {}
