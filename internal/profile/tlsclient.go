package profile

import (
	"crypto/x509"
)

// tlsClient is a TLS client-authentication certificate (RFC 5280 4.2.1.12
// id-kp-clientAuth). Servers identify the client by its CN or any SAN entry,
// so DNS names, IP addresses, emails and a free-text CN are all allowed.
func tlsClient(t *x509.Certificate, l Leaf) error {
	t.KeyUsage = keyUsage(l.PublicKey, Client)
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return nil
}
