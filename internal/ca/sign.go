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
	"errors"
	"io"
	"math/big"
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
// of the key passes; the drafts it lints first carry a placeholder
// signature (placeholder) instead of one.
type issuer struct {
	cert        *x509.Certificate // nil while signing a self-signed root
	signer      crypto.Signer
	sigAlg      x509.SignatureAlgorithm
	algID       []byte                     // sigAlg's DER AlgorithmIdentifier
	placeholder []byte                     // the signature a draft carries, as long as the key's longest
	verify      bool                       // check each signature: the key lives outside this process
	failed      func(error)                // called when the key fails to sign; nil: nothing to do
	signed      func(time.Duration, error) // told of each signature and its latency; nil: nobody
}

func newIssuer(cert *x509.Certificate, signer crypto.Signer) (*issuer, error) {
	sigAlg, err := signatureAlgorithm(signer.Public())
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
	return &issuer{cert: cert, signer: signer, sigAlg: sigAlg, algID: algID, placeholder: placeholderSignature(signer.Public()),
		verify: !kms.InProcess(signer)}, nil
}

// placeholderSignature is what a draft carries where the CA key's
// signature will be: as long as the longest signature pub's key makes,
// since lints infer the curve from an ECDSA signature's length (for
// ECDSA the DER ECDSA-Sig-Value (n-1, n-1); for RSA and Ed25519, zero
// bytes of the signature's fixed length). No lint can check its value:
// it could only verify it with the CA key's own signature.
func placeholderSignature(pub crypto.PublicKey) []byte {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		n := new(big.Int).Sub(k.Curve.Params().N, big.NewInt(1))
		var b cryptobyte.Builder
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1BigInt(n)
			b.AddASN1BigInt(n)
		})
		return b.BytesOrPanic()
	case *rsa.PublicKey:
		return make([]byte, k.Size())
	default: // ed25519.PublicKey
		return make([]byte, ed25519.SignatureSize)
	}
}

// signatureAlgorithm is the algorithm a CA key of pub's type signs with.
func signatureAlgorithm(pub crypto.PublicKey) (x509.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return x509.ECDSAWithSHA256, nil
		case elliptic.P384():
			return x509.ECDSAWithSHA384, nil
		case elliptic.P521():
			return x509.ECDSAWithSHA512, nil
		}
	case *rsa.PublicKey:
		return x509.SHA256WithRSA, nil
	case ed25519.PublicKey:
		return x509.PureEd25519, nil
	}
	return 0, errs.New(errs.Rejected, "CA keys of type %T are not supported", pub)
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

// certificate is the prepare step of a certificate: x509 encodes tmpl's
// TBS as for the CA key (tbsOnly takes the TBS where the key would sign
// it, and the key signs nothing); the draft that is linted is that TBS with
// the placeholder signature, and the real key then signs the very bytes
// that were linted. For a self-signed root, iss.cert is nil and tmpl is
// its own parent.
func (iss *issuer) certificate(tmpl *x509.Certificate, pub crypto.PublicKey) (draft, error) {
	tmpl.SignatureAlgorithm = iss.sigAlg
	parent := tmpl
	if iss.cert != nil {
		parent = iss.cert
	}
	t := &tbsOnly{pub: iss.signer.Public()}
	_, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, t)
	if t.tbs == nil {
		if err == nil {
			err = errs.New(errs.Internal, "x509 made a certificate without asking for its signature")
		}
		return draft{}, errs.Wrap(errs.Rejected, err, "cannot build the certificate")
	}
	buf := make([]byte, maxHeader, maxHeader+len(t.tbs)+len(iss.algID)+sigRoom)
	buf = append(buf, t.tbs...)
	// The draft is completed in a copy: seal completes buf in place.
	linted := iss.finish(append(make([]byte, 0, cap(buf)), buf...), iss.placeholder)
	if _, algID, err := splitCertificate(linted); err != nil || !bytes.Equal(algID, iss.algID) {
		return draft{}, errs.New(errs.Internal, "the draft certificate's signature algorithm is not the key's")
	}
	return draft{tbs: buf, lint: func(l Linter) error { return l.Check(linted) }}, nil
}

// tbsOnly is the signer x509.CreateCertificate is given to build a draft:
// it has the CA key's public key and keeps the message it is asked to sign
// (x509 passes the whole TBS to a crypto.MessageSigner), then refuses,
// so that nothing is signed.
type tbsOnly struct {
	pub crypto.PublicKey
	tbs []byte
}

var errTBSOnly = errors.New("draft: the TBS is kept, nothing is signed")

func (t *tbsOnly) Public() crypto.PublicKey { return t.pub }

func (t *tbsOnly) SignMessage(_ io.Reader, msg []byte, _ crypto.SignerOpts) ([]byte, error) {
	t.tbs = bytes.Clone(msg)
	return nil, errTBSOnly
}

// Sign is never called by an x509 that hands a MessageSigner the message;
// one that hashed first would fail every draft here, not lint a digest.
func (t *tbsOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errs.New(errs.Internal, "x509 asked the draft signer to sign a digest, not the TBS")
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
	return iss.finish(buf, sig), nil
}

// finish completes buf, a TBS after maxHeader reserved bytes, in place
// into SEQUENCE { tbs, algID, sig }.
func (iss *issuer) finish(buf, sig []byte) []byte {
	buf = appendBitString(append(buf, iss.algID...), sig)
	var hdr [maxHeader]byte
	h := appendHeader(hdr[:0], 0x30, len(buf)-maxHeader)
	start := maxHeader - len(h)
	copy(buf[start:], h)
	return buf[start:]
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
