package store

import (
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
)

// What every backend does with a write's arguments before it queues the
// write, one function per write: the checks that need no database, the
// defaults (now is the backend's clock, called only for a missing time),
// and the audit event the write carries (PrepareEvent).

// PrepareCreateAuthority prepares a CreateAuthority call.
func PrepareCreateAuthority(a Authority, ev audit.Event, now func() time.Time) (Authority, audit.Event, error) {
	if err := CheckAuthority(a); err != nil {
		return a, ev, err
	}
	ev, err := PrepareEvent(ev, audit.KindAuthorityCreate, a.Name, a.Name, time.Time{})
	if err != nil {
		return a, ev, err
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	}
	return a, ev, nil
}

// PrepareRecordCertificate prepares a RecordCertificate call: a
// certificate without a status is valid, and the order it finalizes, if
// any, gets its serial (in place: it is the caller's order).
func PrepareRecordCertificate(c Certificate, ev audit.Event) (Certificate, audit.Event, error) {
	if err := CheckCertificate(c); err != nil {
		return c, ev, err
	}
	ev, err := PrepareEvent(ev, audit.KindCertificateIssue, c.Serial, c.Authority, time.Time{})
	if err != nil {
		return c, ev, err
	}
	if c.Status == "" {
		c.Status = Valid
	}
	if o := c.Finalizes; o != nil {
		o.CertSerial = c.Serial
		if err := CheckACMEOrder(*o); err != nil {
			return c, ev, err
		}
	}
	return c, ev, nil
}

// PrepareRevoke prepares a Revoke call.
func PrepareRevoke(serial string, at time.Time, reason int, ev audit.Event) (audit.Event, error) {
	if err := CheckSerial(serial); err != nil {
		return ev, err
	}
	if err := CheckReason(reason); err != nil {
		return ev, err
	}
	if at.IsZero() {
		return ev, errs.New(errs.Malformed, "revocation of %s has no time", serial)
	}
	return PrepareEvent(ev, audit.KindCertificateRevoke, serial, "", time.Time{})
}

// PrepareAppendEvent prepares an AppendEvent call. The events that belong
// to a row are refused: only the methods that write the row may write them.
func PrepareAppendEvent(ev audit.Event) (audit.Event, error) {
	switch ev.Kind {
	case audit.KindCertificateIssue, audit.KindCertificateRevoke, audit.KindAuthorityCreate,
		audit.KindSSHCertificateIssue, audit.KindSSHCertificateRevoke, audit.KindSSHKeyAdd, audit.KindSSHKeyState:
		return ev, errs.New(errs.Malformed, "a %s event is written by the store itself", ev.Kind)
	}
	return PrepareEvent(ev, "", "", "", time.Time{})
}
