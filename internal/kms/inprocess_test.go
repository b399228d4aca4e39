package kms_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"signet/internal/kms"
)

type wrapped struct{ crypto.Signer }

func TestInProcess(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !kms.InProcess(k) {
		t.Error("an *ecdsa.PrivateKey is not in process")
	}
	if kms.InProcess(wrapped{k}) {
		t.Error("a signer of another type is in process: its signatures would go unchecked")
	}
}
