package lint

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"signet/internal/errs"
	"signet/internal/profile"
)

// TestCRLs signs CRLs with each test key, one good and others that break
// RFC 5280 on purpose, and requires the gate to pass the good ones and
// refuse each bad one, naming the lint.
func TestCRLs(t *testing.T) {
	g := testGate(t)
	if len(g.crlLints) < 10 {
		t.Fatalf("the gate runs %d CRL lints; zlint v3 has about 20", len(g.crlLints))
	}
	now := time.Now().UTC().Truncate(time.Second)
	idp := pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: true,
		Value: []byte{0x30, 0x03, 0x81, 0x01, 0xff}} // onlyContainsUserCerts
	// Good as signet makes them, with what the exclusions allow: a
	// cACompromise entry and a nextUpdate beyond the BRs' 10 days.
	good := func() *x509.RevocationList {
		return &x509.RevocationList{
			Number: big.NewInt(7), ThisUpdate: now, NextUpdate: now.Add(90 * 24 * time.Hour), ExtraExtensions: []pkix.Extension{idp},
			RevokedCertificateEntries: []x509.RevocationListEntry{
				{SerialNumber: nextSerial(), RevocationTime: now.Add(-time.Hour), ReasonCode: 1},
				{SerialNumber: nextSerial(), RevocationTime: now.Add(-time.Minute)},
				{SerialNumber: nextSerial(), RevocationTime: now.Add(-time.Minute), ReasonCode: 2},
			},
		}
	}
	tests := []struct {
		name   string
		mutate func(*x509.RevocationList)
		lint   string
	}{
		{"revoked after thisUpdate", func(l *x509.RevocationList) {
			l.RevokedCertificateEntries[1].RevocationTime = now.Add(time.Hour)
		}, "e_crl_revocation_time_after_this_update"},
		{"reason code outside RFC 5280", func(l *x509.RevocationList) { l.RevokedCertificateEntries[0].ReasonCode = 7 }, "e_crl_has_valid_reason_code"},
		{"revoked before RFC 2459", func(l *x509.RevocationList) {
			l.RevokedCertificateEntries[0].RevocationTime = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
		}, "e_crl_revocation_date_too_early"},
		{"IDP not critical", func(l *x509.RevocationList) { l.ExtraExtensions[0].Critical = false }, "e_crl_extensions_validity"},
	}
	for _, k := range keys(t) {
		ch := newChain(t, profile.TLSServer, k.key, now)
		sign := func(l *x509.RevocationList) []byte {
			der, err := x509.CreateRevocationList(rand.Reader, l, ch.issuer, ch.issuerKey)
			if err != nil {
				t.Fatal(err)
			}
			return der
		}
		if err := g.CheckCRL(sign(good())); err != nil {
			t.Errorf("%s: good CRL: %v", k.name, err)
		}
		for _, tc := range tests {
			l := good()
			tc.mutate(l)
			err := g.CheckCRL(sign(l))
			var fs Findings
			if errs.KindOf(err) != errs.Rejected || !errors.As(err, &fs) || !strings.Contains(err.Error(), tc.lint) {
				t.Errorf("%s: %s: err = %v, want a rejection naming %s", k.name, tc.name, err, tc.lint)
			}
		}
	}
	if err := g.CheckCRL([]byte("not a CRL")); errs.KindOf(err) != errs.Rejected {
		t.Errorf("garbage: %v", err)
	}
}
