// Package columns holds what the SQL stores share in mapping rows to domain
// values and back: the encodings of the columns that hold JSON (certificate
// names, SSH principals, ACME contacts and order bodies) and the scans of
// the rows both read. One codec, so that SQLite, PostgreSQL and `signet
// store migrate` between them agree byte for byte.
package columns

import (
	"encoding/json"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// sans is the JSON kept in certificates.sans.
type sans struct {
	DNS   []string `json:"dns,omitempty"`
	IP    []string `json:"ip,omitempty"`
	Email []string `json:"email,omitempty"`
}

// EncodeSANs is the certificates.sans column of c.
func EncodeSANs(c store.Certificate) (string, error) {
	b, err := json.Marshal(sans{c.DNSNames, c.IPAddresses, c.EmailAddresses})
	if err != nil {
		return "", errs.Wrap(errs.Internal, err, "encode names of certificate %s", c.Serial)
	}
	return string(b), nil
}

// DecodeSANs fills c's names from its certificates.sans column.
func DecodeSANs(s string, c *store.Certificate) error {
	var v sans
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return errs.Wrap(errs.Internal, err, "decode names of certificate %s", c.Serial)
	}
	c.DNSNames, c.IPAddresses, c.EmailAddresses = v.DNS, v.IP, v.Email
	return nil
}

// Name is one row of certificate_names, the index of names to certificates.
type Name struct{ Type, Value string }

// Names lists c's rows of certificate_names.
func Names(c store.Certificate) []Name {
	var out []Name
	for _, v := range c.DNSNames {
		out = append(out, Name{"dns", v})
	}
	for _, v := range c.IPAddresses {
		out = append(out, Name{"ip", v})
	}
	for _, v := range c.EmailAddresses {
		out = append(out, Name{"email", v})
	}
	return out
}

// Time reads a time column: Unix nanoseconds, because the audit hash
// covers nanoseconds and PostgreSQL's timestamptz keeps microseconds.
func Time(unixNano int64) time.Time { return time.Unix(0, unixNano).UTC() }

// orderBody is the JSON kept in acme_orders.body: an order's
// authorizations and challenges are read and written together.
type orderBody struct {
	Identifiers []store.ACMEIdentifier `json:"identifiers"`
	Authzs      []store.ACMEAuthz      `json:"authzs"`
	Profile     string                 `json:"profile,omitempty"`
	ErrorType   string                 `json:"error_type,omitempty"`
	ErrorDetail string                 `json:"error_detail,omitempty"`
}

// EncodeOrder is the acme_orders.body column of o.
func EncodeOrder(o store.ACMEOrder) ([]byte, error) {
	b, err := json.Marshal(orderBody{o.Identifiers, o.Authzs, o.Profile, o.ErrorType, o.ErrorDetail})
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "encode ACME order %s", o.ID)
	}
	return b, nil
}

// OrderColumns are the columns ScanOrder reads, in its order.
const OrderColumns = "id, authority, account_id, status, expires, COALESCE(cert_serial, ''), COALESCE(replaces, ''), body, created_at, version"

// ScanOrder reads one acme_orders row selected with OrderColumns; scan is
// the driver's Rows.Scan.
func ScanOrder(scan func(dest ...any) error) (store.ACMEOrder, error) {
	var o store.ACMEOrder
	var expires, created int64
	var body []byte
	if err := scan(&o.ID, &o.Authority, &o.AccountID, &o.Status, &expires, &o.CertSerial, &o.Replaces,
		&body, &created, &o.Version); err != nil {
		return o, errs.Wrap(errs.Internal, err, "read ACME order")
	}
	var b orderBody
	if err := json.Unmarshal(body, &b); err != nil {
		return o, errs.Wrap(errs.Internal, err, "decode ACME order %s", o.ID)
	}
	o.Expires, o.CreatedAt = Time(expires), Time(created)
	o.Identifiers, o.Authzs, o.Profile, o.ErrorType, o.ErrorDetail = b.Identifiers, b.Authzs, b.Profile, b.ErrorType, b.ErrorDetail
	for i := range o.Authzs {
		for j := range o.Authzs[i].Challenges {
			if v := &o.Authzs[i].Challenges[j].Validated; !v.IsZero() {
				*v = v.UTC()
			}
		}
	}
	return o, nil
}

// CertificateColumns are the certificates columns ScanCertificate reads.
// Nullable columns are coalesced so both drivers scan plain values.
const CertificateColumns = "serial, authority, subject, sans, not_before, not_after, status, COALESCE(revoked_at, 0), reason, requester, der, shard, internal"

// ScanCertificate reads one certificates row selected with CertificateColumns.
func ScanCertificate(scan func(dest ...any) error) (store.Certificate, error) {
	var c store.Certificate
	var sans, status string
	var notBefore, notAfter, revokedAt int64
	if err := scan(&c.Serial, &c.Authority, &c.Subject, &sans, &notBefore, &notAfter, &status,
		&revokedAt, &c.RevocationReason, &c.Requester, &c.DER, &c.Shard, &c.Internal); err != nil {
		return c, errs.Wrap(errs.Internal, err, "read certificate")
	}
	if err := DecodeSANs(sans, &c); err != nil {
		return c, err
	}
	c.NotBefore, c.NotAfter, c.Status = Time(notBefore), Time(notAfter), store.Status(status)
	if revokedAt != 0 {
		c.RevokedAt = Time(revokedAt)
	}
	return c, nil
}

// CertStatusColumns are the certificates columns ScanCertStatus reads.
const CertStatusColumns = "serial, authority, shard, not_after, revoked_at, reason"

// ScanCertStatus reads one certificates row selected with CertStatusColumns.
// It is the row loop of a whole CRL and of the revocation services' start
// (a million rows): it scans into the drivers' own values (TEXT as string,
// INTEGER as int64, NULL as nil; both drivers), which database/sql hands
// over as they are, where typed destinations cost a conversion per column
// (an int through strconv) and an allocation for the nullable revoked_at.
// A certificate is revoked when revoked_at is set.
func ScanCertStatus(scan func(dest ...any) error) (store.CertStatus, error) {
	var c store.CertStatus
	var v [6]any
	if err := scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5]); err != nil {
		return c, errs.Wrap(errs.Internal, err, "read certificate status")
	}
	var ok [6]bool
	var shard, notAfter, reason int64
	c.Serial, ok[0] = text(v[0])
	c.Authority, ok[1] = text(v[1])
	shard, ok[2] = v[2].(int64)
	notAfter, ok[3] = v[3].(int64)
	revokedAt, revoked := v[4].(int64)
	ok[4] = revoked || v[4] == nil
	reason, ok[5] = v[5].(int64)
	for i, good := range ok {
		if !good {
			return c, errs.New(errs.Internal, "read certificate status: column %d is a %T", i, v[i])
		}
	}
	c.Shard, c.NotAfter, c.Revoked, c.Reason = int(shard), Time(notAfter), revoked, int(reason)
	if revoked {
		c.RevokedAt = Time(revokedAt)
	}
	return c, nil
}

// text is a TEXT column's value scanned into any: a string, or bytes from
// a driver that gives those, as database/sql converts them for a *string.
func text(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case []byte:
		return string(s), true
	}
	return "", false
}

// AuthorityColumns are the authorities columns ScanAuthority reads.
const AuthorityColumns = "name, purpose, COALESCE(parent, ''), key_uri, cert_der, policy, default_validity, max_validity, created_at, base_url, shards, acme, require_eab, NOT enabled"

// ScanAuthority reads one authorities row selected with AuthorityColumns.
func ScanAuthority(scan func(dest ...any) error) (store.Authority, error) {
	var a store.Authority
	var policy []byte
	var def, maxv, created int64
	if err := scan(&a.Name, &a.Purpose, &a.Parent, &a.KeyURI, &a.CertDER, &policy, &def, &maxv, &created, &a.BaseURL, &a.Shards, &a.ACME, &a.RequireEAB, &a.Disabled); err != nil {
		return a, errs.Wrap(errs.Internal, err, "read authority")
	}
	if len(policy) > 0 {
		a.Policy = policy
	}
	a.DefaultValidity, a.MaxValidity, a.CreatedAt = time.Duration(def), time.Duration(maxv), Time(created)
	return a, nil
}

// EventColumns are the events columns ScanEvent reads.
const EventColumns = "seq, time, kind, actor, authority, subject, data, prev, hash, state"

// ScanEvent reads one events row selected with EventColumns, byte for
// byte: the hash covers what was written.
func ScanEvent(scan func(dest ...any) error) (audit.Event, error) {
	var e audit.Event
	var t int64
	var data, state []byte
	if err := scan(&e.Seq, &t, &e.Kind, &e.Actor, &e.Authority, &e.Subject, &data, &e.Prev, &e.Hash, &state); err != nil {
		return e, errs.Wrap(errs.Internal, err, "read audit event")
	}
	// Malformed state bytes leave State empty: the event then no longer
	// matches its hash, which is how audit.Verify reports an edit.
	e.State, _ = audit.DecodeState(state)
	e.Time = Time(t)
	if len(data) > 0 {
		e.Data = data
	}
	return e, nil
}

// SSHKeyColumns are the ssh_authority_keys columns ScanSSHKey reads.
const SSHKeyColumns = "authority, fingerprint, key_uri, public_key, state, created_at"

// ScanSSHKey reads one ssh_authority_keys row selected with SSHKeyColumns.
func ScanSSHKey(scan func(dest ...any) error) (store.SSHKey, error) {
	var k store.SSHKey
	var state string
	var created int64
	if err := scan(&k.Authority, &k.Fingerprint, &k.KeyURI, &k.PublicKey, &state, &created); err != nil {
		return k, errs.Wrap(errs.Internal, err, "read SSH key")
	}
	k.State, k.CreatedAt = store.SSHKeyState(state), Time(created)
	return k, nil
}

// EncodePrincipals is the ssh_certificates.principals column of c.
func EncodePrincipals(c store.SSHCertificate) (string, error) {
	b, err := json.Marshal(c.Principals)
	if err != nil {
		return "", errs.Wrap(errs.Internal, err, "encode principals")
	}
	return string(b), nil
}

// SSHCertificateColumns are the ssh_certificates columns
// ScanSSHCertificate reads.
const SSHCertificateColumns = "serial, authority, ca_fingerprint, key_id, type, principals, valid_after, valid_before, status, revoked_at, revoked_by, requester, cert"

// ScanSSHCertificate reads one ssh_certificates row selected with
// SSHCertificateColumns. The nullable revoked_at and revoked_by scan into
// pointers, which both drivers set to nil for NULL.
func ScanSSHCertificate(scan func(dest ...any) error) (store.SSHCertificate, error) {
	var c store.SSHCertificate
	var serial, after, before int64
	var typ, principals, status string
	var revokedAt *int64
	var revokedBy *string
	if err := scan(&serial, &c.Authority, &c.CAFingerprint, &c.KeyID, &typ, &principals, &after, &before,
		&status, &revokedAt, &revokedBy, &c.Requester, &c.Cert); err != nil {
		return c, errs.Wrap(errs.Internal, err, "read SSH certificate")
	}
	if err := json.Unmarshal([]byte(principals), &c.Principals); err != nil {
		return c, errs.Wrap(errs.Internal, err, "decode principals of SSH certificate %d", serial)
	}
	c.Serial, c.Type, c.Status = uint64(serial), store.SSHCertType(typ), store.Status(status)
	c.ValidAfter, c.ValidBefore = Time(after), Time(before)
	if revokedBy != nil {
		c.RevokedBy = *revokedBy
	}
	if revokedAt != nil {
		c.RevokedAt = Time(*revokedAt)
	}
	return c, nil
}

// EncodeContacts is the acme_accounts.contacts column of a: a JSON array,
// [] when it has none.
func EncodeContacts(a store.ACMEAccount) string {
	l := a.Contacts
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l) // strings always encode
	return string(b)
}

// ACMEAccountColumns are the acme_accounts columns ScanACMEAccount reads.
const ACMEAccountColumns = "id, authority, key_id, jwk, contacts, status, COALESCE(eab_kid, ''), created_at"

// ScanACMEAccount reads one acme_accounts row selected with ACMEAccountColumns.
func ScanACMEAccount(scan func(dest ...any) error) (store.ACMEAccount, error) {
	var a store.ACMEAccount
	var contacts string
	var created int64
	if err := scan(&a.ID, &a.Authority, &a.KeyID, &a.Key, &contacts, &a.Status, &a.EABKeyID, &created); err != nil {
		return a, errs.Wrap(errs.Internal, err, "read ACME account")
	}
	a.CreatedAt = Time(created)
	return a, json.Unmarshal([]byte(contacts), &a.Contacts)
}

// EABKeyColumns are the acme_eab_keys columns ScanEABKey reads.
const EABKeyColumns = "kid, authority, sealed, created_at, COALESCE(account_id, '')"

// ScanEABKey reads one acme_eab_keys row selected with EABKeyColumns.
func ScanEABKey(scan func(dest ...any) error) (store.EABKey, error) {
	var k store.EABKey
	var created int64
	if err := scan(&k.ID, &k.Authority, &k.Sealed, &created, &k.AccountID); err != nil {
		return k, errs.Wrap(errs.Internal, err, "read external account binding key")
	}
	k.CreatedAt = Time(created)
	return k, nil
}

// NullTime is the column of an optional time: NULL if t is zero, else its
// Unix nanoseconds. Both drivers write a nil interface as NULL.
func NullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// NullString is the column of an optional string: NULL if s is empty.
func NullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// NullBytes is the column of optional bytes: NULL if b is empty.
func NullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
