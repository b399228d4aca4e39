package ca_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/errs"
)

// manyRevoked is n entries with distinct 16-byte serials (the high bit of
// some set), revoked before now, with a mix of reasons.
func manyRevoked(n int, now time.Time) []ca.Revoked {
	list := make([]ca.Revoked, n)
	for i := range list {
		s := make([]byte, 16)
		binary.BigEndian.PutUint64(s[8:], uint64(i)*0x9e3779b97f4a7c15)
		s[0] = byte(0x40 + i%0x80)
		list[i] = ca.Revoked{Serial: s, RevokedAt: now.Add(-time.Duration(i+1) * time.Second), Reason: []int{0, 1, 4, 5}[i%4]}
	}
	return list
}

// insert returns list with e inserted at i, list unchanged.
func insert(list []ca.Revoked, i int, e ca.Revoked) []ca.Revoked {
	return slices.Insert(slices.Clone(list), i, e)
}

// crlEvents returns the crl.sign events in the audit log.
func crlEvents(t *testing.T, f *fixture) []audit.Event {
	t.Helper()
	var evs []audit.Event
	if err := f.store.Events(context.Background(), func(e audit.Event) error {
		if e.Kind == audit.KindCRLSign {
			evs = append(evs, e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestCRLLintBeforeSigning: a CRL the lint refuses is never signed by the
// CA key nor recorded, small (linted whole) or large (linted with a sample
// of its entries and its whole structure), whether the bad field comes with
// an entry off the sample's stride or from the prepare step itself.
func TestCRLLintBeforeSigning(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	now := f.now.UTC().Truncate(time.Second)
	future := ca.Revoked{Serial: []byte{0x42, 1, 2, 3}, RevokedAt: now.Add(time.Hour), Reason: 1}
	nonCriticalIDP := func(exts []byte) []byte {
		// The IDP is the last extension: its critical flag, 01 01 ff, drops
		// to DEFAULT FALSE by flipping the value, which DER forbids
		// encoding; so rebuild it non-critical.
		i := bytes.Index(exts, []byte{0x06, 0x03, 0x55, 0x1d, 0x1c, 0x01, 0x01, 0xff})
		if i < 2 {
			t.Fatalf("no critical IDP in %x", exts)
		}
		ext := append([]byte{0x06, 0x03, 0x55, 0x1d, 0x1c}, exts[i+8:]...)
		return append(append(bytes.Clone(exts[:i-2]), 0x30, byte(len(ext))), ext...)
	}
	small, large := manyRevoked(3, now), manyRevoked(3*ca.LintedCRLEntries+7, now)
	tests := []struct {
		name    string
		entries []ca.Revoked
		alter   func([]byte) []byte
		lint    string
	}{
		{"small, revoked after thisUpdate", append(small, future), nil, "e_crl_revocation_time_after_this_update"},
		// Off the sample's stride: the bad entry is the second of many.
		{"large, revoked after thisUpdate", insert(large, 1, future), nil, "e_crl_revocation_time_after_this_update"},
		{"large, revoked before RFC 2459", insert(large, 5, ca.Revoked{Serial: []byte{0x42, 9}, RevokedAt: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)}),
			nil, "e_crl_revocation_date_too_early"},
		{"large, reason code 7", insert(large, 6, ca.Revoked{Serial: []byte{0x42, 8}, RevokedAt: now, Reason: 7}), nil, "e_crl_has_valid_reason_code"},
		{"small, IDP not critical", small, nonCriticalIDP, "e_crl_extensions_validity"},
		{"large, IDP not critical", large, nonCriticalIDP, "e_crl_extensions_validity"},
	}
	for _, tc := range tests {
		f.ca.SetCRLExtensions(tc.alter)
		signs := f.keys.signs.Load()
		_, err := f.ca.SignCRLs(ctx, ca.CRLRequest{Authority: "web", Validity: time.Hour, Shards: []ca.CRLShard{{Shard: 0, Entries: entries(tc.entries...)}}})
		if errs.KindOf(err) != errs.Rejected || !strings.Contains(err.Error(), tc.lint) {
			t.Errorf("%s: err = %v, want a rejection naming %s", tc.name, err, tc.lint)
		}
		if got := f.keys.signs.Load() - signs; got != 0 {
			t.Errorf("%s: the CA key signed %d times", tc.name, got)
		}
	}
	if evs := crlEvents(t, f); len(evs) != 0 {
		t.Errorf("%d refused CRLs were recorded", len(evs))
	}

	// The same CRLs without the bad field are signed once each and recorded.
	f.ca.SetCRLExtensions(nil)
	for _, list := range [][]ca.Revoked{small, large} {
		signs := f.keys.signs.Load()
		signed, err := f.ca.SignCRLs(ctx, ca.CRLRequest{Authority: "web", Validity: time.Hour, Actor: "test",
			Shards: []ca.CRLShard{{Shard: 0, Entries: entries(list...)}}})
		if err != nil {
			t.Fatalf("%d entries: %v", len(list), err)
		}
		if got := f.keys.signs.Load() - signs; got != 1 {
			t.Errorf("%d entries: the CA key signed %d times, want once", len(list), got)
		}
		evs := crlEvents(t, f)
		last := evs[len(evs)-1]
		var data struct {
			Number  int64
			Entries int
			SHA256  string
		}
		json.Unmarshal(last.Data, &data)
		sum := sha256.Sum256(signed[0].DER)
		if last.Subject != signed[0].URL || last.Actor != "test" || last.Authority != "web" ||
			data.Number != signed[0].Number || data.Entries != len(list) || data.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%d entries: recorded %+v %s, signed CRL number %d at %s", len(list), last, last.Data, signed[0].Number, signed[0].URL)
		}
	}
}

// TestCRLEncodingIsGos: the hand-made encoding (kept because
// x509.CreateRevocationList takes 3 s for a million entries, see
// BENCHMARKS.md) writes, for the same input, the very TBSCertList that
// x509.CreateRevocationList writes: shard and whole CRLs, UTCTime and
// GeneralizedTime, reasons, serials with the high bit set.
func TestCRLEncodingIsGos(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.now = time.Date(2051, 3, 4, 5, 6, 7, 0, time.UTC) // GeneralizedTime for the entries after 2049
	list := manyRevoked(50, f.now)
	list = append(list,
		ca.Revoked{Serial: []byte{0xff, 0x01}, RevokedAt: time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC), Reason: 9},
		ca.Revoked{Serial: []byte{0x01}, RevokedAt: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), Reason: 2})
	signed, err := f.ca.SignCRLs(ctx, ca.CRLRequest{Authority: "web", Validity: 7 * 24 * time.Hour, Shards: []ca.CRLShard{
		{Shard: 3, Entries: entries(list...)}, {Shard: ca.WholeCRL, Entries: entries(list...)}, {Shard: 4, Entries: entries()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := f.store.Authority(ctx, "web")
	issuer, _ := x509.ParseCertificate(rec.CertDER)
	key, err := f.keys.kms.Signer(ctx, rec.KeyURI)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range signed {
		ours, err := x509.ParseRevocationList(s.DER)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.RevocationList{Number: ours.Number, ThisUpdate: s.ThisUpdate, NextUpdate: s.NextUpdate}
		if s.Shard != 4 {
			for _, e := range list {
				tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
					SerialNumber: new(bigInt).SetBytes(e.Serial), RevocationTime: e.RevokedAt, ReasonCode: e.Reason})
			}
		}
		for _, e := range ours.Extensions {
			if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 28}) {
				tmpl.ExtraExtensions = []pkix.Extension{e}
			}
		}
		if (s.Shard == ca.WholeCRL) != (len(tmpl.ExtraExtensions) == 0) {
			t.Errorf("shard %d: IDP %v", s.Shard, tmpl.ExtraExtensions)
		}
		gos, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
		if err != nil {
			t.Fatal(err)
		}
		theirs, _ := x509.ParseRevocationList(gos)
		if !bytes.Equal(ours.RawTBSRevocationList, theirs.RawTBSRevocationList) {
			t.Errorf("shard %d: the TBSCertList differs from x509.CreateRevocationList's:\nours   %x\ntheirs %x",
				s.Shard, ours.RawTBSRevocationList, theirs.RawTBSRevocationList)
		}
	}
}
