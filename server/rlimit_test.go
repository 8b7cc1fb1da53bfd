//go:build unix

package main

import (
	"syscall"
	"testing"
)

func TestNoFileLimitSessions(t *testing.T) {
	tests := []struct {
		soft uint64
		want uint64
	}{{0, 0}, {fdReserve, 0}, {fdReserve + 2, 1}, {fdsWanted, plannedSessions}, {1 << 20, (1<<20 - fdReserve) / 2}}
	for _, tt := range tests {
		if got := (noFileLimit{Soft: tt.soft}).sessions(); got != tt.want {
			t.Errorf("sessions(soft %d) = %d, want %d", tt.soft, got, tt.want)
		}
	}
}

// TestRaiseNoFileLimit: the soft limit ends at the hard limit or above,
// and what is reported is what the process has.
func TestRaiseNoFileLimit(t *testing.T) {
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	l := raiseNoFileLimit(before.Max) // never asks for more than the hard limit
	var after syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after); err != nil {
		t.Fatal(err)
	}
	if l.Err != nil || after.Cur != before.Max || l.Soft != after.Cur || l.Hard != after.Max {
		t.Errorf("got %+v; process soft %d hard %d; hard before %d", l, after.Cur, after.Max, before.Max)
	}
	if cur := currentNoFileLimit(); cur.Soft != after.Cur {
		t.Errorf("currentNoFileLimit %+v, process %d", cur, after.Cur)
	}
}
