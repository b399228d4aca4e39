package sshca

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/profile"
	"signet/internal/store"
)

// backdate tolerates clocks a little behind ours, as ca does for X.509.
const backdate = time.Minute

// MaxPublicKeySize bounds a public key file accepted from anyone.
const MaxPublicKeySize = 16 << 10

// Request asks an SSH authority for a certificate.
type Request struct {
	Authority  string
	PublicKey  ssh.PublicKey
	Type       store.SSHCertType
	Principals []string
	Validity   time.Duration // 0: the authority's default
	KeyID      string        // "": the first principal
	Options    CertOptions   // user certificates only
	Actor      string        // who asks, for the audit log
}

// CertOptions restrict a user certificate. The zero value is what ssh-keygen
// gives by default: no critical options, every permit-* extension.
type CertOptions struct {
	ForceCommand      string
	SourceAddresses   []string // CIDRs or addresses
	NoPortForwarding  bool
	NoAgentForwarding bool
	NoX11Forwarding   bool
	NoPTY             bool
	NoUserRC          bool
}

func (o CertOptions) zero() bool {
	return o.ForceCommand == "" && len(o.SourceAddresses) == 0 && !o.NoPortForwarding && !o.NoAgentForwarding &&
		!o.NoX11Forwarding && !o.NoPTY && !o.NoUserRC
}

// defaultPermissions is what a user certificate without options carries:
// no critical options, every permit-* extension. Certificates share these
// maps (they are only read, by the encoder); nothing may write to them.
var defaultPermissions = func() ssh.Permissions {
	p, _ := CertOptions{}.build()
	return p
}()

// permissions turns options into the certificate's critical options and
// extensions, checking source addresses the way sshd will read them.
func (o CertOptions) permissions() (ssh.Permissions, error) {
	if o.zero() {
		return defaultPermissions, nil
	}
	return o.build()
}

func (o CertOptions) build() (ssh.Permissions, error) {
	p := ssh.Permissions{CriticalOptions: map[string]string{}, Extensions: map[string]string{}}
	if o.ForceCommand != "" {
		p.CriticalOptions["force-command"] = o.ForceCommand
	}
	if len(o.SourceAddresses) > 0 {
		for _, s := range o.SourceAddresses {
			if err := checkSourceAddress(s); err != nil {
				return p, err
			}
		}
		p.CriticalOptions["source-address"] = strings.Join(o.SourceAddresses, ",")
	}
	for _, e := range [...]struct {
		name string
		off  bool
	}{
		{"permit-X11-forwarding", o.NoX11Forwarding}, {"permit-agent-forwarding", o.NoAgentForwarding},
		{"permit-port-forwarding", o.NoPortForwarding}, {"permit-pty", o.NoPTY}, {"permit-user-rc", o.NoUserRC},
	} {
		if !e.off {
			p.Extensions[e.name] = ""
		}
	}
	return p, nil
}

// checkSourceAddress refuses a source-address entry that sshd would refuse,
// and with it the whole certificate: OpenSSH takes an IPv4 or IPv6 address
// or a CIDR whose host bits are zero, and no IPv6 zone. Go's parser is
// stricter than OpenSSH's in places (no "10.1" shorthand, no leading zeros
// in a prefix length, nothing longer than OpenSSH reads), which only ever
// refuses more.
func checkSourceAddress(s string) error {
	if strings.Contains(s, "%") {
		return errs.New(errs.Malformed, "source address %q names an IPv6 zone, which sshd refuses; give the address without %%zone", s)
	}
	if !strings.Contains(s, "/") {
		if _, err := netip.ParseAddr(s); err != nil {
			return errs.New(errs.Malformed, "source address %q is not a CIDR or an IP address", s)
		}
		return nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return errs.New(errs.Malformed, "source address %q is not a CIDR or an IP address", s)
	}
	if p != p.Masked() {
		return errs.New(errs.Malformed, "source address %q has host bits set, which sshd refuses; write %s", s, p.Masked())
	}
	return nil
}

// Issued is an SSH certificate that is signed and durably recorded.
type Issued struct {
	Serial uint64
	// Cert is for reading: a certificate without options shares its
	// Permissions maps with every other one (defaultPermissions).
	Cert *ssh.Certificate
}

// Line is the certificate as a -cert.pub file holds it.
func (i *Issued) Line() []byte { return ssh.MarshalAuthorizedKey(i.Cert) }

// ParsePublicKey reads a public key in authorized_keys form (a .pub file),
// refusing certificates and oversized input.
func ParsePublicKey(data []byte) (ssh.PublicKey, error) {
	if len(data) > MaxPublicKeySize {
		return nil, errs.New(errs.Malformed, "public key is larger than %d bytes", MaxPublicKeySize)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "cannot parse the SSH public key")
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return nil, errs.New(errs.Malformed, "that is a certificate; give the public key (.pub) it certifies")
	}
	return pub, nil
}

// Issue is the one issuance path for SSH certificates.
func (c *CA) Issue(ctx context.Context, req Request) (*Issued, error) {
	iss, retry, err := c.sign(ctx, req)
	if retry {
		// The key rolled over since this authority was loaded (or another
		// process took the serial in the same millisecond): load again and
		// sign once more. Other conflicts, such as an authority without an
		// active key, are permanent: a retry would only load it again.
		c.forget(req.Authority)
		iss, _, err = c.sign(ctx, req)
	}
	return iss, err
}

// sign signs and records one certificate; retry reports that the store
// refused the record as a conflict, which a fresh load may resolve.
func (c *CA) sign(ctx context.Context, req Request) (_ *Issued, retry bool, _ error) {
	a, err := c.authority(ctx, req.Authority)
	if err != nil {
		return nil, false, err
	}
	cert, key, err := c.certificate(a, &req)
	if err != nil {
		return nil, false, err
	}
	blob, signed, err := signCert(cert, key, a)
	if err != nil {
		return nil, false, errs.Wrap(errs.Unavailable, err, "signing with the key of %q failed", a.rec.Name)
	}
	if a.verify {
		if err := verifySignature(cert, blob[:signed]); err != nil {
			return nil, false, err
		}
	}
	rec := store.SSHCertificate{
		Serial: cert.Serial, Authority: a.rec.Name, CAFingerprint: a.key.Fingerprint, KeyID: cert.KeyId,
		Type: req.Type, Principals: cert.ValidPrincipals, ValidAfter: time.Unix(int64(cert.ValidAfter), 0).UTC(),
		ValidBefore: time.Unix(int64(cert.ValidBefore), 0).UTC(), Status: store.Valid, Requester: req.Actor,
		Cert: blob,
	}
	ev := c.event(audit.Event{Kind: audit.KindSSHCertificateIssue, Actor: req.Actor, Authority: a.rec.Name, Subject: store.SSHSubject(cert.Serial)}, issueData{
		CAKey: a.key.Fingerprint, Key: fingerprint(key), KeyID: cert.KeyId, Principals: cert.ValidPrincipals,
		Type: req.Type, ValidBefore: rec.ValidBefore.Format(time.RFC3339Nano),
	})
	if err := c.store.RecordSSHCertificate(ctx, rec, ev); err != nil {
		// Signed but never issued (the key rolled over meanwhile, the store
		// is down): as ca does for X.509, the log accounts for the signature.
		discard := c.event(audit.Event{Kind: audit.KindSSHCertificateDiscard, Actor: req.Actor, Authority: a.rec.Name, Subject: store.SSHSubject(cert.Serial)}, map[string]string{
			"reason": err.Error(), "ca_key": a.key.Fingerprint,
		})
		retry := errs.KindOf(err) == errs.Conflict
		if derr := c.store.AppendEvent(context.WithoutCancel(ctx), discard); derr != nil {
			return nil, retry, errors.Join(err, derr)
		}
		return nil, retry, err
	}
	return &Issued{Serial: cert.Serial, Cert: cert}, false, nil
}

// issueData is the issue event's data. A struct, where other events use a
// map, because this one is written per certificate: encoding a map goes
// through reflection and sorting. Fields in the order a map would give;
// the time preformatted as time.Time's JSON form, which encoding/json would
// otherwise re-validate and compact.
type issueData struct {
	CAKey       string            `json:"ca_key"`
	Key         string            `json:"key"`
	KeyID       string            `json:"key_id"`
	Principals  []string          `json:"principals"`
	Type        store.SSHCertType `json:"type"`
	ValidBefore string            `json:"valid_before"`
}

// fingerprint is ssh.FingerprintSHA256 of a key already in wire form, so
// that the subject key is not marshalled once more per certificate.
func fingerprint(wire []byte) string {
	sum := sha256.Sum256(wire)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// certificate checks a request against the authority and builds the
// unsigned certificate, and gives the subject key's wire form.
func (c *CA) certificate(a *authority, req *Request) (*ssh.Certificate, []byte, error) {
	want := store.SSHUserCert
	if a.purpose == profile.SSHHost {
		want = store.SSHHostCert
	}
	if req.Type == "" {
		req.Type = want
	}
	if req.Type != want {
		return nil, nil, errs.New(errs.Rejected, "authority %q (%s) issues %s certificates, not %s certificates", a.rec.Name, a.purpose, want, req.Type)
	}
	if req.PublicKey == nil {
		return nil, nil, errs.New(errs.Malformed, "no subject public key")
	}
	if _, ok := req.PublicKey.(*ssh.Certificate); ok {
		return nil, nil, errs.New(errs.Malformed, "the subject key is a certificate; give the public key it certifies")
	}
	cpk, ok := req.PublicKey.(ssh.CryptoPublicKey)
	if !ok {
		return nil, nil, errs.New(errs.Rejected, "subject keys of type %s are not supported", req.PublicKey.Type())
	}
	if err := checkKey(cpk.CryptoPublicKey(), "subject"); err != nil {
		return nil, nil, err
	}
	key := req.PublicKey.Marshal()
	if bytes.Equal(key, a.caKey) {
		return nil, nil, errs.New(errs.Rejected, "the subject key is the authority's own key")
	}
	if len(req.Principals) == 0 {
		return nil, nil, errs.New(errs.Malformed, "give at least one principal: a certificate without principals is valid for anyone")
	}
	if err := a.policy.CheckPrincipals(req.Principals); err != nil {
		return nil, nil, err
	}
	keyID := req.KeyID
	if keyID == "" {
		keyID = req.Principals[0]
	}
	if len(keyID) > 255 || strings.ContainsFunc(keyID, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, nil, errs.New(errs.Malformed, "key ID %q must be at most 255 printable characters", keyID)
	}
	perms := ssh.Permissions{}
	if req.Type == store.SSHUserCert {
		p, err := req.Options.permissions()
		if err != nil {
			return nil, nil, err
		}
		perms = p
	} else if !req.Options.zero() {
		return nil, nil, errs.New(errs.Malformed, "host certificates carry no options (force-command, source-address, no-*)")
	}
	validity, err := a.rec.Validity(req.Validity)
	if err != nil {
		return nil, nil, err
	}
	now := c.now().UTC()
	serial, err := c.serials.next(now)
	if err != nil {
		return nil, nil, err
	}
	now = now.Truncate(time.Second)
	certType := uint32(ssh.UserCert)
	if req.Type == store.SSHHostCert {
		certType = ssh.HostCert
	}
	return &ssh.Certificate{
		Key: req.PublicKey, Serial: serial, CertType: certType, KeyId: keyID,
		ValidPrincipals: slices.Clone(req.Principals),
		ValidAfter:      uint64(now.Add(-backdate).Unix()), ValidBefore: uint64(now.Add(validity).Unix()),
		Permissions: perms,
	}, key, nil
}

// verifySignature checks a token's signature before the certificate
// exists for anyone: a faulty token must not yield a certificate that
// OpenSSH refuses.
func verifySignature(cert *ssh.Certificate, signed []byte) error {
	if err := cert.SignatureKey.Verify(signed, cert.Signature); err != nil {
		return errs.Wrap(errs.Internal, err, "the CA key returned an invalid signature")
	}
	return nil
}

// signCert signs cert as x/crypto/ssh's SignCert does (a random 32-byte
// nonce; the signer's first algorithm, so an RSA CA key signs with
// rsa-sha2-512, chosen at load), and returns its wire form and how much of it the
// signature covers. The signature is the certificate's last field: the
// library encodes the certificate once, without it, and the signed bytes
// followed by the signature as a string are the whole certificate, so it is
// not encoded a second time (SignCert then Marshal would encode it twice).
// key is the subject key's wire form and a.caKey the CA key's, both at
// hand already: the library's encoder takes them from the keys' Marshal, so
// it gets them from there instead of encoding them again.
func signCert(cert *ssh.Certificate, key []byte, a *authority) (blob []byte, signed int, err error) {
	cert.Nonce = make([]byte, 32)
	if _, err := rand.Read(cert.Nonce); err != nil {
		return nil, 0, err
	}
	subject, ca := cert.Key, a.signer.PublicKey()
	cert.Key, cert.SignatureKey = wired{subject, key}, wired{ca, a.caKey}
	cert.Signature = nil
	unsigned := cert.Marshal()
	cert.Key, cert.SignatureKey = subject, ca
	tbs := unsigned[:len(unsigned)-4] // drop the empty signature
	began := time.Now()
	sig, err := a.signer.SignWithAlgorithm(rand.Reader, tbs, a.algorithm)
	if a.signed != nil {
		a.signed(time.Since(began), err)
	}
	if err != nil {
		return nil, 0, err
	}
	cert.Signature = sig
	field := ssh.Marshal(struct{ Signature []byte }{ssh.Marshal(sig)})
	blob = make([]byte, len(tbs), len(tbs)+len(field))
	copy(blob, tbs)
	return append(blob, field...), len(tbs), nil
}

// wired is a public key whose wire form is known already.
type wired struct {
	ssh.PublicKey
	wire []byte
}

func (k wired) Marshal() []byte { return k.wire }
