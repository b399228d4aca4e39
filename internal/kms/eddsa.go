//go:build cgo

package kms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"

	"github.com/miekg/pkcs11"

	"signet/internal/errs"
)

// What crypto11 cannot do, done on the direct context: Ed25519 keys
// (CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA), reading public keys of any type
// and listing a token's keys.

var (
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidP256    = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384    = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidP521    = asn1.ObjectIdentifier{1, 3, 132, 0, 35}
)

func (t *token) generateEd25519(h pkcs11.SessionHandle, op, label string, id []byte) (crypto.Signer, error) {
	oid, _ := asn1.Marshal(oidEd25519)
	// PKCS#11 3.0 names the curve by OID; older tokens (and the 2.40
	// Edwards drafts) only know the PrintableString "edwards25519".
	name, _ := asn1.MarshalWithParams("edwards25519", "printable")
	var pubH, privH pkcs11.ObjectHandle
	var err error
	for _, params := range [][]byte{oid, name} {
		pub := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		}
		priv := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		}
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmECEdwardsKeyPairGen, nil)}
		pubH, privH, err = t.p.GenerateKeyPair(h, mech, pub, priv)
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, mechError(err, op, "CKM_EC_EDWARDS_KEY_PAIR_GEN")
	}
	pk, err := edwardsPoint(t.p, h, pubH)
	if err != nil {
		return nil, p11Error(err, "%s: reading the public key", op)
	}
	return &edSigner{tok: t, handle: privH, pub: pk, what: fmt.Sprintf("key %q on token %q", label, t.label)}, nil
}

// edSigner signs with an Ed25519 key on a token. Like ed25519.PrivateKey it
// signs the message itself: opts must be crypto.Hash(0).
type edSigner struct {
	tok    *token
	handle pkcs11.ObjectHandle
	pub    ed25519.PublicKey
	what   string
}

func (s *edSigner) Public() crypto.PublicKey { return s.pub }

func (s *edSigner) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != 0 {
		return nil, errs.New(errs.Rejected, "pkcs11: sign with %s: Ed25519 signs the message, not a %v digest", s.what, opts.HashFunc())
	}
	if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
		return nil, errs.New(errs.Rejected, "pkcs11: sign with %s: Ed25519ctx is not supported", s.what)
	}
	h, err := s.tok.session()
	if err != nil {
		return nil, err
	}
	defer s.tok.release(h)
	if err := s.tok.p.SignInit(h, []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmEdDSA, nil)}, s.handle); err != nil {
		return nil, p11Error(err, "pkcs11: sign with %s (CKM_EDDSA)", s.what)
	}
	sig, err := s.tok.p.Sign(h, msg)
	if err != nil {
		return nil, p11Error(err, "pkcs11: sign with %s (CKM_EDDSA)", s.what)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, errs.New(errs.Internal, "pkcs11: sign with %s: token returned %d bytes, not an Ed25519 signature", s.what, len(sig))
	}
	return sig, nil
}

// publicKey finds the public half of a private key (by id, then label) and
// decodes it.
func (t *token) publicKey(h pkcs11.SessionHandle, keyType uint, id, label []byte) (crypto.PublicKey, error) {
	var objs []pkcs11.ObjectHandle
	var err error
	for _, a := range []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, id), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)} {
		if len(a.Value) == 0 {
			continue
		}
		objs, err = t.find(h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType), a,
		})
		if err != nil {
			return nil, err
		}
		if len(objs) > 0 {
			break
		}
	}
	if len(objs) == 0 {
		return nil, errs.New(errs.NotFound, "no public key with id %x / label %q", id, label)
	}
	switch keyType {
	case ckkECEdwards:
		return edwardsPoint(t.p, h, objs[0])
	case pkcs11.CKK_EC:
		a, err := t.p.GetAttributeValue(h, objs[0], []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil), pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
		if err != nil {
			return nil, err
		}
		var oid asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(a[0].Value, &oid); err != nil {
			return nil, fmt.Errorf("EC parameters are not a named curve: %w", err)
		}
		var curve elliptic.Curve
		switch {
		case oid.Equal(oidP256):
			curve = elliptic.P256()
		case oid.Equal(oidP384):
			curve = elliptic.P384()
		case oid.Equal(oidP521):
			curve = elliptic.P521()
		default:
			return nil, errs.New(errs.Rejected, "unsupported curve %v", oid)
		}
		point := a[1].Value
		var inner []byte // CKA_EC_POINT is a DER OCTET STRING; some tokens omit the wrapper
		if rest, err := asn1.Unmarshal(point, &inner); err == nil && len(rest) == 0 {
			point = inner
		}
		return ecdsa.ParseUncompressedPublicKey(curve, point)
	case pkcs11.CKK_RSA:
		a, err := t.p.GetAttributeValue(h, objs[0], []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
		if err != nil {
			return nil, err
		}
		e := new(big.Int).SetBytes(a[1].Value)
		if !e.IsInt64() || e.Int64() > 1<<31 {
			return nil, errs.New(errs.Rejected, "RSA public exponent too large")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(a[0].Value), E: int(e.Int64())}, nil
	}
	return nil, errs.New(errs.Rejected, "unsupported key type %#x", keyType)
}

// edwardsPoint reads an Ed25519 public key: CKA_EC_POINT holds the 32-byte
// point, DER-wrapped in an OCTET STRING by most tokens (SoftHSM included).
func edwardsPoint(p *pkcs11.Ctx, h pkcs11.SessionHandle, obj pkcs11.ObjectHandle) (ed25519.PublicKey, error) {
	a, err := p.GetAttributeValue(h, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, err
	}
	v := a[0].Value
	if len(v) == ed25519.PublicKeySize+2 && bytes.HasPrefix(v, []byte{0x04, ed25519.PublicKeySize}) {
		v = v[2:]
	}
	if len(v) != ed25519.PublicKeySize {
		return nil, errs.New(errs.Rejected, "CKA_EC_POINT of %d bytes is not an Ed25519 key", len(a[0].Value))
	}
	return ed25519.PublicKey(bytes.Clone(v)), nil
}

func (m *Manager) listPKCS11(uri string) ([]KeyInfo, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	t, err := m.openToken(u)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("pkcs11: list keys on token %q", t.label)
	h, err := t.session()
	if err != nil {
		return nil, err
	}
	defer t.release(h)
	objs, err := t.find(h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)})
	if err != nil {
		return nil, p11Error(err, "%s", op)
	}
	out := []KeyInfo{}
	for _, o := range objs {
		a, err := t.p.GetAttributeValue(h, o, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		})
		if err != nil {
			return nil, p11Error(err, "%s: reading attributes", op)
		}
		kt, id, label := ulong(a[0].Value), a[1].Value, a[2].Value
		info := KeyInfo{
			URI:         MarshalURI(&URI{Token: t.label, Object: string(label), ID: id}),
			Token:       t.label,
			Label:       string(label),
			ID:          hex.EncodeToString(id),
			Sensitive:   len(a[3].Value) == 1 && a[3].Value[0] != 0,
			Extractable: len(a[4].Value) == 1 && a[4].Value[0] != 0,
			Type:        fmt.Sprintf("ckk-%#x", kt),
		}
		if pub, err := t.publicKey(h, kt, id, label); err == nil {
			info.PublicKey = pub
			info.Type = typeName(pub)
		}
		out = append(out, info)
	}
	return out, nil
}

// typeName names a public key the way KeyType does.
func typeName(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return string(ECDSAP256)
		case elliptic.P384():
			return string(ECDSAP384)
		}
		return "ecdsa-" + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	case ed25519.PublicKey:
		return string(Ed25519)
	}
	return fmt.Sprintf("%T", pub)
}
