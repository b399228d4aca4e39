package store

import (
	"math"
	"strconv"
	"time"

	"signet/internal/errs"
)

// SSHKeyState is where one CA key of an SSH authority stands in a rollover.
type SSHKeyState string

const (
	// SSHKeyActive signs new certificates and is trusted. An authority has at most one.
	SSHKeyActive SSHKeyState = "active"
	// SSHKeyTrusted is listed in the trust lines but signs nothing: a new key
	// published before it signs, or an old one kept while its certificates live.
	SSHKeyTrusted SSHKeyState = "trusted"
	// SSHKeyRetired is no longer listed: once operators reinstall the trust
	// lines, its certificates stop working.
	SSHKeyRetired SSHKeyState = "retired"
	// SSHKeyRevoked is listed in the authority's KRL, so its certificates are
	// refused even where the trust lines are stale. It stays revoked.
	SSHKeyRevoked SSHKeyState = "revoked"
)

// SSHKey is one CA key of an SSH authority.
type SSHKey struct {
	Authority   string
	Fingerprint string // "SHA256:..." as ssh-keygen -l prints it; unique per authority
	KeyURI      string
	PublicKey   string // authorized_keys form without comment
	State       SSHKeyState
	CreatedAt   time.Time
}

// SSHCertType is "host" or "user".
type SSHCertType string

const (
	SSHHostCert SSHCertType = "host"
	SSHUserCert SSHCertType = "user"
)

// How an SSH certificate was revoked: by its serial, or with every
// certificate sharing its key ID (the KRL then lists the key ID).
const (
	RevokedBySerial = "serial"
	RevokedByKeyID  = "key-id"
)

// SSHCertificate is an issued SSH certificate as the inventory sees it.
type SSHCertificate struct {
	Serial        uint64 // 1 to 2^63-1, unique across authorities (stores keep it signed)
	Authority     string
	CAFingerprint string // the CA key that signed it
	KeyID         string
	Type          SSHCertType
	Principals    []string
	ValidAfter    time.Time
	ValidBefore   time.Time
	Status        Status
	RevokedAt     time.Time // zero unless revoked
	RevokedBy     string    // RevokedBySerial or RevokedByKeyID when revoked
	Requester     string
	Cert          []byte // the certificate in SSH wire format
}

// SSHFilter selects SSH certificates. Zero fields match anything.
type SSHFilter struct {
	Authority   string
	KeyID       string
	Principal   string // one of its principals, exactly
	Status      Status
	Limit       int    // 0: no limit
	AfterSerial uint64 // keyset pagination: certificates after this serial
}

// SSHSubject is the audit subject of an SSH certificate: "ssh:" and its
// decimal serial, apart from X.509 serials.
func SSHSubject(serial uint64) string { return "ssh:" + strconv.FormatUint(serial, 10) }

// CheckSSHSerial refuses a serial a store cannot keep.
func CheckSSHSerial(serial uint64) error {
	if serial == 0 || serial > math.MaxInt64 {
		return errs.New(errs.Malformed, "SSH certificate serial %d must be between 1 and 2^63-1", serial)
	}
	return nil
}

// CheckSSHKey refuses an SSH CA key row that cannot be recorded.
func CheckSSHKey(k SSHKey) error {
	switch {
	case k.Authority == "":
		return errs.New(errs.Malformed, "SSH key has no authority")
	case k.Fingerprint == "" || k.PublicKey == "" || k.KeyURI == "":
		return errs.New(errs.Malformed, "SSH key of %q needs a fingerprint, a public key and a key URI", k.Authority)
	}
	return CheckSSHKeyState(k.State)
}

// CheckSSHKeyState refuses an unknown state.
func CheckSSHKeyState(s SSHKeyState) error {
	switch s {
	case SSHKeyActive, SSHKeyTrusted, SSHKeyRetired, SSHKeyRevoked:
		return nil
	}
	return errs.New(errs.Malformed, "SSH key state %q: want active, trusted, retired or revoked", s)
}

// CheckSSHCertificate refuses an SSH certificate row that cannot be recorded.
func CheckSSHCertificate(c SSHCertificate) error {
	if err := CheckSSHSerial(c.Serial); err != nil {
		return err
	}
	switch {
	case c.Authority == "" || c.CAFingerprint == "":
		return errs.New(errs.Malformed, "SSH certificate %d has no authority or CA key", c.Serial)
	case c.Type != SSHHostCert && c.Type != SSHUserCert:
		return errs.New(errs.Malformed, "SSH certificate %d has type %q, want host or user", c.Serial, c.Type)
	case len(c.Cert) == 0:
		return errs.New(errs.Malformed, "SSH certificate %d has no certificate bytes", c.Serial)
	case c.ValidAfter.IsZero() || c.ValidBefore.IsZero():
		return errs.New(errs.Malformed, "SSH certificate %d has no validity period", c.Serial)
	case c.Status != "" && c.Status != Valid && c.Status != Revoked:
		return errs.New(errs.Malformed, "SSH certificate %d has unknown status %q", c.Serial, c.Status)
	case c.Status == Revoked && c.RevokedAt.IsZero():
		return errs.New(errs.Malformed, "SSH certificate %d is revoked with no revocation time", c.Serial)
	}
	return nil
}
