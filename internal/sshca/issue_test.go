package sshca_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/profile"
	"signet/internal/sshca"
	"signet/internal/store"
)

// TestRolloverMidIssue: a node that loaded an authority before another
// node activated a new CA key signs once with the old key, is refused by
// the store, reloads and signs with the new key. The certificate handed
// out is the new key's, and the refused signature is in the audit log.
func TestRolloverMidIssue(t *testing.T) {
	f := newFixture(t, kms.Options{})
	ctx := context.Background()
	f.authority(t, "users", profile.SSHUser, "file:users-1.key", kms.Ed25519, "alice")
	pub := sshKey(t, filepath.Join(t.TempDir(), "id"))
	req := sshca.Request{Authority: "users", PublicKey: pub, Type: store.SSHUserCert, Principals: []string{"alice"}}
	old := f.sign(t, nil, req, "") // loads the authority with its first key

	other := sshca.New(sshca.Options{Store: f.store, Keys: f.keys}) // a second node
	if _, err := f.keys.Generate(ctx, "file:users-2.key", kms.Ed25519); err != nil {
		t.Fatal(err)
	}
	if _, err := other.AddKey(ctx, "users", "file:users-2.key", true, "test"); err != nil {
		t.Fatal(err)
	}

	iss := f.sign(t, nil, req, "")
	if bytes.Equal(iss.Cert.SignatureKey.Marshal(), old.Cert.SignatureKey.Marshal()) {
		t.Fatal("signed with the retired key after the rollover")
	}
	var discards int
	if err := f.store.Events(ctx, func(e audit.Event) error {
		if e.Kind == audit.KindSSHCertificateDiscard {
			discards++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if discards != 1 {
		t.Fatalf("%d ssh.certificate.discard events, want 1 (the old key's refused signature)", discards)
	}
	if _, err := audit.Verify(ctx, f.store); err != nil {
		t.Fatalf("audit log after a discard: %v", err)
	}
}

// TestStoredWireForm: the certificate signet records (the signed bytes
// with the signature appended, encoded once) is byte for byte what
// x/crypto/ssh encodes for the certificate it hands out, and its signature
// verifies, for each kind of CA key (RSA signs with rsa-sha2-512).
func TestStoredWireForm(t *testing.T) {
	f := newFixture(t, kms.Options{})
	ctx := context.Background()
	for _, kt := range []kms.KeyType{kms.Ed25519, kms.ECDSAP256, kms.RSA3072} {
		name := "users-" + string(kt)
		f.authority(t, name, profile.SSHUser, "file:"+name+".key", kt, "alice")
		pub := sshKey(t, filepath.Join(t.TempDir(), "id"))
		iss := f.sign(t, nil, sshca.Request{Authority: name, PublicKey: pub, Principals: []string{"alice"}}, "")
		rec, err := f.store.SSHCertificate(ctx, iss.Serial)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.Cert, iss.Cert.Marshal()) {
			t.Fatalf("%s: stored certificate differs from x/crypto/ssh's encoding", kt)
		}
		parsed, err := ssh.ParsePublicKey(rec.Cert)
		if err != nil {
			t.Fatalf("%s: stored certificate does not parse: %v", kt, err)
		}
		cert := parsed.(*ssh.Certificate)
		checker := ssh.CertChecker{IsUserAuthority: func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), cert.SignatureKey.Marshal()) }}
		if err := checker.CheckCert("alice", cert); err != nil {
			t.Fatalf("%s: %v", kt, err)
		}
		if kt == kms.RSA3072 && cert.Signature.Format != ssh.KeyAlgoRSASHA512 {
			t.Fatalf("RSA CA signed with %s, want %s", cert.Signature.Format, ssh.KeyAlgoRSASHA512)
		}
	}
}

// countingStore counts reads of SSH keys, one per load of an authority.
type countingStore struct {
	store.Store
	loads atomic.Int32
}

func (s *countingStore) SSHKeys(ctx context.Context, authority string) ([]store.SSHKey, error) {
	s.loads.Add(1)
	return s.Store.SSHKeys(ctx, authority)
}

// TestNoRetryWithoutActiveKey: an authority whose only key is revoked has
// no active key, a permanent conflict; Issue refuses after one load
// instead of loading and failing a second time.
func TestNoRetryWithoutActiveKey(t *testing.T) {
	f := newFixture(t, kms.Options{})
	ctx := context.Background()
	f.authority(t, "users", profile.SSHUser, "file:users.key", kms.Ed25519, "alice")
	keys, err := f.ssh.Keys(ctx, "users")
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %+v, %v", keys, err)
	}
	if _, err := f.ssh.SetKeyState(ctx, "users", keys[0].Fingerprint, store.SSHKeyRevoked, "test"); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: f.store}
	c := sshca.New(sshca.Options{Store: cs, Keys: f.keys})
	pub := sshKey(t, filepath.Join(t.TempDir(), "id"))
	_, err = c.Issue(ctx, sshca.Request{Authority: "users", PublicKey: pub, Principals: []string{"alice"}, Actor: "test"})
	if errs.KindOf(err) != errs.Conflict || !strings.Contains(err.Error(), "no active key") {
		t.Fatalf("Issue without an active key: %v", err)
	}
	if n := cs.loads.Load(); n != 1 {
		t.Errorf("authority loaded %d times, want 1: a permanent conflict was retried", n)
	}
}
