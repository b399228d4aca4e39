package storetest

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

func sshAuthority(t *testing.T, s store.Store, name string) store.SSHKey {
	t.Helper()
	a := store.Authority{Name: name, Purpose: "ssh-user", KeyURI: "file:keys/" + name + ".key",
		Policy: json.RawMessage(`{"principals":["alice"]}`), DefaultValidity: time.Hour, MaxValidity: 24 * time.Hour, CreatedAt: t0}
	k := sshKey(name, "one", "")
	if err := s.CreateSSHAuthority(ctx, a, k, audit.Event{Actor: "cli"}); err != nil {
		t.Fatalf("create SSH authority %s: %v", name, err)
	}
	got, err := s.Authority(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	sameAuthority(t, got, a)
	k.Authority, k.State = name, store.SSHKeyActive
	return k
}

func sshKey(authority, fp string, state store.SSHKeyState) store.SSHKey {
	return store.SSHKey{Authority: authority, Fingerprint: "SHA256:" + fp, KeyURI: "file:keys/" + fp + ".key",
		PublicKey: "ssh-ed25519 AAAA" + fp, State: state, CreatedAt: t0}
}

// keyStates lists an authority's keys as SSHKeys returns them (oldest
// first), each as "fingerprint=state" without the "SHA256:".
func keyStates(t *testing.T, s store.Store, authority string) []string {
	t.Helper()
	keys, err := s.SSHKeys(ctx, authority)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		out = append(out, k.Fingerprint[len("SHA256:"):]+"="+string(k.State))
	}
	return out
}

func testSSHKeys(t *testing.T, s store.Store) {
	first := sshAuthority(t, s, "users")
	keys, err := s.SSHKeys(ctx, "users")
	if err != nil || len(keys) != 1 {
		t.Fatalf("SSHKeys: %v, %v", keys, err)
	}
	if k := keys[0]; k.Fingerprint != first.Fingerprint || k.KeyURI != first.KeyURI || k.PublicKey != first.PublicKey ||
		k.State != first.State || !k.CreatedAt.Equal(first.CreatedAt) || k.Authority != first.Authority {
		t.Errorf("key\n got %+v\nwant %+v", k, first)
	}
	wantKind(t, s.CreateSSHAuthority(ctx, store.Authority{Name: "users", Purpose: "ssh-user", KeyURI: "x"}, sshKey("", "x", ""), audit.Event{}),
		errs.Conflict, "authority twice")

	// A trusted key joins without taking over; an active one demotes the
	// signer. Keys list oldest first, whatever their fingerprints' order.
	two, three := sshKey("users", "two", store.SSHKeyTrusted), sshKey("users", "three", store.SSHKeyActive)
	two.CreatedAt, three.CreatedAt = t0.Add(time.Minute), t0.Add(2*time.Minute)
	if err := s.AddSSHKey(ctx, three, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSSHKey(ctx, two, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"one=trusted", "two=trusted", "three=active"}
	if got := keyStates(t, s, "users"); !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	wantKind(t, s.AddSSHKey(ctx, sshKey("users", "two", store.SSHKeyTrusted), audit.Event{}), errs.Conflict, "key twice")
	wantKind(t, s.AddSSHKey(ctx, sshKey("nobody", "four", store.SSHKeyTrusted), audit.Event{}), errs.NotFound, "unknown authority")
	wantKind(t, s.AddSSHKey(ctx, sshKey("users", "four", "sleeping"), audit.Event{}), errs.Malformed, "unknown state")

	if err := s.SetSSHKeyState(ctx, "users", "SHA256:two", store.SSHKeyActive, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSSHKeyState(ctx, "users", "SHA256:one", store.SSHKeyRetired, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSSHKeyState(ctx, "users", "SHA256:three", store.SSHKeyRevoked, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	want = []string{"one=retired", "two=active", "three=revoked"}
	if got := keyStates(t, s, "users"); !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	wantKind(t, s.SetSSHKeyState(ctx, "users", "SHA256:two", store.SSHKeyActive, audit.Event{}), errs.Conflict, "same state")
	wantKind(t, s.SetSSHKeyState(ctx, "users", "SHA256:three", store.SSHKeyTrusted, audit.Event{}), errs.Conflict, "unrevoke")
	wantKind(t, s.SetSSHKeyState(ctx, "users", "SHA256:nine", store.SSHKeyRetired, audit.Event{}), errs.NotFound, "unknown key")

	evs := checkChain(t, s)
	kinds := make([]string, len(evs))
	for i, e := range evs {
		kinds[i] = e.Kind
	}
	wantKinds := []string{audit.KindAuthorityCreate, audit.KindSSHKeyAdd, audit.KindSSHKeyAdd,
		audit.KindSSHKeyState, audit.KindSSHKeyState, audit.KindSSHKeyState}
	if !slices.Equal(kinds, wantKinds) {
		t.Errorf("events %v, want %v", kinds, wantKinds)
	}
	if e := evs[3]; e.Subject != "SHA256:two" || e.Authority != "users" {
		t.Errorf("state event %+v", e)
	}
	wantKind(t, s.AppendEvent(ctx, audit.Event{Kind: audit.KindSSHCertificateIssue, Subject: "ssh:1"}), errs.Malformed, "forged SSH issue event")
}

func sshCert(serial uint64, authority, fp, keyID string) store.SSHCertificate {
	return store.SSHCertificate{
		Serial: serial, Authority: authority, CAFingerprint: "SHA256:" + fp, KeyID: keyID, Type: store.SSHUserCert,
		Principals: []string{"alice", "root"}, ValidAfter: t0, ValidBefore: t0.Add(time.Hour), Status: store.Valid,
		Requester: "cli", Cert: bytes.Repeat([]byte{byte(serial)}, 200),
	}
}

func sameSSHCert(t *testing.T, got, want store.SSHCertificate) {
	t.Helper()
	ok := got.Serial == want.Serial && got.Authority == want.Authority && got.CAFingerprint == want.CAFingerprint &&
		got.KeyID == want.KeyID && got.Type == want.Type && slices.Equal(got.Principals, want.Principals) &&
		got.ValidAfter.Equal(want.ValidAfter) && got.ValidBefore.Equal(want.ValidBefore) && got.Status == want.Status &&
		got.RevokedAt.Equal(want.RevokedAt) && got.RevokedBy == want.RevokedBy && got.Requester == want.Requester &&
		bytes.Equal(got.Cert, want.Cert)
	if !ok {
		t.Errorf("SSH certificate\n got %+v\nwant %+v", got, want)
	}
}

func testSSHCertificates(t *testing.T, s store.Store) {
	sshAuthority(t, s, "users")
	mustAuthority(t, s, "web", "")
	mustRecord(t, s, cert("0a", "web", 1)) // an X.509 certificate between SSH ones, for Verify's merge
	big := uint64(math.MaxInt64)
	for _, c := range []store.SSHCertificate{sshCert(10, "users", "one", "alice"), sshCert(big, "users", "one", "alice"), sshCert(7, "users", "one", "bob")} {
		if err := s.RecordSSHCertificate(ctx, c, audit.Event{Actor: "cli"}); err != nil {
			t.Fatalf("record %d: %v", c.Serial, err)
		}
	}
	got, err := s.SSHCertificate(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	sameSSHCert(t, got, sshCert(big, "users", "one", "alice"))
	_, err = s.SSHCertificate(ctx, 11)
	wantKind(t, err, errs.NotFound, "unknown serial")

	wantKind(t, s.RecordSSHCertificate(ctx, sshCert(10, "users", "one", "x"), audit.Event{}), errs.Conflict, "duplicate serial")
	wantKind(t, s.RecordSSHCertificate(ctx, sshCert(0, "users", "one", "x"), audit.Event{}), errs.Malformed, "serial 0")
	wantKind(t, s.RecordSSHCertificate(ctx, sshCert(big+1, "users", "one", "x"), audit.Event{}), errs.Malformed, "serial 2^63")
	wantKind(t, s.RecordSSHCertificate(ctx, sshCert(12, "users", "nokey", "x"), audit.Event{}), errs.NotFound, "unknown CA key")
	// A key that stopped being active between signing and recording: the
	// certificate is refused, so it is never handed out.
	if err := s.AddSSHKey(ctx, sshKey("users", "two", store.SSHKeyActive), audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.RecordSSHCertificate(ctx, sshCert(13, "users", "one", "x"), audit.Event{}), errs.Conflict, "inactive CA key")

	list, err := s.SSHCertificates(ctx, store.SSHFilter{Authority: "users", KeyID: "alice"})
	if err != nil || len(list) != 2 || list[0].Serial != 10 || list[1].Serial != big {
		t.Fatalf("by key ID: %+v, %v", list, err)
	}
	if list, _ := s.SSHCertificates(ctx, store.SSHFilter{Limit: 1}); len(list) != 1 || list[0].Serial != 7 {
		t.Errorf("limit 1: %+v", list)
	}

	at := t0.Add(time.Minute)
	if err := s.RevokeSSHCertificate(ctx, 7, at, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.RevokeSSHCertificate(ctx, 7, at, audit.Event{}), errs.Conflict, "revoked twice")
	wantKind(t, s.RevokeSSHCertificate(ctx, 99, at, audit.Event{}), errs.NotFound, "unknown serial")
	// A caller acting for one authority may not revoke another's certificate.
	wantKind(t, s.RevokeSSHCertificate(ctx, 10, at, audit.Event{Authority: "web"}), errs.NotFound, "another authority's certificate")
	n, err := s.RevokeSSHKeyID(ctx, "users", "alice", at, audit.Event{Actor: "cli"})
	if err != nil || n != 2 {
		t.Fatalf("revoke key ID: %d, %v", n, err)
	}
	_, err = s.RevokeSSHKeyID(ctx, "users", "alice", at, audit.Event{})
	wantKind(t, err, errs.Conflict, "key ID twice")
	_, err = s.RevokeSSHKeyID(ctx, "users", "carol", at, audit.Event{})
	wantKind(t, err, errs.NotFound, "unknown key ID")
	// The KRL now refuses every certificate with key ID alice: none is
	// recorded as valid, whichever CA key signed it. A serial revocation
	// (bob's) leaves its key ID free.
	wantKind(t, s.RecordSSHCertificate(ctx, sshCert(14, "users", "two", "alice"), audit.Event{}), errs.Rejected, "revoked key ID")
	if err := s.RecordSSHCertificate(ctx, sshCert(15, "users", "two", "bob"), audit.Event{Actor: "cli"}); err != nil {
		t.Fatalf("key ID of a certificate revoked by serial: %v", err)
	}
	if list, _ := s.SSHCertificates(ctx, store.SSHFilter{KeyID: "alice", Status: store.Valid}); len(list) != 0 {
		t.Errorf("valid certificates with a revoked key ID: %+v", list)
	}
	revoked, err := s.SSHCertificates(ctx, store.SSHFilter{Status: store.Revoked})
	if err != nil || len(revoked) != 3 {
		t.Fatalf("revoked: %+v, %v", revoked, err)
	}
	want := sshCert(7, "users", "one", "bob")
	want.Status, want.RevokedAt, want.RevokedBy = store.Revoked, at, store.RevokedBySerial
	sameSSHCert(t, revoked[0], want)
	if revoked[1].RevokedBy != store.RevokedByKeyID {
		t.Errorf("revoked by %q, want key-id", revoked[1].RevokedBy)
	}

	evs := checkChain(t, s)
	rep, _ := audit.Verify(ctx, s)
	if rep.Certificates != 5 {
		t.Errorf("Verify cross-checked %d certificates, want 5 (1 X.509, 4 SSH)", rep.Certificates)
	}
	var issue, revoke int
	for _, e := range evs {
		switch e.Kind {
		case audit.KindSSHCertificateIssue:
			issue++
			if e.Authority != "users" || e.Subject[:4] != "ssh:" {
				t.Errorf("issue event %+v", e)
			}
		case audit.KindSSHCertificateRevoke:
			revoke++
		}
	}
	if issue != 4 || revoke != 2 {
		t.Errorf("%d issue and %d revoke events, want 4 and 2", issue, revoke)
	}
}

// KeyIDRevokedEarlier records what a store made by an earlier version may
// hold: key ID alice revoked (serial 1), then a certificate issued with it
// anyway and recorded as valid (serial 3), and one with key ID bob (serial
// 4). The store refuses serial 3 today, so it is recorded with key ID
// "later": the backend's test then sets its key ID to alice directly and
// rewinds its schema to before the migration that repairs such rows.
func KeyIDRevokedEarlier(t *testing.T, s store.Store) {
	t.Helper()
	sshAuthority(t, s, "users")
	for _, c := range []store.SSHCertificate{sshCert(1, "users", "one", "alice"), sshCert(3, "users", "one", "later"), sshCert(4, "users", "one", "bob")} {
		if c.Serial == 3 {
			if _, err := s.RevokeSSHKeyID(ctx, "users", "alice", t0.Add(time.Minute), audit.Event{Actor: "cli"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordSSHCertificate(ctx, c, audit.Event{Actor: "cli"}); err != nil {
			t.Fatalf("record %d: %v", c.Serial, err)
		}
	}
}

// CheckKeyIDRevokedEarlier checks that the migration marked serial 3 revoked
// by its key ID, as of the key ID's revocation, and left bob's alone; and
// that the key ID stays refused.
func CheckKeyIDRevokedEarlier(t *testing.T, s store.Store) {
	t.Helper()
	got, err := s.SSHCertificate(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := sshCert(3, "users", "one", "alice")
	want.Status, want.RevokedAt, want.RevokedBy = store.Revoked, t0.Add(time.Minute), store.RevokedByKeyID
	sameSSHCert(t, got, want)
	if bob, err := s.SSHCertificate(ctx, 4); err != nil || bob.Status != store.Valid {
		t.Errorf("bob's certificate after the migration: %+v, %v", bob, err)
	}
	wantKind(t, s.RecordSSHCertificate(ctx, sshCert(5, "users", "one", "alice"), audit.Event{}), errs.Rejected, "revoked key ID after the migration")
}
