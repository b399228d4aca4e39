package sqlstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// TestVerifyCatchesRowEdits edits, behind the store's back, rows the log
// records: each edit makes audit.Verify name the row and the columns that
// differ from the newest event recording it, on every database.
func TestVerifyCatchesRowEdits(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		edit   string
		table  string
		key    string
		fields []string
	}{
		{"un-revoke", "UPDATE certificates SET status = 'valid', revoked_at = NULL, reason = 0 WHERE serial = '0a'",
			"certificates", "0a", []string{"status", "revoked_at", "reason"}},
		{"swap DER", "UPDATE certificates SET der = (SELECT der FROM certificates WHERE serial = '0a') WHERE serial = '0b'",
			"certificates", "0b", []string{"der"}},
		{"authority key", "UPDATE authorities SET key_uri = 'pkcs11:object=mallory' WHERE name = 'ca'",
			"authorities", "ca", []string{"key_uri"}},
		{"SSH CA key state", "UPDATE ssh_authority_keys SET state = 'revoked' WHERE fingerprint = 'SHA256:old'",
			"ssh_authority_keys", "ssh/SHA256:old", []string{"state"}},
		{"SSH certificate", "UPDATE ssh_certificates SET status = 'valid', revoked_at = NULL, revoked_by = NULL WHERE serial = 5",
			"ssh_certificates", "5", []string{"status", "revoked_at", "revoked_by"}},
		{"unrecorded EAB key", "INSERT INTO acme_eab_keys (kid, authority, sealed, created_at) SELECT 'kid', 'ca', der, 0 FROM certificates WHERE serial = '0a'",
			"acme_eab_keys", "kid", nil},
		{"operator role", "UPDATE operators SET role = 'admin' WHERE name = 'vera'",
			"operators", "vera", []string{"role"}},
		{"operator token", "UPDATE operators SET token_hash = (SELECT der FROM certificates WHERE serial = '0a') WHERE name = 'vera'",
			"operators", "vera", []string{"token_hash"}},
		{"removed operator back", "UPDATE operators SET removed_at = NULL WHERE name = 'otto'",
			"operators", "otto", []string{"removed_at"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			onEach(t, func(t *testing.T, b backend, where string) {
				s := b.open(t, where)
				ev := audit.Event{Actor: "test"}
				must := func(err error) {
					t.Helper()
					if err != nil {
						t.Fatal(err)
					}
				}
				must(s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "pkcs11:object=ca", CertDER: []byte{0x30}}, ev))
				for _, serial := range []string{"0a", "0b"} {
					must(s.RecordCertificate(ctx, store.Certificate{Serial: serial, Authority: "ca", DNSNames: []string{serial + ".example.org"},
						NotBefore: t0, NotAfter: t0.Add(time.Hour), DER: []byte{0x30, serial[1]}}, ev))
				}
				must(s.Revoke(ctx, "0a", t0, 1, ev))
				must(s.CreateSSHAuthority(ctx, store.Authority{Name: "ssh", Purpose: "ssh-user", KeyURI: "pkcs11:object=ssh"},
					store.SSHKey{Authority: "ssh", Fingerprint: "SHA256:old", KeyURI: "pkcs11:object=ssh", PublicKey: "ssh-ed25519 AAAA", State: store.SSHKeyActive}, ev))
				must(s.AddSSHKey(ctx, store.SSHKey{Authority: "ssh", Fingerprint: "SHA256:new", KeyURI: "pkcs11:object=ssh2",
					PublicKey: "ssh-ed25519 BBBB", State: store.SSHKeyActive}, ev))
				must(s.RecordSSHCertificate(ctx, store.SSHCertificate{Serial: 5, Authority: "ssh", CAFingerprint: "SHA256:new", KeyID: "alice",
					Type: "user", Principals: []string{"alice"}, ValidAfter: t0, ValidBefore: t0.Add(time.Hour), Cert: []byte("cert")}, ev))
				_, err := s.RevokeSSHKeyID(ctx, "ssh", "alice", t0, ev)
				must(err)
				must(s.AddOperator(ctx, store.Operator{Name: "vera", Role: store.RoleViewer, TokenHash: make([]byte, 32)}, ev))
				must(s.AddOperator(ctx, store.Operator{Name: "otto", Role: store.RoleOperator, TokenHash: append(make([]byte, 31), 1)}, ev))
				must(s.RemoveOperator(ctx, "otto", ev))
				if rep, err := audit.Verify(ctx, s); err != nil || rep.Rows != 9 {
					t.Fatalf("audit.Verify before the edit: %+v, %v; want intact, 9 rows", rep, err)
				}
				s.Close()
				b.exec(t, where, tc.edit)
				rep, err := audit.Verify(ctx, b.open(t, where))
				if errs.KindOf(err) != errs.Rejected || len(rep.RowProblems) != 1 || rep.RowProblemCount != 1 {
					t.Fatalf("audit.Verify after %q: %+v, %v; want one row problem", tc.edit, rep, err)
				}
				p := rep.RowProblems[0]
				if p.Table != tc.table || p.Key != tc.key || !slices.Equal(p.Fields, tc.fields) {
					t.Errorf("row problem %+v; want %s %s, fields %v", p, tc.table, tc.key, tc.fields)
				}
				var rejected *errs.Error
				if !errors.As(err, &rejected) {
					t.Errorf("error %v is not signet's", err)
				}
			})
		})
	}
}
