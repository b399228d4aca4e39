package kms_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"

	"signet/internal/errs"
)

// checkSigns signs a message with s and verifies the signature with the
// standard library, for every scheme the key type allows.
func checkSigns(t *testing.T, s crypto.Signer) {
	t.Helper()
	msg := []byte("the lazy CA signs the quick certificate")
	digest := sha256.Sum256(msg)
	switch pub := s.Public().(type) {
	case *ecdsa.PublicKey:
		sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("ECDSA sign: %v", err)
		}
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			t.Fatal("ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("RSA PKCS#1 v1.5 sign: %v", err)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			t.Fatalf("RSA PKCS#1 v1.5 verify: %v", err)
		}
		pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
		sig, err = s.Sign(rand.Reader, digest[:], pss)
		if err != nil {
			t.Fatalf("RSA PSS sign: %v", err)
		}
		if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, pss); err != nil {
			t.Fatalf("RSA PSS verify: %v", err)
		}
	case ed25519.PublicKey:
		sig, err := s.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			t.Fatalf("Ed25519 sign: %v", err)
		}
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
			t.Fatal("Ed25519 signature does not verify")
		}
	default:
		t.Fatalf("unexpected public key %T", pub)
	}
}

func wantKind(t *testing.T, err error, kind errs.Kind, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %v error, got none", kind)
	}
	if errs.KindOf(err) != kind {
		t.Fatalf("want kind %v, got %v: %v", kind, errs.KindOf(err), err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}
