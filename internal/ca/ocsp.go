package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"time"

	"golang.org/x/crypto/ocsp"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/profile"
	"signet/internal/store"
)

// OCSPSigner signs OCSP responses for one authority with a delegated
// responder key (RFC 6960 4.2.2.2), so that the CA key, possibly on a slow
// token, signs one responder certificate every few days instead of every
// response. The key lives in this process's memory only and never leaves
// package ca; it dies with the process or when the certificate expires.
type OCSPSigner struct {
	Authority string
	Issuer    *x509.Certificate
	Cert      *x509.Certificate // the responder certificate, included in every response
	key       crypto.Signer
}

// OCSPStatus is what one response says about one certificate.
type OCSPStatus struct {
	Serial     *big.Int
	Hash       crypto.Hash // of the request's CertID: crypto.SHA1 or crypto.SHA256
	Status     int         // ocsp.Good, ocsp.Revoked or ocsp.Unknown
	RevokedAt  time.Time
	Reason     int
	ThisUpdate time.Time
	NextUpdate time.Time
}

// IssueOCSPResponder makes a fresh responder key and has the authority
// certify it through the issuance path (profile, lint, signature, record and
// audit event): id-kp-OCSPSigning, id-pkix-ocsp-nocheck, valid for validity.
func (c *CA) IssueOCSPResponder(ctx context.Context, authority string, validity time.Duration, actor string) (*OCSPSigner, error) {
	a, err := c.authority(ctx, authority)
	if err != nil {
		return nil, err
	}
	if validity <= 0 {
		return nil, errs.New(errs.Malformed, "responder validity must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "responder key")
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := c.now().UTC().Truncate(time.Second)
	notAfter := now.Add(validity)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	cn := "OCSP " + a.rec.Name
	tmpl, err := profile.OCSPResponderTemplate(profile.Responder{
		CommonName: cn[:min(len(cn), 64)], PublicKey: key.Public(),
		NotBefore: now.Add(-backdate), NotAfter: notAfter, SerialNumber: serial,
	})
	if err != nil {
		return nil, err
	}
	tmpl.AuthorityKeyId = a.cert.SubjectKeyId
	d, err := a.iss.certificate(tmpl, key.Public())
	if err != nil {
		return nil, err
	}
	s := Serial(serial)
	rec := store.Certificate{
		Serial: s, Authority: a.rec.Name, Subject: tmpl.Subject.String(), NotBefore: tmpl.NotBefore,
		NotAfter: tmpl.NotAfter, Status: store.Valid, Requester: actor, Shard: ShardOf(serial, a.rec.Shards),
		Internal: true,
	}
	der, err := a.iss.sign(c.lint, d, func(der []byte) error {
		rec.DER = der
		ev := c.event(audit.Event{Kind: audit.KindCertificateIssue, Actor: actor, Authority: a.rec.Name, Subject: s}, map[string]any{
			"subject": rec.Subject, "ocsp_responder": true, "not_after": tmpl.NotAfter, "sha256": fingerprint(der),
		})
		return c.record(ctx, rec, ev)
	})
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "parse the responder certificate")
	}
	return &OCSPSigner{Authority: a.rec.Name, Issuer: a.cert, Cert: cert, key: key}, nil
}

// Respond signs one OCSP response with the responder key.
func (s *OCSPSigner) Respond(st OCSPStatus) ([]byte, error) {
	if st.Hash != crypto.SHA1 && st.Hash != crypto.SHA256 {
		return nil, errs.New(errs.Malformed, "CertID hash %v: SHA-1 and SHA-256 are served", st.Hash)
	}
	if st.NextUpdate.After(s.Cert.NotAfter) {
		st.NextUpdate = s.Cert.NotAfter // never vouch beyond the responder's own life
	}
	der, err := ocsp.CreateResponse(s.Issuer, s.Cert, ocsp.Response{
		Status: st.Status, SerialNumber: st.Serial, IssuerHash: st.Hash,
		ThisUpdate: st.ThisUpdate, NextUpdate: st.NextUpdate,
		RevokedAt: st.RevokedAt, RevocationReason: st.Reason, Certificate: s.Cert,
	}, s.key)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "sign OCSP response")
	}
	return der, nil
}
