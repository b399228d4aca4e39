package ca

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
)

// RootSpec describes the self-signed root of a home.
type RootSpec struct {
	CommonName   string // default: DefaultRootName
	Organization string
	KeyURI       string        // an existing key; kms generates keys, ca only uses them
	Validity     time.Duration // 0: DefaultRootValidity
	Actor        string
}

// AuthoritySpec describes an issuing authority: under the root, or its own
// trust anchor (SelfSigned).
type AuthoritySpec struct {
	Name            string
	Purpose         profile.Purpose
	KeyURI          string
	CommonName      string // default: "<root organization> <name>"
	Policy          policy.Policy
	DefaultValidity time.Duration // leaf default; 0: DefaultLeafValidity
	MaxValidity     time.Duration // leaf maximum; 0: DefaultMaxLeafValidity
	Validity        time.Duration // the authority certificate's; 0: DefaultAuthorityValidity (DefaultRootValidity if SelfSigned)
	BaseURL         string        // where its CRLs, OCSP and certificate are served; "": the CA's default
	Shards          int           // CRL shards; 0: DefaultShards
	ACME            bool          // serve it over ACME (X.509 authorities only)
	// SelfSigned makes the authority its own trust anchor: no parent, its
	// certificate signed by its own key, so a relying party that installs
	// it trusts this authority's certificates and no other authority's.
	SelfSigned bool
	Actor      string
}

// DefaultRootName is the root's common name unless one is given:
// "signet root" and the first 4 bytes (8 hex digits) of the root key's
// SubjectKeyId. The key is new to each home, so two homes never share a
// root name, nor their authorities, whose names extend it.
func DefaultRootName(rootKeyID []byte) string {
	return fmt.Sprintf("signet root %x", rootKeyID[:4])
}

// CreateRoot signs the root certificate with its key and records it.
func (c *CA) CreateRoot(ctx context.Context, spec RootSpec) (store.Authority, error) {
	signer, err := c.keys.Signer(ctx, spec.KeyURI)
	if err != nil {
		return store.Authority{}, err
	}
	iss, err := newIssuer(nil, signer)
	if err != nil {
		return store.Authority{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return store.Authority{}, err
	}
	if spec.CommonName == "" {
		ski, err := profile.SubjectKeyID(signer.Public())
		if err != nil {
			return store.Authority{}, err
		}
		spec.CommonName = DefaultRootName(ski)
	}
	now := c.now().UTC().Truncate(time.Second)
	tmpl, err := profile.RootTemplate(profile.CA{
		CommonName: spec.CommonName, Organization: spec.Organization, PublicKey: signer.Public(),
		NotBefore: now.Add(-backdate), NotAfter: now.Add(orDefault(spec.Validity, DefaultRootValidity)),
		SerialNumber: serial, MaxPathLen: 1,
	})
	if err != nil {
		return store.Authority{}, err
	}
	tmpl.AuthorityKeyId = tmpl.SubjectKeyId // RFC 5280 4.2.1.1: helps path building, zlint asks it
	d, err := iss.certificate(tmpl, signer.Public())
	if err != nil {
		return store.Authority{}, err
	}
	rec := store.Authority{Name: RootName, Purpose: RootPurpose, KeyURI: spec.KeyURI, CreatedAt: now, Shards: 1}
	_, err = iss.sign(c.lint, d, func(der []byte) error {
		rec.CertDER = der
		ev := c.event(audit.Event{Kind: audit.KindAuthorityCreate, Actor: spec.Actor, Authority: RootName, Subject: RootName}, map[string]any{
			"purpose": RootPurpose, "key": spec.KeyURI, "subject": tmpl.Subject.String(), "sha256": fingerprint(der),
		})
		return c.createAuthority(ctx, rec, ev, serial)
	})
	return rec, err
}

// CheckAuthority refuses a spec CreateAuthority would refuse before it
// touches the key (its name, policy, validities, shards, base URL, or an
// authority of that name already), and gives it with the defaults filled
// in. A caller about to generate the key calls it first, so that a refused
// request leaves no key behind.
func (c *CA) CheckAuthority(ctx context.Context, spec AuthoritySpec) (AuthoritySpec, error) {
	if !authorityName.MatchString(spec.Name) || spec.Name == RootName {
		return spec, errs.New(errs.Malformed,
			"authority name %q: use 1-63 lowercase letters, digits and '-', not %q", spec.Name, RootName)
	}
	if _, err := profile.ParsePurpose(string(spec.Purpose)); err != nil {
		return spec, err
	}
	if err := spec.Policy.Validate(); err != nil {
		return spec, err
	}
	spec.DefaultValidity = orDefault(spec.DefaultValidity, DefaultLeafValidity)
	spec.MaxValidity = orDefault(spec.MaxValidity, DefaultMaxLeafValidity)
	if spec.DefaultValidity > spec.MaxValidity {
		return spec, errs.New(errs.Malformed, "default validity %s exceeds the maximum %s", spec.DefaultValidity, spec.MaxValidity)
	}
	if spec.Shards == 0 {
		spec.Shards = DefaultShards
	}
	if spec.Shards < 1 || spec.Shards > store.MaxShards {
		return spec, errs.New(errs.Malformed, "%d CRL shards: want 1 to %d", spec.Shards, store.MaxShards)
	}
	if err := profile.CheckBaseURL(spec.BaseURL); err != nil {
		return spec, err
	}
	if spec.ACME && spec.Purpose.IsSSH() {
		return spec, errACMESSH(spec.Name)
	}
	if spec.SelfSigned && spec.Purpose.IsSSH() {
		return spec, errs.New(errs.Malformed,
			"authority %q: an SSH authority has no X.509 certificate to self-sign; leave out --self-signed (its trust line is already its own anchor)", spec.Name)
	}
	if _, err := c.store.Authority(ctx, spec.Name); err == nil {
		return spec, errs.New(errs.Conflict, "authority %q exists already", spec.Name)
	}
	return spec, nil
}

// CreateAuthority signs a new issuing authority's certificate, with the
// root key or, for a self-signed authority, with its own key, and records
// the authority with its policy and validity limits. SSH authorities
// (ssh-host, ssh-user) get no X.509 certificate: their first CA key is
// recorded as their active SSH key instead.
func (c *CA) CreateAuthority(ctx context.Context, spec AuthoritySpec) (store.Authority, error) {
	spec, err := c.CheckAuthority(ctx, spec)
	if err != nil {
		return store.Authority{}, err
	}
	leafDefault, leafMax := spec.DefaultValidity, spec.MaxValidity
	if spec.Purpose.IsSSH() {
		return c.createSSHAuthority(ctx, spec, leafDefault, leafMax)
	}
	root, err := c.authority(ctx, RootName)
	if err != nil {
		return store.Authority{}, errs.Wrap(errs.KindOf(err), err, "no root: run signet init first")
	}
	signer, err := c.keys.Signer(ctx, spec.KeyURI)
	if err != nil {
		return store.Authority{}, err
	}
	self, err := newIssuer(nil, signer) // refuses key types we cannot sign with
	if err != nil {
		return store.Authority{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return store.Authority{}, err
	}
	cn := spec.CommonName
	if cn == "" {
		cn = root.cert.Subject.CommonName + " " + spec.Name
	}
	org := ""
	if len(root.cert.Subject.Organization) > 0 {
		org = root.cert.Subject.Organization[0]
	}
	now := c.now().UTC().Truncate(time.Second)
	cert := profile.CA{
		CommonName: cn, Organization: org, PublicKey: signer.Public(),
		NotBefore: now.Add(-backdate), SerialNumber: serial, MaxPathLen: 0,
	}
	var (
		iss    = root.iss
		parent = RootName
		tmpl   *x509.Certificate
	)
	if spec.SelfSigned {
		// A trust anchor, made as the root is: it lives as long, carries no
		// revocation pointers (nothing above it can revoke it: relying
		// parties replace it instead) and no extended key usage (RFC 5280
		// path validation does not read a trust anchor's; the BRs forbid
		// it in a root). Its pathLenConstraint 0 keeps it signing leaves.
		iss, parent = self, ""
		cert.NotAfter = now.Add(orDefault(spec.Validity, DefaultRootValidity))
		if tmpl, err = profile.RootTemplate(cert); err == nil {
			tmpl.AuthorityKeyId = tmpl.SubjectKeyId
		}
	} else {
		cert.NotAfter = now.Add(orDefault(spec.Validity, DefaultAuthorityValidity))
		if cert.NotAfter.After(root.cert.NotAfter) {
			cert.NotAfter = root.cert.NotAfter
		}
		// The root has one CRL shard, listing revoked authorities.
		cert.Revocation = profile.Pointers{CRL: CRLURL(c.BaseURL(root.rec), RootName, 0), IssuerURL: IssuerURL(c.BaseURL(root.rec), RootName)}
		if tmpl, err = profile.AuthorityTemplate(spec.Purpose, cert); err == nil {
			tmpl.AuthorityKeyId = root.cert.SubjectKeyId
		}
	}
	if err != nil {
		return store.Authority{}, err
	}
	pol, err := json.Marshal(spec.Policy)
	if err != nil {
		return store.Authority{}, errs.Wrap(errs.Internal, err, "policy")
	}
	d, err := iss.certificate(tmpl, signer.Public())
	if err != nil {
		return store.Authority{}, err
	}
	rec := store.Authority{
		Name: spec.Name, Purpose: string(spec.Purpose), Parent: parent, KeyURI: spec.KeyURI,
		Policy: pol, DefaultValidity: leafDefault, MaxValidity: leafMax, CreatedAt: now,
		BaseURL: spec.BaseURL, Shards: spec.Shards, ACME: spec.ACME,
	}
	_, err = iss.sign(c.lint, d, func(der []byte) error {
		rec.CertDER = der
		ev := c.event(audit.Event{Kind: audit.KindAuthorityCreate, Actor: spec.Actor, Authority: spec.Name, Subject: spec.Name}, map[string]any{
			"purpose": spec.Purpose, "key": spec.KeyURI, "subject": tmpl.Subject.String(),
			"policy": json.RawMessage(pol), "default_validity": leafDefault.String(),
			"max_validity": leafMax.String(), "sha256": fingerprint(der), "base_url": c.BaseURL(rec), "shards": spec.Shards,
			"acme": spec.ACME, "self_signed": spec.SelfSigned,
		})
		return c.createAuthority(ctx, rec, ev, serial)
	})
	return rec, err
}

// createAuthority records the root or an authority whose certificate the
// root key has just signed; a refusal (a name taken meanwhile, the store
// down) leaves a certificate.discard event, as for leaves.
func (c *CA) createAuthority(ctx context.Context, rec store.Authority, ev audit.Event, serial *big.Int) error {
	if err := c.store.CreateAuthority(ctx, rec, ev); err != nil {
		return c.discarded(ctx, err, ev.Actor, rec.Name, Serial(serial), rec.CertDER)
	}
	return nil
}

// Root returns the root certificate.
func (c *CA) Root(ctx context.Context) (*x509.Certificate, error) {
	rec, err := c.store.Authority(ctx, RootName)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(rec.CertDER)
}

// Chain returns an authority's certificate chain, issuing authority first,
// up to, not including, the root: a self-signed authority's chain is its
// own certificate, the root's is empty.
func (c *CA) Chain(ctx context.Context, name string) ([][]byte, error) {
	var chain [][]byte
	rec, err := c.store.Authority(ctx, name)
	for err == nil && rec.Name != RootName {
		if len(rec.CertDER) == 0 {
			return nil, errNoX509(name)
		}
		chain = append(chain, rec.CertDER)
		if rec.Parent == "" {
			break
		}
		rec, err = c.store.Authority(ctx, rec.Parent)
	}
	return chain, err
}

// Anchor returns the certificate a relying party installs to trust an
// authority's certificates: the end of its chain, which is the home's root,
// or the authority itself if it is self-signed. SSH authorities have none.
func (c *CA) Anchor(ctx context.Context, name string) (*x509.Certificate, error) {
	rec, err := c.store.Authority(ctx, name)
	for err == nil && rec.Parent != "" {
		rec, err = c.store.Authority(ctx, rec.Parent)
	}
	if err != nil {
		return nil, err
	}
	if len(rec.CertDER) == 0 {
		return nil, errNoX509(name)
	}
	return x509.ParseCertificate(rec.CertDER)
}

func errNoX509(name string) error {
	return errs.New(errs.Rejected,
		"authority %q issues SSH certificates and has no X.509 certificate: use 'signet ssh trust --authority %s'", name, name)
}

// SelfSigned reports whether an authority is its own trust anchor: an
// X.509 authority other than the root, without a parent.
func SelfSigned(a store.Authority) bool {
	return a.Parent == "" && a.Name != RootName && len(a.CertDER) > 0
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
