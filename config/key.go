package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// KeySize is the size of the keys GenerateKey makes, and the least ReadKey
// accepts.
const KeySize = 32

// maxKeyFile bounds what ReadKey reads.
const maxKeyFile = 64 << 10

// ReadKey reads the cluster's shared secret from a key file: hex text of at
// least 64 digits (32 bytes), surrounding whitespace ignored. The file must
// be a regular file that neither group nor others may access.
func ReadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w (make a key with `tachy keygen` and copy it to every node)", err)
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is accessible by group or others (mode %04o); the key must be secret: chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("key file %s is larger than %d bytes; it should hold one hex key as written by `tachy keygen`", path, maxKeyFile)
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return nil, fmt.Errorf("key file %s is empty; make a key with `tachy keygen`", path)
	}
	key, err := hex.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("key file %s does not hold a hex key (%v); it must hold at least %d hex digits, as written by `tachy keygen`", path, err, 2*KeySize)
	}
	if len(key) < KeySize {
		return nil, fmt.Errorf("key file %s holds a %d-byte key; at least %d bytes (%d hex digits) are required: make a new one with `tachy keygen`", path, len(key), KeySize, 2*KeySize)
	}
	return key, nil
}

// GenerateKey returns a new random key of KeySize bytes.
func GenerateKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	return key, nil
}

// WriteKey writes key to a new file at path, as hex and a newline, with
// mode 0600. It refuses to overwrite an existing file: replacing a
// cluster's key is a deliberate act (remove the old file first).
func WriteKey(path string, key []byte) error {
	if len(key) < KeySize {
		return fmt.Errorf("key is %d bytes; at least %d are required", len(key), KeySize)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("key file %s already exists; it is not overwritten (remove it first to replace the cluster's key on every node)", path)
		}
		return err
	}
	// The umask can only remove bits; make sure of the mode anyway.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	return nil
}
