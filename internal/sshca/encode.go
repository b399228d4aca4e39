package sshca

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"io"
	"slices"

	"golang.org/x/crypto/ssh"

	"signet/internal/errs"
)

// signCert signs cert as ssh.Certificate.SignCert does (random nonce, the
// signer's first algorithm, rsa-sha2-512 for RSA) and returns the signed
// certificate's wire form. It encodes the certificate once, by hand
// (PROTOCOL.certkeys), where SignCert and Marshal encode it twice through
// reflection: on the software-key path that was a sixth of the CPU per
// certificate. TestEncodeMatchesMarshal holds it to x/crypto's encoding.
func signCert(cert *ssh.Certificate, key []byte, signer ssh.Signer, caKey []byte) (blob []byte, signed int, err error) {
	cert.Nonce = make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, cert.Nonce); err != nil {
		return nil, 0, errs.Wrap(errs.Internal, err, "certificate nonce")
	}
	cert.SignatureKey = signer.PublicKey()
	body := appendCertBody(make([]byte, 0, 512), cert, key, caKey)
	var sig *ssh.Signature
	switch s := signer.(type) {
	case ssh.MultiAlgorithmSigner:
		if len(s.Algorithms()) == 0 {
			return nil, 0, errs.New(errs.Internal, "the CA signer has no signature algorithm")
		}
		sig, err = s.SignWithAlgorithm(rand.Reader, body, s.Algorithms()[0])
	case ssh.AlgorithmSigner:
		if s.PublicKey().Type() == ssh.KeyAlgoRSA {
			sig, err = s.SignWithAlgorithm(rand.Reader, body, ssh.KeyAlgoRSASHA512)
		} else {
			sig, err = s.Sign(rand.Reader, body)
		}
	default:
		sig, err = signer.Sign(rand.Reader, body)
	}
	if err != nil {
		return nil, 0, err
	}
	cert.Signature = sig
	n := len(body)
	sigBlob := appendString(nil, []byte(sig.Format))
	sigBlob = appendString(sigBlob, sig.Blob)
	sigBlob = append(sigBlob, sig.Rest...)
	return appendString(body, sigBlob), n, nil
}

// appendCertBody appends what a certificate's signature covers: every
// field but the signature. key and caKey are the wire forms of the subject
// and signature keys.
func appendCertBody(b []byte, c *ssh.Certificate, key, caKey []byte) []byte {
	b = appendString(b, []byte(c.Type()))
	b = appendString(b, c.Nonce)
	b = append(b, key[4+binary.BigEndian.Uint32(key):]...) // the key's fields after its type name
	b = binary.BigEndian.AppendUint64(b, c.Serial)
	b = binary.BigEndian.AppendUint32(b, c.CertType)
	b = appendString(b, []byte(c.KeyId))
	b = appendNested(b, func(b []byte) []byte {
		for _, p := range c.ValidPrincipals {
			b = appendString(b, []byte(p))
		}
		return b
	})
	b = binary.BigEndian.AppendUint64(b, c.ValidAfter)
	b = binary.BigEndian.AppendUint64(b, c.ValidBefore)
	b = appendNested(b, func(b []byte) []byte { return appendTuples(b, c.CriticalOptions) })
	b = appendNested(b, func(b []byte) []byte { return appendTuples(b, c.Extensions) })
	b = appendString(b, c.Reserved)
	return appendString(b, caKey)
}

// appendNested appends a string whose content f appends.
func appendNested(b []byte, f func([]byte) []byte) []byte {
	at := len(b)
	b = f(append(b, 0, 0, 0, 0))
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// appendTuples appends critical options or extensions: sorted by name, a
// non-empty value wrapped in a string of its own.
func appendTuples(b []byte, m map[string]string) []byte {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		b = appendString(b, []byte(name))
		if v := m[name]; v != "" {
			b = appendNested(b, func(b []byte) []byte { return appendString(b, []byte(v)) })
		} else {
			b = appendString(b, nil)
		}
	}
	return b
}

// fingerprint is ssh.FingerprintSHA256 of a key's wire form.
func fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
