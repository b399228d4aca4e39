// Package ari owns ACME Renewal Information (RFC 9773): the certificate
// identifier clients name a certificate by, and the window in which signet
// suggests renewing it.
package ari

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"signet/internal/acme"
	"signet/internal/errs"
)

// CertID is the RFC 9773 §4.1 identifier of cert: the base64url of its
// authority key identifier, a dot, and the base64url of its serial's DER
// integer bytes.
func CertID(cert *x509.Certificate) string {
	serial := cert.SerialNumber.Bytes()
	if len(serial) == 0 || serial[0]&0x80 != 0 {
		serial = append([]byte{0}, serial...)
	}
	return base64.RawURLEncoding.EncodeToString(cert.AuthorityKeyId) + "." + base64.RawURLEncoding.EncodeToString(serial)
}

// ParseCertID splits an identifier into the authority key identifier and
// the serial in signet's spelling (lowercase hex, no leading zeros).
func ParseCertID(id string) (aki []byte, serial string, err error) {
	a, s, ok := strings.Cut(id, ".")
	if !ok || len(id) > 512 {
		return nil, "", errs.New(errs.Malformed, "certificate identifier %q is not AKI.serial", id)
	}
	if aki, err = base64.RawURLEncoding.DecodeString(a); err != nil || len(aki) == 0 {
		return nil, "", errs.New(errs.Malformed, "certificate identifier: authority key identifier is not base64url")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) == 0 || len(raw) > 32 || raw[0]&0x80 != 0 {
		return nil, "", errs.New(errs.Malformed, "certificate identifier: serial is not a base64url positive DER integer")
	}
	for len(raw) > 1 && raw[0] == 0 {
		raw = raw[1:]
	}
	return aki, hex.EncodeToString(raw), nil
}

// Window suggests when to renew a certificate valid from notBefore to
// notAfter: the middle of its last third, so that a client checking daily
// renews with a third of the lifetime to spare and many clients spread out.
// A revoked certificate should be replaced now: its window has begun.
func Window(notBefore, notAfter time.Time, revoked bool, now time.Time) acme.Window {
	if revoked {
		return acme.Window{Start: now.Add(-time.Hour).UTC().Truncate(time.Second), End: now.Add(time.Hour).UTC().Truncate(time.Second)}
	}
	life := notAfter.Sub(notBefore)
	start := notBefore.Add(life * 2 / 3)
	end := start.Add(life / 6)
	return acme.Window{Start: start.UTC().Truncate(time.Second), End: end.UTC().Truncate(time.Second)}
}

// RetryAfter is how long clients should wait before asking again.
const RetryAfter = 6 * time.Hour
