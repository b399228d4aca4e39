package profile

import (
	"crypto/x509"

	"signet/internal/errs"
)

// tlsServer is the CA/Browser Forum Baseline Requirements subscriber
// profile (BR 7.1.2.7): serverAuth, digitalSignature (+keyEncipherment for
// RSA), and names a TLS client can match: DNS names and IP addresses only.
func tlsServer(t *x509.Certificate, l Leaf) error {
	if err := needHostNames(TLSServer, l); err != nil {
		return err
	}
	t.KeyUsage = keyUsage(l.PublicKey, Server)
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	return nil
}

// needHostNames is the rule every server-side leaf shares: a TLS client
// checks the host it dialled against DNS names and IP addresses, and an email
// address means nothing to it (BR 7.1.2.7.12 forbids rfc822Name there).
func needHostNames(p Purpose, l Leaf) error {
	if len(l.DNSNames)+len(l.IPAddresses) == 0 {
		return errs.New(errs.Rejected, "a %s server certificate needs at least one DNS name or IP address", p)
	}
	if len(l.EmailAddresses) > 0 {
		return errs.New(errs.Rejected, "a %s server certificate cannot carry email addresses (%v)", p, l.EmailAddresses)
	}
	return nil
}
