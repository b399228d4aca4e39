//go:build cgo

package kms_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/kms/kmstest"
)

// hsm makes a token labelled label and a Manager that reads its PIN from
// an environment variable. The Manager is closed when the test ends.
func hsm(t *testing.T, label string) (*kms.Manager, string) {
	t.Helper()
	module, pin := kmstest.SoftHSM(t, label)
	t.Setenv("SIGNET_TEST_PIN", pin)
	m := kms.NewManager(kms.Options{Module: module, PIN: "env:SIGNET_TEST_PIN"})
	t.Cleanup(func() { m.Close() })
	return m, module
}

func TestPKCS11EveryKeyType(t *testing.T) {
	m, module := hsm(t, "ca")
	tool := kmstest.RequireTool(t, "pkcs11-tool")
	ctx := context.Background()
	for _, kt := range kms.KeyTypes {
		uri := "pkcs11:token=ca;object=key-" + string(kt)
		s, err := m.Generate(ctx, uri, kt)
		if err != nil {
			t.Fatalf("Generate %s: %v", kt, err)
		}
		checkSigns(t, s)
	}

	// pkcs11-tool, not our own code, says the keys cannot leave the token.
	out, err := exec.Command(tool, "--module", module, "--token-label", "ca", "--login", "--pin", kmstest.PIN,
		"--list-objects", "--type", "privkey").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	for _, kt := range kms.KeyTypes {
		block := objectBlock(string(out), "key-"+string(kt))
		if block == "" {
			t.Fatalf("pkcs11-tool does not list private key key-%s:\n%s", kt, out)
		}
		if !strings.Contains(block, "Access:     sensitive, always sensitive, never extractable") {
			t.Errorf("key-%s is not sensitive and non-extractable:\n%s", kt, block)
		}
		if !strings.Contains(block, "Usage:      sign") || strings.Contains(block, "decrypt") {
			t.Errorf("key-%s should be for signing only:\n%s", kt, block)
		}
	}

	// List agrees, and every listed URI opens in a fresh Manager.
	infos, err := m.List(ctx, "pkcs11:token=ca")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(kms.KeyTypes) {
		t.Fatalf("List gave %d keys, want %d: %+v", len(infos), len(kms.KeyTypes), infos)
	}
	m.Close()
	m2 := kms.NewManager(kms.Options{Module: module, PIN: "env:SIGNET_TEST_PIN"})
	defer m2.Close()
	for _, in := range infos {
		if in.Type != strings.TrimPrefix(in.Label, "key-") || !in.Sensitive || in.Extractable || in.Token != "ca" || in.ID == "" {
			t.Errorf("List entry %+v", in)
		}
		s, err := m2.Signer(ctx, in.URI)
		if err != nil {
			t.Fatalf("Signer(%s): %v", in.URI, err)
		}
		checkSigns(t, s)
		// Opening by label alone finds the same key.
		s2, err := m2.Signer(ctx, "pkcs11:token=ca;object="+in.Label)
		if err != nil {
			t.Fatal(err)
		}
		if !s2.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(in.PublicKey) {
			t.Errorf("%s: public key from Signer differs from List", in.Label)
		}
	}
}

// objectBlock returns pkcs11-tool's paragraph about the object labelled label.
func objectBlock(out, label string) string {
	for _, b := range strings.Split(out, "Private Key Object") {
		if strings.Contains(b, "label:      "+label+"\n") {
			return b
		}
	}
	return ""
}

func TestPKCS11Errors(t *testing.T) {
	m, module := hsm(t, "ca")
	ctx := context.Background()
	if _, err := m.Generate(ctx, "pkcs11:token=ca;object=root", kms.ECDSAP256); err != nil {
		t.Fatal(err)
	}

	t.Run("conflict", func(t *testing.T) {
		_, err := m.Generate(ctx, "pkcs11:token=ca;object=root", kms.ECDSAP384)
		wantKind(t, err, errs.Conflict, `"root"`, `"ca"`, "generate")
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := m.Signer(ctx, "pkcs11:token=ca;object=nope")
		wantKind(t, err, errs.NotFound, `"nope"`, `token "ca"`, "open")
	})
	t.Run("missing token", func(t *testing.T) {
		_, err := m.Signer(ctx, "pkcs11:token=elsewhere;object=root")
		wantKind(t, err, errs.Unavailable, `"elsewhere"`, `present: "ca"`)
	})
	t.Run("missing module", func(t *testing.T) {
		m := kms.NewManager(kms.Options{Tokens: map[string]kms.Token{"ca": {Module: "/nonexistent/libp11.so"}}})
		defer m.Close()
		_, err := m.Signer(ctx, "pkcs11:token=ca;object=root")
		wantKind(t, err, errs.Unavailable, "/nonexistent/libp11.so")
	})
	t.Run("unloadable module", func(t *testing.T) {
		m := kms.NewManager(kms.Options{Module: "/etc/passwd"})
		defer m.Close()
		_, err := m.Signer(ctx, "pkcs11:token=ca;object=root")
		wantKind(t, err, errs.Unavailable, "/etc/passwd")
	})
	t.Run("no module", func(t *testing.T) {
		m := kms.NewManager(kms.Options{})
		defer m.Close()
		_, err := m.Signer(ctx, "pkcs11:token=ca;object=root")
		wantKind(t, err, errs.Malformed, "[tokens.ca]", "--module")
	})
	t.Run("pin-value", func(t *testing.T) {
		_, err := m.Signer(ctx, "pkcs11:token=ca;object=root?pin-value=1234")
		wantKind(t, err, errs.Malformed, "pin-value", "[tokens.LABEL]")
		if strings.Contains(err.Error(), "1234") {
			t.Errorf("error echoes the PIN: %v", err)
		}
	})
	t.Run("mechanism the token lacks", func(t *testing.T) {
		err := kms.RequireMechanism(m, "pkcs11:token=ca", 0x8000beef, "CKM_VENDOR_BEEF", 0)
		wantKind(t, err, errs.Rejected, "CKM_VENDOR_BEEF", `token "ca"`)
		err = kms.RequireMechanism(m, "pkcs11:token=ca", kms.CKMRSAKeyPairGen, "CKM_RSA_PKCS_KEY_PAIR_GEN", 1<<20)
		wantKind(t, err, errs.Rejected, "CKM_RSA_PKCS_KEY_PAIR_GEN", "bit keys")
		if err := kms.RequireMechanism(m, "pkcs11:token=ca", kms.CKMRSAKeyPairGen, "CKM_RSA_PKCS_KEY_PAIR_GEN", 2048); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Ed25519 signs messages, not digests", func(t *testing.T) {
		s, err := m.Generate(ctx, "pkcs11:token=ca;object=ed;id=%01%02", kms.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256([]byte("x"))
		_, err = s.Sign(nil, d[:], crypto.SHA256)
		wantKind(t, err, errs.Rejected, `key "ed" on token "ca"`)
		_, err = m.Generate(ctx, "pkcs11:token=ca;object=other;id=%01%02", kms.Ed25519)
		wantKind(t, err, errs.Conflict, "id 0102")
	})

	// Wrong PIN: a second Manager, alone on the module, so the login is real
	// (PKCS#11 login state is per process: a logged-in token stays logged in).
	m.Close()
	t.Setenv("SIGNET_WRONG_PIN", "9999")
	bad := kms.NewManager(kms.Options{Module: module, PIN: "env:SIGNET_WRONG_PIN"})
	_, err := bad.Signer(ctx, "pkcs11:token=ca;object=root")
	wantKind(t, err, errs.Unauthorized, `wrong PIN for token "ca"`)
	bad.Close()

	// A token's own entry wins over the defaults: its PIN source, and a
	// serial that must match the token's.
	serial := tokenSerial(t, module, "ca")
	good := kms.NewManager(kms.Options{PIN: "env:SIGNET_WRONG_PIN",
		Tokens: map[string]kms.Token{"ca": {Module: module, PIN: "env:SIGNET_TEST_PIN", Serial: serial}}})
	defer good.Close()
	s, err := good.Signer(ctx, "pkcs11:token=ca;object=root")
	if err != nil {
		t.Fatal(err)
	}
	checkSigns(t, s)
	other := kms.NewManager(kms.Options{Tokens: map[string]kms.Token{"ca": {Module: module, PIN: "env:SIGNET_TEST_PIN", Serial: "0000"}}})
	defer other.Close()
	_, err = other.Signer(ctx, "pkcs11:token=ca;object=root")
	wantKind(t, err, errs.Unavailable, `no token "ca"`)
}

// TestPKCS11URIRefusesModuleAndPIN: a key URI, which comes from the store,
// cannot name the module a node loads nor where its PIN is read: a Manager
// without any module refuses a URI naming a real one, and a pin-source
// naming a file that does not exist is never read.
func TestPKCS11URIRefusesModuleAndPIN(t *testing.T) {
	module, pin := kmstest.SoftHSM(t, "ca")
	t.Setenv("SIGNET_TEST_PIN", pin)
	ctx := context.Background()
	gen := kms.NewManager(kms.Options{Module: module, PIN: "env:SIGNET_TEST_PIN"})
	if _, err := gen.Generate(ctx, "pkcs11:token=ca;object=root", kms.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	gen.Close()
	m := kms.NewManager(kms.Options{PIN: "env:SIGNET_TEST_PIN"})
	defer m.Close()
	for _, uri := range []string{
		"pkcs11:token=ca;object=root?module-path=" + module,
		"pkcs11:token=ca;object=root?pin-source=file:/nonexistent/pin",
		"pkcs11:token=ca;object=root?module-path=" + module + "&pin-source=env:SIGNET_TEST_PIN",
	} {
		_, err := m.Signer(ctx, uri)
		wantKind(t, err, errs.Rejected, "module-path, pin-source", "signet.toml")
		if strings.Contains(err.Error(), "reading the") {
			t.Errorf("%s: the pin-source was read: %v", uri, err)
		}
		_, err = m.Generate(ctx, strings.Replace(uri, "object=root", "object=new", 1), kms.ECDSAP256)
		wantKind(t, err, errs.Rejected, "module-path, pin-source")
		_, err = m.List(ctx, uri)
		wantKind(t, err, errs.Rejected, "module-path, pin-source")
	}
}

// tokenSerial is the serial of the token labelled label.
func tokenSerial(t *testing.T, module, label string) string {
	t.Helper()
	out, err := exec.Command("pkcs11-tool", "--module", module, "--list-token-slots").CombinedOutput()
	if err != nil {
		t.Skipf("pkcs11-tool: %v", err)
	}
	found := false
	for line := range strings.SplitSeq(string(out), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch strings.TrimSpace(k) {
		case "token label":
			found = strings.TrimSpace(v) == label
		case "serial num":
			if found {
				return strings.TrimSpace(v)
			}
		}
	}
	t.Fatalf("no serial for token %q in:\n%s", label, out)
	return ""
}

func TestPKCS11ConcurrentSigning(t *testing.T) {
	m, _ := hsm(t, "ca")
	ctx := context.Background()
	for _, kt := range []kms.KeyType{kms.ECDSAP256, kms.Ed25519} {
		s, err := m.Generate(ctx, "pkcs11:token=ca;object=c-"+string(kt), kt)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errc := make(chan error, 2)
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					msg := fmt.Appendf(nil, "goroutine %d message %d", g, i)
					if err := signVerify(s, msg); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Errorf("%s: %v", kt, err)
		}
	}
}

func signVerify(s crypto.Signer, msg []byte) error {
	switch pub := s.Public().(type) {
	case ed25519.PublicKey:
		sig, err := s.Sign(nil, msg, crypto.Hash(0))
		if err != nil {
			return err
		}
		if !ed25519.Verify(pub, msg, sig) {
			return errors.New("bad Ed25519 signature")
		}
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(pub, d[:], sig) {
			return errors.New("bad ECDSA signature")
		}
	}
	return nil
}
