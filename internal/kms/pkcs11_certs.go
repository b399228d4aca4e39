//go:build cgo

package kms

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"fmt"

	"github.com/miekg/pkcs11"
)

// importPKCS11 writes the checked certificates to the token of the key at
// uri, which Signer opened already.
func (m *Manager) importPKCS11(uri string, leaf *x509.Certificate, chain []*x509.Certificate) (Imported, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return Imported{}, err
	}
	t, err := m.openToken(u)
	if err != nil {
		return Imported{}, err
	}
	return t.importCertificate(u, leaf, chain)
}

func (t *token) importCertificate(u *URI, leaf *x509.Certificate, chain []*x509.Certificate) (Imported, error) {
	op := fmt.Sprintf("pkcs11: write the certificate of key %s to token %q", keyName(u), t.label)
	h, err := t.session()
	if err != nil {
		return Imported{}, err
	}
	defer t.release(h)
	k, err := t.privateKey(h, u, op)
	if err != nil {
		return Imported{}, err
	}
	res := Imported{Token: t.label, Label: string(k.label)}
	if len(k.id) == 0 {
		if k.id, err = t.giveID(h, k, op); err != nil {
			return Imported{}, err
		}
		res.NewID = true
	}
	res.ID = fmt.Sprintf("%x", k.id)

	certClass := pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE)
	old, err := t.find(h, []*pkcs11.Attribute{certClass, pkcs11.NewAttribute(pkcs11.CKA_ID, k.id)})
	if err != nil {
		return Imported{}, p11Error(err, "%s: looking for its certificates", op)
	}
	res.Written = true
	for _, o := range old {
		if t.holds(h, o, leaf.Raw) {
			res.Written = false
			continue
		}
		if err := t.p.DestroyObject(h, o); err != nil {
			return Imported{}, p11Error(err, "%s: removing its earlier certificate", op)
		}
		res.Replaced++
	}
	if res.Written {
		if err := t.writeCertificate(k.id, k.label, leaf); err != nil {
			return Imported{}, p11Error(err, "%s", op)
		}
	}
	for _, c := range chain {
		same, err := t.find(h, []*pkcs11.Attribute{certClass, pkcs11.NewAttribute(pkcs11.CKA_VALUE, c.Raw)})
		if err != nil {
			return Imported{}, p11Error(err, "%s: looking for CA certificate %s", op, c.Subject)
		}
		if len(same) > 0 {
			res.Present++
			continue
		}
		id := c.SubjectKeyId
		if len(id) == 0 {
			sum := sha1.Sum(c.RawSubjectPublicKeyInfo)
			id = sum[:]
		}
		if err := t.writeCertificate(id, []byte(c.Subject.CommonName), c); err != nil {
			return Imported{}, p11Error(err, "%s: CA certificate %s", op, c.Subject)
		}
		res.Chain++
	}
	return res, nil
}

// giveID sets a new random CKA_ID on a key that has none: on the private
// key and on the public key with its label, which crypto11 and
// pkcs11-helper pair with it.
func (t *token) giveID(h pkcs11.SessionHandle, k p11Key, op string) ([]byte, error) {
	id := make([]byte, 16)
	rand.Read(id)
	objs := []pkcs11.ObjectHandle{k.handle}
	if len(k.label) > 0 {
		pubs, err := t.find(h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), pkcs11.NewAttribute(pkcs11.CKA_LABEL, k.label)})
		if err != nil {
			return nil, p11Error(err, "%s: looking for its public key", op)
		}
		for _, p := range pubs {
			a, err := t.p.GetAttributeValue(h, p, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
			if err == nil && len(a[0].Value) == 0 {
				objs = append(objs, p)
			}
		}
	}
	for _, o := range objs {
		if err := t.p.SetAttributeValue(h, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, id)}); err != nil {
			return nil, p11Error(err, "%s: the key has no CKA_ID and setting one failed", op)
		}
	}
	return id, nil
}

// holds reports whether the certificate object o contains der.
func (t *token) holds(h pkcs11.SessionHandle, o pkcs11.ObjectHandle, der []byte) bool {
	a, err := t.p.GetAttributeValue(h, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	return err == nil && bytes.Equal(a[0].Value, der)
}

// writeCertificate creates a public X.509 certificate object with the
// given CKA_ID and, when not empty, CKA_LABEL.
func (t *token) writeCertificate(id, label []byte, c *x509.Certificate) error {
	if len(label) == 0 {
		return t.c11.ImportCertificate(id, c)
	}
	return t.c11.ImportCertificateWithLabel(id, label, c)
}
