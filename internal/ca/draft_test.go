package ca_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/policy"
	"signet/internal/profile"
)

// keeping is the real lint gate, keeping every certificate it is shown.
type keeping struct {
	ca.Linter
	mu   sync.Mutex
	seen [][]byte
}

func (k *keeping) Check(der []byte) error {
	k.mu.Lock()
	k.seen = append(k.seen, bytes.Clone(der))
	k.mu.Unlock()
	return k.Linter.Check(der)
}

// TestLintedIsSigned: for each kind of CA key, the draft the lint gate
// checks is the very TBS the key then signs, and it carries a signature
// as long as the key's (lints tell an ECDSA curve by the signature's
// length; an RSA key's is its modulus size): nothing else is signed to
// make the draft.
func TestLintedIsSigned(t *testing.T) {
	for _, kt := range []kms.KeyType{kms.ECDSAP256, kms.ECDSAP384, kms.Ed25519, kms.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			ctx := context.Background()
			st, mgr := newStoreAndKeys(t, "file:root.key")
			if _, err := mgr.Generate(ctx, "file:web.key", kt); err != nil {
				t.Fatal(err)
			}
			gate := &keeping{Linter: lintGate(t)}
			keys := &countingKeys{kms: mgr}
			c := ca.New(ca.Options{Store: st, Keys: keys, Lint: gate, Clock: time.Now})
			if _, err := c.CreateRoot(ctx, ca.RootSpec{CommonName: "Test Root", KeyURI: "file:root.key", Actor: "test"}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateAuthority(ctx, ca.AuthoritySpec{Name: "web", Purpose: profile.TLSServer, KeyURI: "file:web.key",
				Actor: "test", Policy: policy.Policy{DNS: []string{"example.org"}}}); err != nil {
				t.Fatal(err)
			}
			gate.seen = nil
			before := keys.signs.Load()
			got, err := c.Issue(ctx, ca.Request{Authority: "web", PublicKey: newKey(t).Public(), DNSNames: []string{"a.example.org"}})
			if err != nil {
				t.Fatal(err)
			}
			if n := keys.signs.Load() - before; n != 1 {
				t.Errorf("the CA keys signed %d times for one certificate, want once", n)
			}
			if len(gate.seen) != 1 {
				t.Fatalf("the gate saw %d certificates, want 1", len(gate.seen))
			}
			issued, err := x509.ParseCertificate(got.DER)
			if err != nil {
				t.Fatal(err)
			}
			linted, err := x509.ParseCertificate(gate.seen[0])
			if err != nil {
				t.Fatalf("the linted draft does not parse: %v", err)
			}
			if !bytes.Equal(linted.RawTBSCertificate, issued.RawTBSCertificate) {
				t.Error("the linted TBS is not the signed TBS")
			}
			if err := issued.CheckSignatureFrom(mustParent(t, c)); err != nil {
				t.Errorf("the issued certificate does not verify: %v", err)
			}
			want := len(issued.Signature)
			if kt == kms.ECDSAP256 || kt == kms.ECDSAP384 {
				// ECDSA signatures vary by a byte or two; the draft's is the longest.
				want = map[kms.KeyType]int{kms.ECDSAP256: 72, kms.ECDSAP384: 104}[kt]
			}
			if len(linted.Signature) != want {
				t.Errorf("the draft's signature is %d bytes, the key's (longest) %d", len(linted.Signature), want)
			}
		})
	}
}

func mustParent(t *testing.T, c *ca.CA) *x509.Certificate {
	t.Helper()
	chain, err := c.Chain(context.Background(), "web")
	if err != nil || len(chain) == 0 {
		t.Fatalf("chain of web: %v", err)
	}
	p, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	return p
}
