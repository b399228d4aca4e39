package kms

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"

	"signet/internal/errs"
)

// Source says where a secret (token PIN, key passphrase) comes from: "prompt"
// (the terminal), "env:VAR", "file:PATH", or "unlock": an operator gives it
// to the running server (signet unlock, Manager.Unlock). It is never the secret itself, so
// a Source may be written in config files and command lines.
type Source string

// CredentialsDir may begin a file: source's path: the directory where
// systemd puts the files a unit's LoadCredential= names (the unit's %d),
// found in the environment when the secret is read. It lets signet.toml,
// where %d means nothing, name a credential.
const CredentialsDir = "$CREDENTIALS_DIRECTORY"

const sourceHint = "PINs never go in config or argv; use env:VAR, file:PATH, prompt or unlock"

// Unlock is the source of a secret an operator gives at run time, to the
// running server (signet unlock); until then the keys it opens are locked.
const Unlock Source = "unlock"

// Minimum lengths, in characters, of secrets signet takes from an operator
// for something new: the passphrase of a new software key, and an admin
// token given instead of the one signet generates. Secrets made before
// these minimums existed keep working.
const (
	MinPassphrase = 12
	MinAdminToken = 32
)

// CheckLength refuses a new secret shorter than min characters; what names
// it and src is where it came from (never the secret itself).
func CheckLength(secret []byte, min int, what string, src Source) error {
	if n := utf8.RuneCount(secret); n < min {
		return errs.New(errs.Rejected, "the %s from %s has %d characters; a new one needs at least %d", what, src, n, min)
	}
	return nil
}

// ParseSource accepts "prompt", "env:VAR" or "file:PATH" and refuses anything
// else, in particular a literal secret.
func ParseSource(s string) (Source, error) {
	switch {
	case s == "prompt", s == string(Unlock):
		return Source(s), nil
	case strings.HasPrefix(s, "env:"):
		name := s[len("env:"):]
		if !validEnvName(name) {
			return "", errs.New(errs.Malformed, "secret source %q: %q is not an environment variable name", s, name)
		}
		return Source(s), nil
	case strings.HasPrefix(s, "file:"):
		path := s[len("file:"):]
		// RFC 8089 form file:///path, as a PKCS#11 URI's pin-source may use.
		if strings.HasPrefix(path, "///") {
			path = path[2:]
		}
		if path == "" {
			return "", errs.New(errs.Malformed, "secret source %q: empty file path", s)
		}
		return Source("file:" + path), nil
	}
	// Do not echo s: it may well be the secret someone tried to pass.
	return "", errs.New(errs.Malformed, "invalid secret source (want prompt, unlock, env:VAR or file:PATH): %s", sourceHint)
}

// ReadNew reads a secret that is to protect something new. A prompt asks
// twice and refuses two different answers, so a typing mistake cannot lock
// a key away.
func (s Source) ReadNew(what string) ([]byte, error) {
	b, err := s.Read(what)
	if err != nil || s != "prompt" {
		return b, err
	}
	again, err := s.Read(what + " again")
	if err != nil {
		clear(b)
		return nil, err
	}
	defer clear(again)
	if !bytes.Equal(b, again) {
		clear(b)
		return nil, errs.New(errs.Rejected, "the %s was typed differently the second time; run the command again and type the same one twice", what)
	}
	return b, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Read returns the secret; what names it ("PIN for token \"ca\"") in the
// prompt and in errors. One trailing newline is dropped.
func (s Source) Read(what string) ([]byte, error) {
	var b []byte
	switch {
	case s == Unlock:
		return nil, errs.New(errs.Locked, "the %s is given at run time and has not been: signet unlock gives it to the running server (other commands take --pin or --passphrase)", what)
	case s == "prompt":
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "cannot prompt for the %s: no terminal", what)
		}
		defer tty.Close()
		fmt.Fprintf(tty, "Enter %s: ", what)
		b, err = term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "reading the %s from the terminal", what)
		}
	case strings.HasPrefix(string(s), "env:"):
		name := string(s[len("env:"):])
		v, ok := os.LookupEnv(name)
		if !ok {
			return nil, errs.New(errs.NotFound, "the %s: environment variable %s is not set", what, name)
		}
		b = []byte(v)
	case strings.HasPrefix(string(s), "file:"):
		path := string(s[len("file:"):])
		if rest, ok := strings.CutPrefix(path, CredentialsDir+"/"); ok {
			dir := os.Getenv("CREDENTIALS_DIRECTORY")
			if dir == "" {
				return nil, errs.New(errs.NotFound, "the %s comes from %s, but CREDENTIALS_DIRECTORY is not set: run signet under its systemd unit, whose LoadCredential= sets it, or give another source", what, s)
			}
			path = filepath.Join(dir, rest)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, errs.Wrap(errs.NotFound, err, "reading the %s from %s", what, path)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "reading the %s from %s", what, path)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, errs.New(errs.Rejected, "refusing to read the %s from %s: mode %04o lets others read it; chmod 600 %s",
				what, path, fi.Mode().Perm(), path)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(f); err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "reading the %s from %s", what, path)
		}
		b = buf.Bytes()
	default:
		return nil, errs.New(errs.Malformed, "invalid secret source for the %s: %s", what, sourceHint)
	}
	if len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = b[:len(b)-1]
		}
	}
	if len(b) == 0 {
		return nil, errs.New(errs.Malformed, "the %s from %s is empty", what, s)
	}
	return b, nil
}
