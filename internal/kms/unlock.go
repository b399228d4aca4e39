package kms

import (
	"context"
	"strings"

	"signet/internal/errs"
)

// A secret whose source is Unlock is given to the running process by an
// operator (Manager.Unlock) and held in memory only, like a secret read
// once from any source. It is cached under givenSource(target): the token
// label, or "" for the passphrase of software keys.

func givenSource(target string) Source { return Source("unlock:" + target) }

func given(src Source) bool { return strings.HasPrefix(string(src), "unlock:") }

// Unlock takes the secret for target (a token label, or "" for the
// software keys' passphrase), whose source must be Unlock, and
// opens what it unlocks once: a token is logged in to (a wrong PIN is
// refused and forgotten, never tried again). A token whose next wrong PIN
// would block it (CKF_USER_PIN_FINAL_TRY) is refused unless force. The
// software passphrase is checked when a software key is next opened.
func (m *Manager) Unlock(ctx context.Context, target string, secret []byte, force bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if target == "" {
		if m.opts.Passphrase != Unlock {
			return errs.New(errs.Rejected, "the passphrase of the software keys does not come from 'unlock' (signet.toml [keys] passphrase): there is nothing to unlock")
		}
		m.give("", secret)
		return nil
	}
	return m.unlockToken(target, secret, force)
}

func (m *Manager) give(target string, secret []byte) {
	b := append([]byte(nil), secret...)
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.secrets[givenSource(target)]; ok {
		clear(old)
	}
	m.secrets[givenSource(target)] = b
}

// Lock forgets the secret given for target and closes what it unlocked:
// the token and its keys, or the software keys. Signers handed out for
// them stop working.
func (m *Manager) Lock(target string) {
	m.forget(givenSource(target))
	m.drop(target, target == "")
}

// Drop closes the token a key URI names (or forgets the software key),
// keeping its secret: the next Signer opens it again, as after a token was
// pulled out and put back.
func (m *Manager) Drop(uri string) {
	switch scheme(uri) {
	case "file":
		m.mu.Lock()
		delete(m.signers, uri)
		m.mu.Unlock()
	case "pkcs11":
		if u, err := ParseURI(uri); err == nil && u.Token != "" {
			m.drop(u.Token, false)
		}
	}
}

// drop closes the tokens labelled label and forgets their signers, and
// with files, the software keys' signers.
func (m *Manager) drop(label string, files bool) {
	m.mu.Lock()
	closing := m.removeTokens(label)
	for uri := range m.signers {
		switch scheme(uri) {
		case "file":
			if files {
				delete(m.signers, uri)
			}
		case "pkcs11":
			if u, err := ParseURI(uri); err == nil && label != "" && u.Token == label {
				delete(m.signers, uri)
			}
		}
	}
	m.mu.Unlock()
	for _, t := range closing {
		_ = t.close()
	}
}

// Location says where a key is: a file, or a token's module, label, serial,
// slot (once opened) and object, and where its secret comes from.
type Location struct {
	File   string `json:"file,omitempty"`
	Module string `json:"module,omitempty"`
	Token  string `json:"token,omitempty"`
	Serial string `json:"serial,omitempty"`
	Slot   *uint  `json:"slot,omitempty"`
	Object string `json:"object,omitempty"`
	ID     string `json:"id,omitempty"` // hex
	// Unlock: the secret is given at run time; Locked: and it has not been.
	Unlock bool `json:"unlock,omitempty"`
	Locked bool `json:"locked,omitempty"`
	// While locked, what the token says of wrong PINs tried
	// (CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY): signet unlock warns,
	// and refuses a final try without --force.
	PINCountLow bool `json:"pin_count_low,omitempty"`
	PINFinalTry bool `json:"pin_final_try,omitempty"`
}

// Locate says where the key at uri is, without opening anything.
func (m *Manager) Locate(uri string) Location {
	switch scheme(uri) {
	case "file":
		l := Location{File: strings.TrimPrefix(uri, "file:"), Unlock: m.opts.Passphrase == Unlock}
		l.Locked = l.Unlock && !m.has(givenSource(""))
		return l
	case "pkcs11":
		return m.locateToken(uri)
	}
	return Location{}
}

func (m *Manager) has(src Source) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.secrets[src]
	return ok
}
