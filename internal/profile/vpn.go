package profile

import (
	"crypto/x509"

	"signet/internal/errs"
)

// vpn follows OpenVPN / easy-rsa: the server certificate has serverAuth so
// clients can use `remote-cert-tls server`, the client certificate has
// clientAuth and its CN is the user name OpenVPN logs and matches in
// client-config-dir, so the CN is required.
func vpn(t *x509.Certificate, l Leaf) error {
	if t.Subject.CommonName == "" {
		return errs.New(errs.Rejected, "a vpn certificate needs a common name (OpenVPN identifies peers by it)")
	}
	t.KeyUsage = keyUsage(l.PublicKey, l.Usage)
	if l.Usage == Server {
		// A TLS client (OpenVPN's verify-x509-name, or any BR-conforming
		// verifier) needs the server's name in the SAN as well as the CN.
		if err := needHostNames(VPN, l); err != nil {
			return err
		}
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		return nil
	}
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return nil
}
