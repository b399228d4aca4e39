package sshca

import (
	"bytes"
	"context"
	"crypto/rand"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"signet/internal/errs"
	"signet/internal/nonce"
	"signet/internal/store"
)

// A host renews its own certificate without any administrator credential:
// it shows the certificate signet issued it, still valid and not revoked,
// and signs a fresh server nonce with the certified host key. What it gets
// is the same certificate again (same key, principals and key ID) for the
// authority's default validity, through the one issuance path. The proof
// only ever yields a certificate for a key the requester must hold, and
// only what an administrator granted that key before.

// renewalDomain begins every message a host key signs for a renewal. No
// SSH key exchange signs such a message (a host key signs an exchange
// hash there, not a string with this prefix), so neither sshd nor this
// endpoint can be used to obtain a signature meant for the other.
const renewalDomain = "signet-ssh-host-renewal-v1"

// RenewalNonceLifetime is how long a renewal nonce may be used, once.
const RenewalNonceLifetime = 5 * time.Minute

// HostRenewal is a host's request to renew its certificate.
type HostRenewal struct {
	Cert      *ssh.Certificate // the host's current certificate
	Nonce     string           // from RenewalNonce
	Signature *ssh.Signature   // by the certificate's key over RenewalMessage
}

// RenewalMessage is what the host key signs: the domain, the nonce and
// the whole certificate in wire form, so a signature is good for this
// certificate and this nonce only.
func RenewalMessage(nonce string, cert *ssh.Certificate) []byte {
	return ssh.Marshal(struct {
		Domain, Nonce string
		Cert          []byte
	}{renewalDomain, nonce, cert.Marshal()})
}

// SignRenewal signs a renewal as the host does: RenewalMessage with its
// host key, an RSA key with rsa-sha2-512 (ssh-rsa, SHA-1, is refused).
func SignRenewal(host ssh.Signer, nonce string, cert *ssh.Certificate) (*ssh.Signature, error) {
	msg := RenewalMessage(nonce, cert)
	if host.PublicKey().Type() == ssh.KeyAlgoRSA {
		as, ok := host.(ssh.AlgorithmSigner)
		if !ok {
			return nil, errs.New(errs.Rejected, "the RSA host key cannot sign with rsa-sha2-512")
		}
		return as.SignWithAlgorithm(rand.Reader, msg, ssh.KeyAlgoRSASHA512)
	}
	return host.Sign(rand.Reader, msg)
}

// renewalNonces are the CA's renewal nonces, under an HMAC key shared by
// every node through the store, made on first use.
func (c *CA) renewalNonces(ctx context.Context) (*nonce.Nonces, error) {
	c.nonceMu.Lock()
	defer c.nonceMu.Unlock()
	if c.nonces != nil {
		return c.nonces, nil
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	key, err := c.store.Secret(ctx, "ssh-host-renewal-hmac", fresh)
	if err != nil {
		return nil, err
	}
	c.nonces = nonce.New(key, RenewalNonceLifetime, c.now)
	return c.nonces, nil
}

// RenewalNonce returns a fresh nonce for one host renewal.
func (c *CA) RenewalNonce(ctx context.Context) (string, error) {
	n, err := c.renewalNonces(ctx)
	if err != nil {
		return "", err
	}
	return n.New(), nil
}

// HostRenewalRequest checks a host's renewal and returns the request that
// issues its new certificate through Issue: the certificate is a host
// certificate within its validity; the signature is by its key over
// RenewalMessage with an unused nonce of this CA; it is exactly the
// certificate recorded under its serial, valid, by a CA key still trusted.
// Issue then checks the principals against the authority's policy as
// for any certificate. Nothing is recorded; errs.Unauthorized for a
// failed proof, errs.Rejected for a certificate that may not renew.
func (c *CA) HostRenewalRequest(ctx context.Context, r HostRenewal) (Request, error) {
	cert := r.Cert
	if cert == nil || r.Signature == nil {
		return Request{}, errs.New(errs.Malformed, "a renewal needs the certificate and the host key's signature")
	}
	if cert.CertType != ssh.HostCert {
		return Request{}, errs.New(errs.Rejected, "certificate %d is a user certificate: only host certificates renew themselves; ask an administrator", cert.Serial)
	}
	now := c.now()
	if after, before := time.Unix(int64(min(cert.ValidAfter, 1<<62)), 0), time.Unix(int64(min(cert.ValidBefore, 1<<62)), 0); now.Before(after) || !now.Before(before) {
		return Request{}, errs.New(errs.Rejected, "certificate %d is valid from %s to %s, not now: an expired host certificate cannot renew itself; an administrator signs a new one (signet ssh sign --host)",
			cert.Serial, after.UTC().Format(time.RFC3339), before.UTC().Format(time.RFC3339))
	}
	if r.Signature.Format == ssh.KeyAlgoRSA {
		return Request{}, errs.New(errs.Rejected, "the renewal is signed with ssh-rsa (SHA-1): sign with rsa-sha2-256 or rsa-sha2-512")
	}
	if err := cert.Key.Verify(RenewalMessage(r.Nonce, cert), r.Signature); err != nil {
		return Request{}, errs.New(errs.Unauthorized, "the renewal of certificate %d is not signed by its host key (%s) over this nonce", cert.Serial, ssh.FingerprintSHA256(cert.Key))
	}
	nonces, err := c.renewalNonces(ctx)
	if err != nil {
		return Request{}, err
	}
	if !nonces.Use(r.Nonce) {
		return Request{}, errs.New(errs.Unauthorized, "the renewal nonce is unknown, expired or used already: fetch a fresh one and sign again")
	}
	rec, err := c.store.SSHCertificate(ctx, cert.Serial)
	if errs.KindOf(err) == errs.NotFound {
		return Request{}, errs.New(errs.Unauthorized, "certificate %d was not issued by this signet", cert.Serial)
	}
	if err != nil {
		return Request{}, err
	}
	if !bytes.Equal(rec.Cert, cert.Marshal()) {
		return Request{}, errs.New(errs.Unauthorized, "certificate %d is not the one this signet issued with that serial", cert.Serial)
	}
	if rec.Status != store.Valid {
		return Request{}, errs.New(errs.Rejected, "certificate %d of %q is %s: it cannot be renewed", cert.Serial, rec.Authority, rec.Status)
	}
	keys, err := c.Keys(ctx, rec.Authority)
	if err != nil {
		return Request{}, err
	}
	for _, k := range keys {
		if k.Fingerprint == rec.CAFingerprint && !trusted(k.State) {
			return Request{}, errs.New(errs.Rejected, "certificate %d was signed by CA key %s of %q, which is %s: hosts no longer trust it, so it cannot be renewed", cert.Serial, k.Fingerprint, rec.Authority, k.State)
		}
	}
	return Request{
		Authority: rec.Authority, PublicKey: cert.Key, Type: store.SSHHostCert,
		Principals: rec.Principals, KeyID: rec.KeyID, Actor: "ssh-host:" + strconv.FormatUint(cert.Serial, 10),
	}, nil
}
