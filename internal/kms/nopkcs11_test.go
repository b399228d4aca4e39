//go:build !cgo

package kms_test

import (
	"context"
	"crypto/x509"
	"testing"

	"signet/internal/errs"
	"signet/internal/kms"
)

// A build without cgo cannot load PKCS#11 modules: every way to reach a
// token key says so in one error, and software keys keep working.
// scripts/test runs this with CGO_ENABLED=0.
func TestNoPKCS11(t *testing.T) {
	if kms.PKCS11 {
		t.Fatal("kms.PKCS11 is true in a build without cgo")
	}
	ctx := context.Background()
	t.Setenv("SIGNET_TEST_PASS", "software passphrase")
	m := kms.NewManager(kms.Options{Dir: t.TempDir(), Module: "/usr/lib/softhsm/libsofthsm2.so", PIN: "env:SIGNET_TEST_PIN", Passphrase: "env:SIGNET_TEST_PASS"})
	defer m.Close()
	const uri = "pkcs11:token=ca;object=root"
	const says = "this signet was built without PKCS#11 (CGO_ENABLED=0)"

	_, err := m.Generate(ctx, uri, kms.ECDSAP256)
	wantKind(t, err, errs.Unavailable, says, uri, "file:")
	_, err = m.Signer(ctx, uri)
	wantKind(t, err, errs.Unavailable, says, uri)
	_, err = m.List(ctx, "pkcs11:token=ca")
	wantKind(t, err, errs.Unavailable, says, "pkcs11:token=ca")
	_, err = m.ImportCertificate(ctx, uri, &x509.Certificate{}, nil)
	wantKind(t, err, errs.Unavailable, says, uri)
	err = m.Unlock(ctx, "ca", []byte("1234"), false)
	wantKind(t, err, errs.Unavailable, says, "pkcs11:token=ca")
	_, err = kms.ListTokens("/usr/lib/softhsm/libsofthsm2.so")
	wantKind(t, err, errs.Unavailable, says)

	s, err := m.Generate(ctx, "file:software.key", kms.ECDSAP256)
	if err != nil {
		t.Fatalf("a software key in a build without cgo: %v", err)
	}
	checkSigns(t, s)
}
