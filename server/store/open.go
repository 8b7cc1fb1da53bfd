package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Now is the clock of the memory and file stores (nil: time.Now).
	Now func() time.Time
	// File tunes a file: store (its Now defaults to the one above).
	File FileOptions
	// Redis tunes a redis:// or rediss:// store.
	Redis RedisOptions
}

// Open opens the store the STORE setting names:
//
//	memory                 in process (demo, tests)
//	file:PATH              a bbolt file (one instance; survives restarts)
//	redis://… rediss://…   Redis, Sentinel with ?master_name= (see OpenRedis)
//
// Every error starts with "STORE" and says what to fix. A Redis that does
// not answer is an error here (wrapping ErrUnavailable): the relay stops
// at start rather than run without its store.
func Open(ctx context.Context, spec string, opts Options) (Store, error) {
	switch {
	case spec == "":
		return nil, errors.New("STORE is empty: set it to memory, file:PATH or redis://host:6379/0")
	case spec == "memory":
		return NewMemory(opts.Now), nil
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		if path == "" {
			return nil, errors.New("STORE=file: has no path: use file:PATH, e.g. file:/var/lib/finesse-relay/finesse-relay.db")
		}
		fo := opts.File
		if fo.Now == nil {
			fo.Now = opts.Now
		}
		s, err := OpenFile(path, fo)
		if err != nil {
			return nil, fmt.Errorf("STORE: %w", err)
		}
		return s, nil
	case strings.HasPrefix(spec, "redis://"), strings.HasPrefix(spec, "rediss://"):
		s, err := OpenRedis(ctx, spec, opts.Redis)
		switch {
		case errors.Is(err, ErrUnavailable):
			return nil, fmt.Errorf("STORE: %w: check that Redis runs and that this host reaches it (address, port, password, TLS)", err)
		case err != nil:
			return nil, fmt.Errorf("STORE: %w", err)
		}
		return s, nil
	}
	shown := spec
	if i := strings.Index(spec, "@"); i >= 0 {
		shown = "…" + spec[i:] // may hold a password
	}
	return nil, fmt.Errorf("STORE=%q: not a store: use memory, file:PATH, redis://host:6379/0 or rediss://host:6380/0", shown)
}
