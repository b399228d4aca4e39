package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"signet/internal/errs"
	"signet/internal/kms"
)

// Linter checks what a CA key is about to sign. lint.Gate implements it.
type Linter interface {
	Check(certificate []byte) error
	CheckCRL(crl []byte) error
}

// issuer signs for one CA key. Its sign method is the gate every signature
// of the key passes; the throwaway key of the same algorithm signs the
// drafts that are linted first.
type issuer struct {
	cert    *x509.Certificate // nil while signing a self-signed root
	signer  crypto.Signer
	lintKey crypto.Signer
	sigAlg  x509.SignatureAlgorithm
	algID   []byte                     // sigAlg's DER AlgorithmIdentifier
	verify  bool                       // check each signature: the key lives outside this process
	failed  func(error)                // called when the key fails to sign; nil: nothing to do
	signed  func(time.Duration, error) // told of each signature and its latency; nil: nobody
}

func newIssuer(cert *x509.Certificate, signer crypto.Signer) (*issuer, error) {
	lintKey, sigAlg, err := throwawayKey(signer.Public())
	if err != nil {
		return nil, err
	}
	algID, err := algorithmIdentifier(sigAlg)
	if err != nil {
		return nil, err
	}
	if cert != nil {
		eq, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !eq.Equal(signer.Public()) {
			return nil, errs.New(errs.Internal, "the key does not match the certificate of %q", cert.Subject.CommonName)
		}
	}
	return &issuer{cert: cert, signer: signer, lintKey: lintKey, sigAlg: sigAlg, algID: algID, verify: !kms.InProcess(signer)}, nil
}

// throwawayKey makes an in-memory key whose certificates carry the same
// signature algorithm as pub's, so that the linted TBS is the signed TBS.
func throwawayKey(pub crypto.PublicKey) (crypto.Signer, x509.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return key, x509.ECDSAWithSHA256, err
		case elliptic.P384():
			key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			return key, x509.ECDSAWithSHA384, err
		case elliptic.P521():
			key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
			return key, x509.ECDSAWithSHA512, err
		}
	case *rsa.PublicKey:
		// The draft's signature is thrown away and its TBS is the same for
		// any RSA size, so the cheapest key Go will make does: a 2048-bit
		// one would cost a millisecond per certificate.
		key, err := rsa.GenerateKey(rand.Reader, 1024)
		return key, x509.SHA256WithRSA, err
	case ed25519.PublicKey:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, x509.PureEd25519, err
	}
	return nil, 0, errs.New(errs.Rejected, "CA keys of type %T are not supported", pub)
}

// draft is what the gate's prepare step makes for one signature: the TBS
// the CA key is to sign, laid out for seal (maxHeader reserved bytes, then
// the TBSCertificate or TBSCertList), and the lint it must pass first.
type draft struct {
	tbs  []byte
	lint func(Linter) error
}

// sign is the gate every signature of a CA key passes, for certificates
// (leaves, authorities, the root, OCSP responders) and CRLs (shards and
// whole) alike; nothing else in package ca asks a CA key to sign:
//
//  1. prepare: d was made by iss.certificate or CA.prepareCRL;
//  2. lint: d's lint must pass, or the key signs nothing;
//  3. sign: the key signs d's TBS (the signature checked when the key
//     lives outside this process);
//  4. record: record stores the signed DER durably with its audit event
//     before sign returns it.
func (iss *issuer) sign(l Linter, d draft, record func(der []byte) error) ([]byte, error) {
	if err := d.lint(l); err != nil {
		return nil, err
	}
	began := time.Now()
	der, err := iss.seal(iss.signer, iss.verify, d.tbs)
	if iss.signed != nil {
		iss.signed(time.Since(began), err)
	}
	if err != nil {
		return nil, err
	}
	if err := record(der); err != nil {
		return nil, err
	}
	return der, nil
}

// certificate is the prepare step of a certificate: tmpl is signed with
// the throwaway key into the draft that is linted, whose TBS the real key
// then signs, so the real signature covers the very bytes that were
// linted. For a self-signed root, iss.cert is nil and tmpl is its own parent.
func (iss *issuer) certificate(tmpl *x509.Certificate, pub crypto.PublicKey) (draft, error) {
	tmpl.SignatureAlgorithm = iss.sigAlg
	// The draft's parent carries the throwaway public key, so that x509
	// accepts the throwaway signer; names and key identifiers stay the real ones.
	p := *tmpl
	if iss.cert != nil {
		p = *iss.cert
	}
	p.PublicKey = iss.lintKey.Public()
	linted, err := x509.CreateCertificate(rand.Reader, tmpl, &p, pub, iss.lintKey)
	if err != nil {
		return draft{}, errs.Wrap(errs.Rejected, err, "cannot build the certificate")
	}
	tbs, algID, err := splitCertificate(linted)
	if err != nil {
		return draft{}, err
	}
	if !bytes.Equal(algID, iss.algID) {
		return draft{}, errs.New(errs.Internal, "the draft certificate's signature algorithm is not the key's")
	}
	buf := make([]byte, maxHeader, maxHeader+len(tbs)+len(iss.algID)+sigRoom)
	return draft{tbs: append(buf, tbs...), lint: func(l Linter) error { return l.Check(linted) }}, nil
}

// maxHeader is the longest DER tag and length signet writes (appendHeader);
// sigRoom covers a signature BIT STRING (RSA-4096: 517 bytes).
const (
	maxHeader = 6
	sigRoom   = 530
)

// seal signs buf[maxHeader:], a TBS encoded after maxHeader reserved
// bytes, with signer, and completes it in place into SEQUENCE { tbs, algID,
// signature }: a large CRL is then held once, not copied into each
// enclosing element. With verify (a key outside this process, see
// kms.InProcess) the signature is checked first.
func (iss *issuer) seal(signer crypto.Signer, verify bool, buf []byte) ([]byte, error) {
	tbs := buf[maxHeader:]
	sig, err := crypto.SignMessage(signer, rand.Reader, tbs, signerOpts(iss.sigAlg))
	if err != nil {
		err = errs.Wrap(errs.Unavailable, err, "signing failed")
		if iss.failed != nil {
			iss.failed(err)
		}
		return nil, err
	}
	if verify {
		if err := checkSignature(iss.sigAlg, tbs, sig, signer.Public()); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "the key returned an invalid signature")
		}
	}
	buf = appendBitString(append(buf, iss.algID...), sig)
	var hdr [maxHeader]byte
	h := appendHeader(hdr[:0], 0x30, len(buf)-maxHeader)
	start := maxHeader - len(h)
	copy(buf[start:], h)
	return buf[start:], nil
}

func signerOpts(alg x509.SignatureAlgorithm) crypto.SignerOpts {
	switch alg {
	case x509.ECDSAWithSHA384:
		return crypto.SHA384
	case x509.ECDSAWithSHA512:
		return crypto.SHA512
	case x509.PureEd25519:
		return crypto.Hash(0)
	}
	return crypto.SHA256
}

// checkSignature verifies sig over tbs with pub, so that a faulty token
// never yields a certificate that does not verify.
func checkSignature(alg x509.SignatureAlgorithm, tbs, sig []byte, pub crypto.PublicKey) error {
	c := x509.Certificate{PublicKey: pub}
	return c.CheckSignature(alg, tbs, sig)
}

// splitCertificate returns the raw TBSCertificate and signatureAlgorithm of der.
func splitCertificate(der []byte) (tbs, algID []byte, err error) {
	in := cryptobyte.String(der)
	var cert cryptobyte.String
	if !in.ReadASN1(&cert, casn1.SEQUENCE) ||
		!cert.ReadASN1Element((*cryptobyte.String)(&tbs), casn1.SEQUENCE) ||
		!cert.ReadASN1Element((*cryptobyte.String)(&algID), casn1.SEQUENCE) {
		return nil, nil, errs.New(errs.Internal, "malformed draft certificate")
	}
	return tbs, algID, nil
}
