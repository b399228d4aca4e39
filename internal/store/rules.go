package store

import "signet/internal/errs"

// The rules on stored state, one function per write: each backend reads
// what a rule needs inside its write transaction (the SQL is its own) and
// lets the rule decide whether the write may go ahead, so that every backend
// refuses the same writes with the same errors. A string a backend read is
// "" where the row is missing.

// CheckCreateAuthority is CreateAuthority's and CreateSSHAuthority's
// rule: exists, whether the name is taken; parentExists, whether a.Parent
// exists.
func CheckCreateAuthority(a Authority, exists, parentExists bool) error {
	switch {
	case exists:
		return errs.New(errs.Conflict, "authority %q already exists", a.Name)
	case a.Parent != "" && !parentExists:
		return errs.New(errs.NotFound, "parent authority %q of %q does not exist", a.Parent, a.Name)
	}
	return nil
}

// CheckAuthorityExists is the rule of the writes under an authority that
// must exist already: ChangeAuthority, AddSSHKey, SetSSHKeyState,
// CreateACMEAccount, CreateEABKey and NextCRLNumbers.
func CheckAuthorityExists(name string, exists bool) error {
	if !exists {
		return errs.New(errs.NotFound, "authority %q does not exist", name)
	}
	return nil
}

// CheckRecordCertificate is RecordCertificate's rule: taken, whether its
// serial is recorded already.
func CheckRecordCertificate(c Certificate, taken, authorityExists bool) error {
	switch {
	case taken:
		return errs.New(errs.Conflict, "certificate %s is already recorded", c.Serial)
	case !authorityExists:
		return errs.New(errs.NotFound, "authority %q of certificate %s does not exist", c.Authority, c.Serial)
	}
	return nil
}

// CheckRevoke is Revoke's rule: status is the stored certificate's.
func CheckRevoke(serial, status string) error {
	switch {
	case status == "":
		return errs.New(errs.NotFound, "certificate %s not found", serial)
	case status == string(Revoked):
		return errs.New(errs.Conflict, "certificate %s is already revoked", serial)
	}
	return nil
}

// CheckAddSSHKey is AddSSHKey's rule: cur is the stored state of the key.
func CheckAddSSHKey(k SSHKey, cur string) error {
	if cur != "" {
		return errs.New(errs.Conflict, "authority %q has the key %s already (%s)", k.Authority, k.Fingerprint, cur)
	}
	return nil
}

// CheckSetSSHKeyState is SetSSHKeyState's rule: cur is the stored state of
// the key. A key must exist and change, and revocation is final.
func CheckSetSSHKeyState(authority, fingerprint, cur string, next SSHKeyState) error {
	switch {
	case cur == "":
		return errs.New(errs.NotFound, "authority %q has no SSH key %s", authority, fingerprint)
	case cur == string(next):
		return errs.New(errs.Conflict, "SSH key %s of %q is %s already", fingerprint, authority, next)
	case cur == string(SSHKeyRevoked):
		return errs.New(errs.Conflict, "SSH key %s of %q is revoked; revocation is final", fingerprint, authority)
	}
	return nil
}

// CheckRecordSSHCertificate is RecordSSHCertificate's rule: taken, whether
// its serial is recorded already; keyState, the stored state of its CA key,
// which must be the active one; keyIDRevoked, whether a certificate of the
// authority was revoked by the key ID (RevokedByKeyID). The authority's KRL
// lists such a key ID for every CA key, so sshd would refuse the
// certificate while the inventory called it valid.
func CheckRecordSSHCertificate(c SSHCertificate, taken bool, keyState string, keyIDRevoked bool) error {
	switch {
	case taken:
		return errs.New(errs.Conflict, "SSH certificate serial %d is already recorded", c.Serial)
	case keyState == "":
		return errs.New(errs.NotFound, "authority %q has no SSH key %s", c.Authority, c.CAFingerprint)
	case keyState != string(SSHKeyActive):
		return errs.New(errs.Conflict, "SSH key %s of %q is %s, not active: it may not sign", c.CAFingerprint, c.Authority, keyState)
	case keyIDRevoked:
		return errs.New(errs.Rejected, "key ID %q of authority %q is revoked and its KRL refuses every certificate with it: choose a new key ID", c.KeyID, c.Authority)
	}
	return nil
}

// CheckRevokeSSHCertificate is RevokeSSHCertificate's rule: status and
// authority are the stored certificate's; want, the authority the caller
// named ("" for any).
func CheckRevokeSSHCertificate(serial uint64, status, authority, want string) error {
	switch {
	case status == "":
		return errs.New(errs.NotFound, "SSH certificate %d not found", serial)
	case status == string(Revoked):
		return errs.New(errs.Conflict, "SSH certificate %d is already revoked", serial)
	case want != "" && want != authority:
		return errs.New(errs.NotFound, "SSH certificate %d is not authority %q's", serial, want)
	}
	return nil
}

// CheckRevokeSSHKeyID is RevokeSSHKeyID's rule: total counts the
// authority's certificates with the key ID, open those not yet revoked by it.
func CheckRevokeSSHKeyID(authority, keyID string, total, open int) error {
	switch {
	case total == 0:
		return errs.New(errs.NotFound, "authority %q has issued no SSH certificate with key ID %q", authority, keyID)
	case open == 0:
		return errs.New(errs.Conflict, "key ID %q of %q is already revoked", keyID, authority)
	}
	return nil
}

// CheckCreateACMEAccount is CreateACMEAccount's rule: keyTaken, whether
// another account of the authority has its key.
func CheckCreateACMEAccount(a ACMEAccount, keyTaken, authorityExists bool) error {
	if keyTaken {
		return errs.New(errs.Conflict, "an account with this key exists already")
	}
	return CheckAuthorityExists(a.Authority, authorityExists)
}

// CheckBindEABKey is CreateACMEAccount's rule for its external account
// binding key: keyAuthority and boundTo are the stored key's authority and
// account. The key must be the account's authority's and unbound.
func CheckBindEABKey(a ACMEAccount, keyAuthority, boundTo string) error {
	switch {
	case keyAuthority != a.Authority:
		return errs.New(errs.NotFound, "external account binding key %q not found", a.EABKeyID)
	case boundTo != "":
		return errs.New(errs.Conflict, "external account binding key %q is bound to another account", a.EABKeyID)
	}
	return nil
}

// CheckChangeACMEAccount is the rule of the account changes
// (UpdateACMEAccountContacts, ChangeACMEAccountKey, DeactivateACMEAccount):
// keyID and status are the stored account's, a the account as the caller
// read it. The change goes ahead only if the account is still valid with
// the key the caller read.
func CheckChangeACMEAccount(a ACMEAccount, keyID, status string) error {
	switch {
	case status == "":
		return errs.New(errs.NotFound, "ACME account %s not found", a.ID)
	case status != StatusValid:
		return errs.New(errs.Conflict, "ACME account %s is %s", a.ID, status)
	case keyID != a.KeyID:
		return errs.New(errs.Conflict, "the key of ACME account %s changed meanwhile", a.ID)
	}
	return nil
}

// CheckChangeACMEAccountKey is ChangeACMEAccountKey's rule for the new
// key: keyTaken, whether another account of the authority has it.
func CheckChangeACMEAccountKey(keyTaken bool) error {
	if keyTaken {
		return errs.New(errs.Conflict, "another account uses this key")
	}
	return nil
}

// CheckCreateACMEOrder is CreateACMEOrder's rule: exists, whether an order
// has its ID; accountExists, whether its account is the authority's.
func CheckCreateACMEOrder(o ACMEOrder, exists, accountExists bool) error {
	switch {
	case exists:
		return errs.New(errs.Conflict, "ACME order %s exists already", o.ID)
	case !accountExists:
		return errs.New(errs.NotFound, "ACME account %s of authority %q not found", o.AccountID, o.Authority)
	}
	return nil
}

// CheckACMEOrderVersion refuses a write to an order that changed since it
// was read (compare-and-swap on its version: several nodes share orders):
// stored is its stored version, 0 if it is gone (versions start at 1).
func CheckACMEOrderVersion(id string, stored, want int64) error {
	switch {
	case stored == 0:
		return errs.New(errs.NotFound, "ACME order %s not found", id)
	case stored != want:
		return errs.New(errs.Conflict, "ACME order %s changed meanwhile", id)
	}
	return nil
}

// CheckCreateEABKey is CreateEABKey's rule: exists, whether a key has its ID.
func CheckCreateEABKey(k EABKey, exists, authorityExists bool) error {
	if exists {
		return errs.New(errs.Conflict, "external account binding key %q exists already", k.ID)
	}
	return CheckAuthorityExists(k.Authority, authorityExists)
}
