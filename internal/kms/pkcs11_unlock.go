//go:build cgo

package kms

import (
	"encoding/hex"

	"github.com/miekg/pkcs11"

	"signet/internal/errs"
)

// The token half of Unlock and Locate (unlock.go).

// unlockToken is Unlock for the token labelled target.
func (m *Manager) unlockToken(target string, secret []byte, force bool) error {
	u := &URI{Token: target}
	module, pin, _, err := m.tokenConfig(u)
	if err != nil {
		return err
	}
	if pin != Unlock {
		return errs.New(errs.Rejected, "token %q does not take its PIN at run time (its PIN source is not 'unlock' in signet.toml): there is nothing to unlock", target)
	}
	if m.opened(target) {
		return errs.New(errs.Conflict, "token %q is unlocked already", target)
	}
	if module != "" {
		initMu.Lock()
		present, err := probeTokens(module)
		initMu.Unlock()
		if err != nil {
			return err
		}
		for _, t := range present {
			if t.label != target {
				continue
			}
			switch {
			case t.flags&pkcs11.CKF_USER_PIN_LOCKED != 0:
				return errs.New(errs.Rejected, "token %q has blocked its user PIN after too many wrong ones: unblock it with the SO PIN (e.g. softhsm2-util or the vendor's tool)", target)
			case t.flags&pkcs11.CKF_USER_PIN_FINAL_TRY != 0 && !force:
				return errs.New(errs.Rejected, "token %q blocks its PIN at the next wrong one (final try): check the PIN and give --force to try it", target)
			}
		}
	}
	m.give(target, secret)
	if _, err := m.openToken(u); err != nil {
		m.forget(givenSource(target)) // never tried twice
		return err
	}
	return nil
}

// pinFlags reads what the token labelled label says of wrong PINs
// (C_GetTokenInfo needs no login); false when it cannot tell.
func (m *Manager) pinFlags(module, label string) (countLow, finalTry bool) {
	initMu.Lock()
	present, err := probeTokens(module)
	initMu.Unlock()
	if err != nil {
		return false, false
	}
	for _, t := range present {
		if t.label == label {
			return t.flags&pkcs11.CKF_USER_PIN_COUNT_LOW != 0, t.flags&pkcs11.CKF_USER_PIN_FINAL_TRY != 0
		}
	}
	return false, false
}

func (m *Manager) opened(label string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.tokens {
		if t.label == label {
			return true
		}
	}
	return false
}

// locateToken is Locate for a pkcs11: URI.
func (m *Manager) locateToken(uri string) Location {
	u, err := ParseURI(uri)
	if err != nil {
		return Location{}
	}
	module, pin, serial, _ := m.tokenConfig(u)
	l := Location{Module: module, Token: u.Token, Serial: serial, Object: u.Object, Unlock: pin == Unlock}
	if len(u.ID) > 0 {
		l.ID = hex.EncodeToString(u.ID)
	}
	l.Locked = l.Unlock && !m.has(givenSource(u.Token))
	if l.Locked && module != "" {
		l.PINCountLow, l.PINFinalTry = m.pinFlags(module, u.Token)
	}
	m.mu.Lock()
	for _, t := range m.tokens {
		if t.label == u.Token {
			slot := t.slot
			l.Slot = &slot
			if l.Serial == "" {
				l.Serial = t.serial
			}
		}
	}
	m.mu.Unlock()
	return l
}

// removeTokens takes the open tokens labelled label out of the Manager and
// returns them, to be closed without m.mu. Caller holds m.mu.
func (m *Manager) removeTokens(label string) []*token {
	var out []*token
	for k, t := range m.tokens {
		if label != "" && t.label == label {
			out = append(out, t)
			delete(m.tokens, k)
		}
	}
	return out
}
