package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"runtime"
)

// maxKeyFile bounds what LoadKeyFile reads: a key file is one line.
const maxKeyFile = 4096

// LoadKeyFile reads a 32-byte key written base64 (standard or URL
// alphabet, padding optional, surrounding whitespace ignored) from path.
// On Unix it refuses a file its group or others may read.
func LoadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- the operator-configured SESSION_KEY_FILE / PREVIOUS_SESSION_KEY_FILE (or session.key beside the configured store file)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %04o, readable by others than its owner: run chmod 600 %s", path, perm, path)
	}
	buf := make([]byte, maxKeyFile+1)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if n > maxKeyFile {
		return nil, fmt.Errorf("key file %s is over %d bytes: it should hold one base64 line of %d bytes", path, maxKeyFile, KeySize)
	}
	key, err := decodeKey(bytes.TrimSpace(buf[:n]))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w (create one with: head -c 32 /dev/urandom | base64 > %s; chmod 600 %s)", path, err, path, path)
	}
	return key, nil
}

func decodeKey(text []byte) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(string(text)); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("holds %d bytes, want %d", len(k), KeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("not base64")
}

// CreateKeyFile writes a new random key to path with mode 0600, failing
// when path exists (it never replaces a key), and returns it.
func CreateKeyFile(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	randRead(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- session.key beside the operator-configured store file (only when SESSION_KEY_FILE is unset)
	if err != nil {
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	line := base64.StdEncoding.EncodeToString(key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("write key file %s: %w", path, err)
	}
	return key, nil
}
