package sshca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestEncodeMatchesMarshal holds the hand encoding of signCert to
// x/crypto's: byte for byte the same certificate, a signature over the
// same bytes that verifies, rsa-sha2-512 for RSA CA keys.
func TestEncodeMatchesMarshal(t *testing.T) {
	newKey := func(kind string) crypto.Signer {
		var k crypto.Signer
		var err error
		switch kind {
		case "ed25519":
			_, k, err = ed25519.GenerateKey(rand.Reader)
		case "p256":
			k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case "p384":
			k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		case "rsa":
			k, err = rsa.GenerateKey(rand.Reader, 2048)
		}
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keys := map[string]crypto.Signer{}
	for _, kind := range []string{"ed25519", "p256", "p384", "rsa"} {
		keys[kind] = newKey(kind)
	}
	perms := []ssh.Permissions{
		{},
		{Extensions: map[string]string{"permit-pty": "", "permit-X11-forwarding": "", "permit-user-rc": ""}},
		{CriticalOptions: map[string]string{"force-command": "/bin/true", "source-address": "10.0.0.0/8,::1"},
			Extensions: map[string]string{"permit-agent-forwarding": "", "x@example.org": "value"}},
	}
	for caKind, caKey := range keys {
		signer, err := NewSigner(caKey)
		if err != nil {
			t.Fatal(err)
		}
		caWire := signer.PublicKey().Marshal()
		for subjectKind, subjectKey := range keys {
			pub, err := ssh.NewPublicKey(subjectKey.Public())
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range perms {
				cert := &ssh.Certificate{Key: pub, Serial: 1<<63 - 1 - uint64(i), CertType: ssh.UserCert, KeyId: "alice@example.org",
					ValidPrincipals: []string{"alice", "root", "ünïcode"}, ValidAfter: 1, ValidBefore: 1 << 40, Permissions: p}
				if i == 0 {
					cert.CertType, cert.ValidPrincipals = ssh.HostCert, []string{"h.example.org"}
				}
				blob, signed, err := signCert(cert, pub.Marshal(), signer, caWire)
				if err != nil {
					t.Fatalf("CA %s, subject %s: %v", caKind, subjectKind, err)
				}
				if want := cert.Marshal(); !bytes.Equal(blob, want) {
					t.Fatalf("CA %s, subject %s, case %d: encoding differs from x/crypto's\n got %x\nwant %x", caKind, subjectKind, i, blob, want)
				}
				if fingerprint(pub.Marshal()) != ssh.FingerprintSHA256(pub) {
					t.Errorf("fingerprint %s, want %s", fingerprint(pub.Marshal()), ssh.FingerprintSHA256(pub))
				}
				if err := verifySignature(cert, blob[:signed]); err != nil {
					t.Fatalf("CA %s, subject %s: %v", caKind, subjectKind, err)
				}
				if caKind == "rsa" && cert.Signature.Format != ssh.KeyAlgoRSASHA512 {
					t.Errorf("RSA CA signed with %s", cert.Signature.Format)
				}
				parsed, err := ssh.ParsePublicKey(blob)
				if err != nil {
					t.Fatal(err)
				}
				c := parsed.(*ssh.Certificate)
				checker := ssh.CertChecker{SupportedCriticalOptions: []string{"force-command", "source-address"}}
				if err := checker.CheckCert(c.ValidPrincipals[0], c); err != nil {
					t.Errorf("CA %s, subject %s, case %d: x/crypto refuses the certificate: %v", caKind, subjectKind, i, err)
				}
			}
		}
	}
}
