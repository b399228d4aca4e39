package profile

import (
	"crypto/x509"

	"signet/internal/errs"
)

// libvirt follows libvirt's TLS setup (https://libvirt.org/kbase/tlscerts.html):
// a host's server certificate names the host by DNS name or IP and carries
// clientAuth too, because during migration the source libvirtd connects to
// the destination with its server certificate. A client certificate is
// matched by its distinguished name (tls_allowed_dn_list), so it needs a CN.
func libvirt(t *x509.Certificate, l Leaf) error {
	if l.Usage == Server {
		if err := needHostNames(Libvirt, l); err != nil {
			return err
		}
		t.KeyUsage = keyUsage(l.PublicKey, Server)
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		return nil
	}
	if t.Subject.CommonName == "" {
		return errs.New(errs.Rejected, "a libvirt client certificate needs a common name (libvirtd matches it in tls_allowed_dn_list)")
	}
	t.KeyUsage = keyUsage(l.PublicKey, Client)
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return nil
}
