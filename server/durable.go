package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"

	"finesse-relay/server/seal"
	"finesse-relay/server/store"
)

// defaultStoreFile is the file store's name in the state directory.
const defaultStoreFile = "finesse-relay.db"

// stateDirectory is where `serve` keeps its file store by default:
// systemd's StateDirectory ($STATE_DIRECTORY), %ProgramData%\finesse-relay
// on Windows, else the working directory.
func stateDirectory(getenv func(string) string) string {
	if d := getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	if runtime.GOOS == "windows" {
		if pd := getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, "finesse-relay")
		}
	}
	return "."
}

// durable is the relay's durable state: the store, the keyring sealing
// credentials in it, and the key signing SSO state cookies.
type durable struct {
	store    store.Store
	shared   bool // several instances may use it (Redis): one is active at a time
	keys     *seal.Keyring
	stateKey []byte
}

// openStore opens cfg.Store ("" or "memory": in process) and loads or
// creates the sealing key. Errors are *ConfigError naming STORE or
// SESSION_KEY_FILE with what to fix.
func openStore(cfg *Config, log *zap.Logger) (durable, error) {
	var d durable
	spec := cfg.Store
	keyFile := cfg.SessionKeyFile
	if spec == "" {
		spec = "memory"
	}
	if path, ok := strings.CutPrefix(spec, "file:"); ok && path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return d, cfgErr("STORE", "cannot create the directory of %s: %v (pick a writable path, e.g. the service's state directory)", path, err)
		}
		if keyFile == "" {
			keyFile = filepath.Join(filepath.Dir(path), "session.key")
		}
	}
	redis := strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://")
	if redis && keyFile == "" {
		return d, cfgErr("SESSION_KEY_FILE", "required with a Redis store: every instance must seal credentials with the same key (create one with: head -c 32 /dev/urandom | base64 > session.key; chmod 600 session.key)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.Open(ctx, spec, store.Options{})
	if err != nil {
		return d, cfgErr("STORE", "%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "STORE: "), "STORE "))
	}
	d.store = st
	d.shared = redis
	var current []byte
	switch {
	case keyFile != "":
		current, err = seal.LoadKeyFile(keyFile)
		if errors.Is(err, fs.ErrNotExist) && cfg.SessionKeyFile == "" && !redis {
			current, err = seal.CreateKeyFile(keyFile)
			if err == nil {
				log.Info("created the key that seals credentials at rest; keep it with the store", zap.String("file", keyFile))
			}
		}
		if err != nil {
			_ = d.store.Close()
			return d, cfgErr("SESSION_KEY_FILE", "%v", err)
		}
	default:
		current = make([]byte, seal.KeySize) // memory store: nothing outlives the process
		_, _ = rand.Read(current)
	}
	var previous []byte
	if cfg.PreviousSessionKeyFile != "" {
		if previous, err = seal.LoadKeyFile(cfg.PreviousSessionKeyFile); err != nil {
			_ = d.store.Close()
			return d, cfgErr("SESSION_KEY_FILE_PREVIOUS", "%v", err)
		}
	}
	if d.keys, err = seal.NewKeyring(current, previous); err != nil {
		_ = d.store.Close()
		return d, cfgErr("SESSION_KEY_FILE", "%v", err)
	}
	m := hmac.New(sha256.New, current)
	m.Write([]byte("finesse-relay ids state cookie"))
	d.stateKey = m.Sum(nil)
	return d, nil
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
