package store

import (
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
)

// What every backend does with a write's arguments before it queues the
// write, one function per write: the checks that need no database, the
// defaults (now is the backend's clock, called only for a missing time),
// and the audit event the write carries (PrepareEvent). What needs the
// stored state is decided in the write's transaction (rules.go).

// PrepareCreateAuthority prepares a CreateAuthority call.
func PrepareCreateAuthority(a Authority, ev audit.Event, now func() time.Time) (Authority, audit.Event, error) {
	if err := CheckAuthority(a); err != nil {
		return a, ev, err
	}
	ev, err := PrepareEvent(ev, audit.KindAuthorityCreate, a.Name, a.Name)
	if err != nil {
		return a, ev, err
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	}
	return a, ev, nil
}

// PrepareChangeAuthority prepares a ChangeAuthority call.
func PrepareChangeAuthority(name string, ch AuthorityChange, ev audit.Event) (audit.Event, error) {
	switch {
	case name == "":
		return ev, errs.New(errs.Malformed, "authority has no name")
	case ch.Empty():
		return ev, errs.New(errs.Malformed, "no change given for authority %q", name)
	}
	return PrepareEvent(ev, audit.KindAuthorityUpdate, name, name)
}

// PrepareRecordCertificate prepares a RecordCertificate call: a
// certificate without a status is valid, and the order it finalizes, if
// any, gets its serial. That order is a copy: the caller's is left alone,
// and the backend's writer does not share it with the caller.
func PrepareRecordCertificate(c Certificate, ev audit.Event) (Certificate, audit.Event, error) {
	if err := CheckCertificate(c); err != nil {
		return c, ev, err
	}
	ev, err := PrepareEvent(ev, audit.KindCertificateIssue, c.Serial, c.Authority)
	if err != nil {
		return c, ev, err
	}
	if c.Status == "" {
		c.Status = Valid
	}
	if c.Rider != nil {
		o := c.Rider.Finalizes()
		o.CertSerial = c.Serial
		c.Rider = FinalizeOrder(o)
		if err := CheckACMEOrder(o); err != nil {
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
	return PrepareEvent(ev, audit.KindCertificateRevoke, serial, "")
}

// PrepareAppendEvent prepares an AppendEvent call. The events that belong
// to a row are refused: only the methods that write the row may write them.
func PrepareAppendEvent(ev audit.Event) (audit.Event, error) {
	switch ev.Kind {
	case audit.KindCertificateIssue, audit.KindCertificateRevoke, audit.KindAuthorityCreate, audit.KindAuthorityUpdate,
		audit.KindSSHCertificateIssue, audit.KindSSHCertificateRevoke, audit.KindSSHKeyAdd, audit.KindSSHKeyState,
		audit.KindKeyURIRewrite:
		return ev, errs.New(errs.Malformed, "a %s event is written by the store itself", ev.Kind)
	}
	return PrepareEvent(ev, "", "", "")
}

// PrepareCreateSSHAuthority prepares a CreateSSHAuthority call: k is the
// authority's first key, active, created with it unless it says otherwise.
// The key is checked before the event, as the authority is.
func PrepareCreateSSHAuthority(a Authority, k SSHKey, ev audit.Event, now func() time.Time) (Authority, SSHKey, audit.Event, error) {
	if err := CheckAuthority(a); err != nil {
		return a, k, ev, err
	}
	k.Authority, k.State = a.Name, SSHKeyActive
	if err := CheckSSHKey(k); err != nil {
		return a, k, ev, err
	}
	a, ev, err := PrepareCreateAuthority(a, ev, now)
	if err != nil {
		return a, k, ev, err
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = a.CreatedAt
	}
	return a, k, ev, nil
}

// PrepareAddSSHKey prepares an AddSSHKey call.
func PrepareAddSSHKey(k SSHKey, ev audit.Event, now func() time.Time) (SSHKey, audit.Event, error) {
	if err := CheckSSHKey(k); err != nil {
		return k, ev, err
	}
	ev, err := PrepareEvent(ev, audit.KindSSHKeyAdd, k.Fingerprint, k.Authority)
	if err != nil {
		return k, ev, err
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now()
	}
	return k, ev, nil
}

// PrepareSetSSHKeyState prepares a SetSSHKeyState call.
func PrepareSetSSHKeyState(authority, fingerprint string, state SSHKeyState, ev audit.Event) (audit.Event, error) {
	if err := CheckSSHKeyState(state); err != nil {
		return ev, err
	}
	return PrepareEvent(ev, audit.KindSSHKeyState, fingerprint, authority)
}

// PrepareRecordSSHCertificate prepares a RecordSSHCertificate call: a
// certificate without a status is valid.
func PrepareRecordSSHCertificate(c SSHCertificate, ev audit.Event) (SSHCertificate, audit.Event, error) {
	if err := CheckSSHCertificate(c); err != nil {
		return c, ev, err
	}
	ev, err := PrepareEvent(ev, audit.KindSSHCertificateIssue, SSHSubject(c.Serial), c.Authority)
	if err != nil {
		return c, ev, err
	}
	if c.Status == "" {
		c.Status = Valid
	}
	return c, ev, nil
}

// PrepareRevokeSSHCertificate prepares a RevokeSSHCertificate call.
func PrepareRevokeSSHCertificate(serial uint64, at time.Time, ev audit.Event) (audit.Event, error) {
	if err := CheckSSHSerial(serial); err != nil {
		return ev, err
	}
	if at.IsZero() {
		return ev, errs.New(errs.Malformed, "revocation of SSH certificate %d has no time", serial)
	}
	return PrepareEvent(ev, audit.KindSSHCertificateRevoke, SSHSubject(serial), "")
}

// PrepareRevokeSSHKeyID prepares a RevokeSSHKeyID call; the event's
// subject is "ssh-key-id:" and the key ID.
func PrepareRevokeSSHKeyID(authority, keyID string, at time.Time, ev audit.Event) (audit.Event, error) {
	if authority == "" || keyID == "" {
		return ev, errs.New(errs.Malformed, "revoking by key ID needs the authority and the key ID")
	}
	if at.IsZero() {
		return ev, errs.New(errs.Malformed, "revocation of key ID %q has no time", keyID)
	}
	return PrepareEvent(ev, audit.KindSSHCertificateRevoke, "ssh-key-id:"+keyID, authority)
}

// PrepareCreateACMEAccount prepares a CreateACMEAccount call.
func PrepareCreateACMEAccount(a ACMEAccount, ev audit.Event, now func() time.Time) (ACMEAccount, audit.Event, error) {
	if err := CheckACMEAccount(a); err != nil {
		return a, ev, err
	}
	ev, err := PrepareEvent(ev, "acme.account.create", a.ID, a.Authority)
	if err != nil {
		return a, ev, err
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	}
	return a, ev, nil
}

// PrepareChangeACMEAccount prepares an account change of kind (update,
// deactivation, key rollover) to a, the account as the caller read it.
func PrepareChangeACMEAccount(a ACMEAccount, kind string, ev audit.Event) (audit.Event, error) {
	if a.ID == "" || a.Authority == "" || a.KeyID == "" {
		return ev, errs.New(errs.Malformed, "an ACME account change needs the account's ID, authority and key as read")
	}
	return PrepareEvent(ev, kind, a.ID, a.Authority)
}

// PrepareCreateACMEOrder prepares a CreateACMEOrder call.
func PrepareCreateACMEOrder(o ACMEOrder, ev audit.Event, now func() time.Time) (ACMEOrder, audit.Event, error) {
	if err := CheckACMEOrder(o); err != nil {
		return o, ev, err
	}
	ev, err := PrepareEvent(ev, audit.KindACMEOrderCreate, o.ID, o.Authority)
	if err != nil {
		return o, ev, err
	}
	if o.CreatedAt.IsZero() {
		o.CreatedAt = now()
	}
	return o, ev, nil
}

// PrepareUpdateACMEOrder prepares an UpdateACMEOrder call: the event
// names its transition.
func PrepareUpdateACMEOrder(o ACMEOrder, ev audit.Event) (audit.Event, error) {
	if err := CheckACMEOrder(o); err != nil {
		return ev, err
	}
	return PrepareEvent(ev, "", o.ID, o.Authority)
}

// PrepareCreateEABKey prepares a CreateEABKey call.
func PrepareCreateEABKey(k EABKey, ev audit.Event, now func() time.Time) (EABKey, audit.Event, error) {
	if err := CheckEABKey(k); err != nil {
		return k, ev, err
	}
	ev, err := PrepareEvent(ev, "acme.eab.create", k.ID, k.Authority)
	if err != nil {
		return k, ev, err
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now()
	}
	return k, ev, nil
}
