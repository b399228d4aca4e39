package sshca_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"signet/internal/audit"
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
		if e.Kind == "ssh.certificate.discard" {
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
