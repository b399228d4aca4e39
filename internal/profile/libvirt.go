package profile

import (
	"crypto/rsa"
	"crypto/x509"

	"signet/internal/errs"
)

// libvirt follows libvirt's TLS setup (https://libvirt.org/kbase/tlscerts.html):
// a host's server certificate names the host by DNS name or IP and carries
// clientAuth too, because during migration the source libvirtd connects to
// the destination with its server certificate. A client certificate is
// matched by its distinguished name (tls_allowed_dn_list), so it needs a CN.
//
// libvirt checks every leaf, server and client alike, for a keyUsage with
// both digitalSignature and keyEncipherment when the extension is critical
// (Go always marks it critical), and refuses the certificate otherwise.
// keyEncipherment is meaningful for RSA keys only, so libvirt leaves must
// be RSA.
func libvirt(t *x509.Certificate, l Leaf) error {
	if _, ok := l.PublicKey.(*rsa.PublicKey); !ok {
		return errs.New(errs.Rejected, "a libvirt certificate needs an RSA key: libvirt requires keyEncipherment in its keyUsage, which only RSA keys can use (use --key-type rsa-3072 or an RSA CSR)")
	}
	if l.Usage == Server {
		if err := needHostNames(Libvirt, l); err != nil {
			return err
		}
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	} else {
		if t.Subject.CommonName == "" {
			return errs.New(errs.Rejected, "a libvirt client certificate needs a common name (libvirtd matches it in tls_allowed_dn_list)")
		}
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	t.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	return nil
}
