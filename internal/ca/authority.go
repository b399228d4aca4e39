package ca

import (
	"context"
	"crypto/x509"
	"encoding/json"
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
	CommonName   string
	Organization string
	KeyURI       string        // an existing key; kms generates keys, ca only uses them
	Validity     time.Duration // 0: DefaultRootValidity
	Actor        string
}

// AuthoritySpec describes an issuing authority under the root.
type AuthoritySpec struct {
	Name            string
	Purpose         profile.Purpose
	KeyURI          string
	CommonName      string // default: "<root organization> <name>"
	Policy          policy.Policy
	DefaultValidity time.Duration // leaf default; 0: DefaultLeafValidity
	MaxValidity     time.Duration // leaf maximum; 0: DefaultMaxLeafValidity
	Validity        time.Duration // the authority certificate's; 0: DefaultAuthorityValidity
	BaseURL         string        // where its CRLs, OCSP and certificate are served; "": the CA's default
	Shards          int           // CRL shards; 0: DefaultShards
	ACME            bool          // serve it over ACME (X.509 authorities only)
	Actor           string
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
	der, err := iss.sign(tmpl, signer.Public(), c.lint)
	if err != nil {
		return store.Authority{}, err
	}
	rec := store.Authority{Name: RootName, Purpose: RootPurpose, KeyURI: spec.KeyURI, CertDER: der, CreatedAt: now, Shards: 1}
	ev := c.event("authority.create", spec.Actor, RootName, RootName, map[string]any{
		"purpose": RootPurpose, "key": spec.KeyURI, "subject": tmpl.Subject.String(), "sha256": fingerprint(der),
	})
	return rec, c.createAuthority(ctx, rec, ev, serial)
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
	if _, err := c.store.Authority(ctx, spec.Name); err == nil {
		return spec, errs.New(errs.Conflict, "authority %q exists already", spec.Name)
	}
	return spec, nil
}

// CreateAuthority signs a new issuing authority's certificate with the root
// key and records the authority with its policy and validity limits. SSH
// authorities (ssh-host, ssh-user) get no X.509 certificate: their first
// CA key is recorded as their active SSH key instead.
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
	if _, err := newIssuer(nil, signer); err != nil { // refuse key types we cannot sign with
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
	notAfter := now.Add(orDefault(spec.Validity, DefaultAuthorityValidity))
	if notAfter.After(root.cert.NotAfter) {
		notAfter = root.cert.NotAfter
	}
	tmpl, err := profile.AuthorityTemplate(spec.Purpose, profile.CA{
		CommonName: cn, Organization: org, PublicKey: signer.Public(),
		NotBefore: now.Add(-backdate), NotAfter: notAfter, SerialNumber: serial, MaxPathLen: 0,
		// The root has one CRL shard, listing revoked authorities.
		Revocation: profile.Pointers{CRL: CRLURL(c.BaseURL(root.rec), RootName, 0), IssuerURL: IssuerURL(c.BaseURL(root.rec), RootName)},
	})
	if err != nil {
		return store.Authority{}, err
	}
	tmpl.AuthorityKeyId = root.cert.SubjectKeyId
	der, err := root.iss.sign(tmpl, signer.Public(), c.lint)
	if err != nil {
		return store.Authority{}, err
	}
	pol, err := json.Marshal(spec.Policy)
	if err != nil {
		return store.Authority{}, errs.Wrap(errs.Internal, err, "policy")
	}
	rec := store.Authority{
		Name: spec.Name, Purpose: string(spec.Purpose), Parent: RootName, KeyURI: spec.KeyURI,
		CertDER: der, Policy: pol, DefaultValidity: leafDefault, MaxValidity: leafMax, CreatedAt: now,
		BaseURL: spec.BaseURL, Shards: spec.Shards, ACME: spec.ACME,
	}
	ev := c.event("authority.create", spec.Actor, spec.Name, spec.Name, map[string]any{
		"purpose": spec.Purpose, "key": spec.KeyURI, "subject": tmpl.Subject.String(),
		"policy": json.RawMessage(pol), "default_validity": leafDefault.String(),
		"max_validity": leafMax.String(), "sha256": fingerprint(der), "base_url": c.BaseURL(rec), "shards": spec.Shards,
		"acme": spec.ACME,
	})
	return rec, c.createAuthority(ctx, rec, ev, serial)
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
// without the root; the root's chain is empty.
func (c *CA) Chain(ctx context.Context, name string) ([][]byte, error) {
	var chain [][]byte
	rec, err := c.store.Authority(ctx, name)
	for err == nil && rec.Parent != "" {
		chain = append(chain, rec.CertDER)
		rec, err = c.store.Authority(ctx, rec.Parent)
	}
	return chain, err
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
