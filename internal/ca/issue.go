package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/profile"
	"signet/internal/store"
)

// MaxCSRSize bounds a CSR accepted from anyone.
const MaxCSRSize = 64 << 10

// Request asks an authority for a leaf certificate.
//
// The subject key comes from CSR when it is set (its signature is checked)
// and from PublicKey otherwise. Names given explicitly replace the CSR's
// names; with none given, the CSR's names are requested.
type Request struct {
	Authority      string
	CSR            *x509.CertificateRequest
	PublicKey      crypto.PublicKey
	CommonName     string
	DNSNames       []string
	IPAddresses    []net.IP
	EmailAddresses []string
	XMPPDomains    []string
	Usage          profile.Usage
	Validity       time.Duration // 0: the authority's default
	Actor          string        // who asks, for the audit log
	Internal       bool          // signet's own (store.Certificate.Internal)

	// Rider is written in the certificate's transaction, or the
	// certificate is not recorded (and never returned): see store.Rider.
	Rider *store.Rider
}

// Issued is a certificate that is signed, linted and durably recorded.
type Issued struct {
	Serial    string
	DER       []byte
	NotBefore time.Time
	NotAfter  time.Time
	Chain     [][]byte // issuing authority up to, not including, the root
}

// ParseCSR reads a PEM or DER certificate request and checks its signature.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > MaxCSRSize {
		return nil, errs.New(errs.Malformed, "CSR is larger than %d bytes", MaxCSRSize)
	}
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST" {
			return nil, errs.New(errs.Malformed, "expected a PEM CERTIFICATE REQUEST, got %q", b.Type)
		}
		data = b.Bytes
	}
	csr, err := x509.ParseCertificateRequest(data)
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "cannot parse CSR")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "CSR signature does not verify")
	}
	return csr, nil
}

// Issue is the one issuance path for X.509 leaves. Each attempt is told
// to the observer (see Observe) with its outcome and latency.
func (c *CA) Issue(ctx context.Context, req Request) (*Issued, error) {
	start := time.Now()
	// An authority that does not exist is not a label: names are bounded
	// by what the store holds.
	name, purpose := "unknown", "unknown"
	is, err := c.issue(ctx, req, func(a *authority) { name, purpose = a.rec.Name, a.rec.Purpose })
	if o := c.obs.Load(); o != nil {
		outcome := "issued"
		if err != nil {
			outcome = errs.KindOf(err).String()
		}
		(*o).Issuance(name, purpose, outcome, time.Since(start))
	}
	return is, err
}

func (c *CA) issue(ctx context.Context, req Request, found func(*authority)) (*Issued, error) {
	if err := c.InService(ctx, req.Authority); err != nil {
		return nil, err
	}
	a, err := c.authority(ctx, req.Authority)
	if err != nil {
		return nil, err
	}
	found(a)
	if a.rec.Purpose == RootPurpose {
		return nil, errs.New(errs.Rejected, "the root issues authorities only; name an issuing authority")
	}
	leaf, err := c.leaf(a, &req)
	if err != nil {
		return nil, err
	}
	shard := ShardOf(leaf.SerialNumber, a.rec.Shards)
	leaf.Revocation = c.leafPointers(a.rec, shard)
	if err := a.policy.Check(leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses); err != nil {
		return nil, err
	}
	tmpl, err := profile.LeafTemplate(a.purpose, leaf)
	if err != nil {
		return nil, err
	}
	tmpl.AuthorityKeyId = a.cert.SubjectKeyId
	d, err := a.iss.certificate(tmpl, leaf.PublicKey)
	if err != nil {
		return nil, err
	}
	serial := Serial(tmpl.SerialNumber)
	ips := make([]string, len(leaf.IPAddresses))
	for i, ip := range leaf.IPAddresses {
		ips[i] = ip.String()
	}
	rec := store.Certificate{
		Serial: serial, Authority: a.rec.Name, Subject: tmpl.Subject.String(),
		DNSNames: leaf.DNSNames, IPAddresses: ips, EmailAddresses: leaf.EmailAddresses,
		NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, Status: store.Status("valid"),
		Requester: req.Actor, Shard: shard, Rider: req.Rider, Internal: req.Internal,
	}
	der, err := a.iss.sign(c.lint, d, func(der []byte) error {
		rec.DER = der
		ev := c.event(audit.Event{Kind: audit.KindCertificateIssue, Actor: req.Actor, Authority: a.rec.Name, Subject: serial}, map[string]any{
			"subject": rec.Subject, "dns": leaf.DNSNames, "ip": ips, "email": leaf.EmailAddresses,
			"not_after": tmpl.NotAfter, "sha256": fingerprint(der),
		})
		return c.record(ctx, rec, ev)
	})
	if err != nil {
		return nil, err
	}
	c.signalIssue(store.CertStatus{Serial: serial, Authority: a.rec.Name, Shard: shard, NotAfter: tmpl.NotAfter})
	return &Issued{Serial: serial, DER: der, NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, Chain: a.chain}, nil
}

// record stores a certificate the CA key has signed with its issuance
// event. When the store refuses it (its rider no longer holds, the store
// is down), the certificate will never leave this
// process: record says so in the audit log, best effort, so an auditor
// sees every signature the key made.
func (c *CA) record(ctx context.Context, rec store.Certificate, ev audit.Event) error {
	if err := c.store.RecordCertificate(ctx, rec, ev); err != nil {
		return c.discarded(ctx, err, rec.Requester, rec.Authority, rec.Serial, rec.DER)
	}
	return nil
}

// discarded writes the certificate.discard event of a certificate (leaf,
// responder, authority or root) that the CA key signed and the store then
// refused with err, and returns err.
func (c *CA) discarded(ctx context.Context, err error, actor, authority, serial string, der []byte) error {
	discard := c.event(audit.Event{Kind: audit.KindCertificateDiscard, Actor: actor, Authority: authority, Subject: serial}, map[string]any{
		"reason": err.Error(), "sha256": fingerprint(der),
	})
	if derr := c.store.AppendEvent(context.WithoutCancel(ctx), discard); derr != nil {
		return errors.Join(err, derr)
	}
	return err
}

// leaf turns a request into the profile's input: the subject key, the
// names and the validity, with every problem a clear error.
func (c *CA) leaf(a *authority, req *Request) (profile.Leaf, error) {
	l := profile.Leaf{
		Usage: req.Usage, CommonName: req.CommonName,
		DNSNames: req.DNSNames, IPAddresses: req.IPAddresses, EmailAddresses: req.EmailAddresses,
		XMPPDomains: req.XMPPDomains, PublicKey: req.PublicKey,
	}
	if req.CSR != nil {
		l.PublicKey = req.CSR.PublicKey
		if len(l.DNSNames)+len(l.IPAddresses)+len(l.EmailAddresses) == 0 && l.CommonName == "" {
			l.CommonName = req.CSR.Subject.CommonName
			l.DNSNames, l.IPAddresses, l.EmailAddresses = req.CSR.DNSNames, req.CSR.IPAddresses, req.CSR.EmailAddresses
		}
	}
	if l.PublicKey == nil {
		return l, errs.New(errs.Malformed, "no subject public key: give a CSR or a public key")
	}
	if err := checkSubjectKey(l.PublicKey, a.cert.PublicKey); err != nil {
		return l, err
	}
	validity, err := a.rec.Validity(req.Validity)
	if err != nil {
		return l, err
	}
	now := c.now().UTC().Truncate(time.Second)
	l.NotBefore = now.Add(-backdate)
	l.NotAfter = now.Add(validity)
	if l.NotAfter.After(a.cert.NotAfter) {
		l.NotAfter = a.cert.NotAfter
	}
	serial, err := newSerial()
	if err != nil {
		return l, err
	}
	l.SerialNumber = serial
	return l, nil
}

// checkSubjectKey refuses the authority's own key. Key types and sizes are
// the profile's to check (profile.LeafTemplate), for every certificate.
func checkSubjectKey(pub, caPub crypto.PublicKey) error {
	if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(caPub) {
		return errs.New(errs.Rejected, "the subject key is the authority's own key")
	}
	return nil
}
