package storetest

import (
	"testing"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// testSetKeyURI: a key URI is rewritten in authorities and SSH CA keys
// alike, with its event, and a rewrite that matches nothing changes nothing.
func testSetKeyURI(t *testing.T, s store.Store) {
	a := mustAuthority(t, s, "root", "")
	k := sshAuthority(t, s, "users") // authority and first key: file:keys/users.key, file:keys/one.key
	old := "pkcs11:token=ca;object=root?module-path=/usr/lib/p11.so"
	_, err := s.SetKeyURI(ctx, a.KeyURI, old, audit.Event{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.SetKeyURI(ctx, old, "pkcs11:token=ca;object=root", audit.Event{Actor: "signet", Data: []byte(`{"module":"/usr/lib/p11.so"}`)})
	if err != nil || n != 1 {
		t.Fatalf("SetKeyURI: %d rows, %v; want 1", n, err)
	}
	if got, _ := s.Authority(ctx, "root"); got.KeyURI != "pkcs11:token=ca;object=root" {
		t.Errorf("authority key URI %q after the rewrite", got.KeyURI)
	}
	if n, err := s.SetKeyURI(ctx, k.KeyURI, "file:keys/one-moved.key", audit.Event{Actor: "signet"}); err != nil || n != 1 {
		t.Fatalf("SetKeyURI of an SSH CA key: %d rows, %v; want 1", n, err)
	}
	keys, err := s.SSHKeys(ctx, "users")
	if err != nil || len(keys) != 1 || keys[0].KeyURI != "file:keys/one-moved.key" || keys[0].State != store.SSHKeyActive {
		t.Errorf("SSH keys after the rewrite: %+v, %v", keys, err)
	}

	before := len(events(t, s))
	_, err = s.SetKeyURI(ctx, "pkcs11:token=nowhere", "pkcs11:token=x", audit.Event{Actor: "signet"})
	wantKind(t, err, errs.NotFound, "rewrite of an unknown URI")
	_, err = s.SetKeyURI(ctx, "file:keys/users.key", "file:keys/users.key", audit.Event{Actor: "signet"})
	wantKind(t, err, errs.Malformed, "rewrite to the same URI")
	wantKind(t, s.AppendEvent(ctx, audit.Event{Kind: audit.KindKeyURIRewrite, Actor: "x"}), errs.Malformed, "AppendEvent of a key.uri.rewrite")
	evs := checkChain(t, s)
	if len(evs) != before {
		t.Fatalf("%d events after refused rewrites, want %d", len(evs), before)
	}
	last := evs[len(evs)-1]
	if last.Kind != audit.KindKeyURIRewrite || last.Subject != "file:keys/one-moved.key" || last.Actor != "signet" {
		t.Errorf("last event %+v, want the key.uri.rewrite of the SSH key", last)
	}
	if e := evs[len(evs)-2]; e.Kind != audit.KindKeyURIRewrite || string(e.Data) != `{"module":"/usr/lib/p11.so"}` {
		t.Errorf("event %+v, want the key.uri.rewrite with its data", e)
	}
}
