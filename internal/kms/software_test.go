package kms_test

import (
	"bytes"
	"context"
	"crypto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/kms/kmstest"
)

func TestSoftwareKeyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SIGNET_TEST_PASS", "correct horse battery staple")
	opts := kms.Options{Dir: filepath.Join(dir, "keys"), Passphrase: "env:SIGNET_TEST_PASS"}
	ctx := context.Background()
	for _, kt := range []kms.KeyType{kms.ECDSAP256, kms.ECDSAP384, kms.Ed25519, kms.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			m := kms.NewManager(opts)
			defer m.Close()
			uri := "file:" + string(kt) + ".key"
			path := filepath.Join(dir, "keys", string(kt)+".key")
			s, err := m.Generate(ctx, uri, kt)
			if err != nil {
				t.Fatal(err)
			}
			checkSigns(t, s)

			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
			}
			if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
				t.Errorf("key dir mode %04o, want 0700", di.Mode().Perm())
			}
			data, _ := os.ReadFile(path)
			if !bytes.HasPrefix(data, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")) {
				t.Errorf("key file is not an encrypted PKCS#8 PEM:\n%s", data)
			}

			// Never overwritten.
			_, err = m.Generate(ctx, uri, kt)
			wantKind(t, err, errs.Conflict, path)

			// Reopened by a new Manager (no cache), by absolute path.
			m2 := kms.NewManager(kms.Options{Passphrase: "env:SIGNET_TEST_PASS"})
			defer m2.Close()
			s2, err := m2.Signer(ctx, "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			if !s2.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(s.Public()) {
				t.Fatal("reopened key has another public key")
			}
			checkSigns(t, s2)

			t.Setenv("SIGNET_WRONG_PASS", "Tr0ub4dor&3")
			m3 := kms.NewManager(kms.Options{Passphrase: "env:SIGNET_WRONG_PASS"})
			defer m3.Close()
			_, err = m3.Signer(ctx, "file:"+path)
			wantKind(t, err, errs.Unauthorized, "wrong passphrase", path)
		})
	}
}

// OpenSSL, not our code, decides whether the file is encrypted and readable.
func TestSoftwareKeyOpenSSL(t *testing.T) {
	openssl := kmstest.RequireTool(t, "openssl")
	dir := t.TempDir()
	t.Setenv("SIGNET_TEST_PASS", "s3cret passphrase")
	m := kms.NewManager(kms.Options{Dir: dir, Passphrase: "env:SIGNET_TEST_PASS"})
	defer m.Close()
	if _, err := m.Generate(context.Background(), "file:ca.key", kms.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.key")
	out, err := exec.Command(openssl, "pkey", "-in", path, "-passin", "pass:WRONG", "-noout").CombinedOutput()
	if err == nil {
		t.Fatalf("openssl read the key with a wrong passphrase:\n%s", out)
	}
	out, err = exec.Command(openssl, "pkey", "-in", path, "-passin", "env:SIGNET_TEST_PASS", "-text", "-noout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl cannot read our key with the right passphrase: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "NIST CURVE: P-256") {
		t.Errorf("openssl does not see a P-256 key:\n%s", out)
	}
	out, err = exec.Command(openssl, "asn1parse", "-in", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ":scrypt") || !strings.Contains(string(out), ":aes-256-cbc") {
		t.Errorf("key is not PBES2 scrypt + AES-256 (err %v):\n%s", err, out)
	}
}

func TestSoftwareKeyErrors(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	m := kms.NewManager(kms.Options{Dir: dir})
	defer m.Close()
	_, err := m.Generate(ctx, "file:x.key", kms.ECDSAP256)
	wantKind(t, err, errs.Malformed, "passphrase")
	_, err = m.Signer(ctx, "file:missing.key")
	wantKind(t, err, errs.NotFound, filepath.Join(dir, "missing.key"))

	clear := filepath.Join(dir, "clear.key")
	os.WriteFile(clear, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	_, err = m.Signer(ctx, "file:clear.key")
	wantKind(t, err, errs.Malformed, clear, "ENCRYPTED PRIVATE KEY")

	_, err = m.Generate(ctx, "file:x.key", "dsa-1024")
	wantKind(t, err, errs.Malformed, "ecdsa-p256", "rsa-4096")
	_, err = m.Signer(ctx, "/etc/ssl/ca.key")
	wantKind(t, err, errs.Malformed, "file:PATH")
}

func TestParseKeyType(t *testing.T) {
	for _, kt := range kms.KeyTypes {
		if got, err := kms.ParseKeyType(string(kt)); err != nil || got != kt {
			t.Errorf("ParseKeyType(%q) = %q, %v", kt, got, err)
		}
	}
	_, err := kms.ParseKeyType("ECDSA-P256")
	wantKind(t, err, errs.Malformed, "ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096")
}

// TestSoftwareKeyOutsideDir: a software key outside the Manager's directory
// (a home) is refused, by absolute path or by climbing out, before the file
// is read; without a directory (no home) any path is used.
func TestSoftwareKeyOutsideDir(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "stolen.key")
	t.Setenv("SIGNET_TEST_PASS", "correct horse battery staple")
	free := kms.NewManager(kms.Options{Passphrase: "env:SIGNET_TEST_PASS"})
	defer free.Close()
	if _, err := free.Generate(context.Background(), "file:"+outside, kms.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	m := kms.NewManager(kms.Options{Dir: filepath.Join(dir, "home"), Passphrase: "env:SIGNET_TEST_PASS"})
	defer m.Close()
	rel, _ := filepath.Rel(filepath.Join(dir, "home"), outside)
	for _, uri := range []string{"file:" + outside, "file://" + outside, "file:" + rel, "file:keys/../../x.key"} {
		_, err := m.Signer(context.Background(), uri)
		wantKind(t, err, errs.Rejected, "outside the home")
		_, err = m.Generate(context.Background(), uri, kms.ECDSAP256)
		wantKind(t, err, errs.Rejected, "outside the home")
	}
	if _, err := m.Generate(context.Background(), "file:"+filepath.Join(dir, "home", "keys", "in.key"), kms.ECDSAP256); err != nil {
		t.Errorf("an absolute path inside the home: %v", err)
	}
}
