package ca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"io"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/policy"
	"signet/internal/profile"
)

func entries(list ...ca.Revoked) func(func(ca.Revoked) bool) {
	return slices.Values(list)
}

func TestSignCRLs(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	iss, err := f.ca.Issue(ctx, ca.Request{Authority: "web", PublicKey: newKey(t).Public(), DNSNames: []string{"a.example.org"}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(iss.DER)
	authority, _ := x509.ParseCertificate(iss.Chain[0])
	shard := ca.ShardOf(leaf.SerialNumber, ca.DefaultShards)
	if want := ca.CRLURL(ca.DefaultBaseURL, "web", shard); !slices.Equal(leaf.CRLDistributionPoints, []string{want}) {
		t.Errorf("CDP %v, want %s", leaf.CRLDistributionPoints, want)
	}
	if !slices.Equal(leaf.OCSPServer, []string{"http://127.0.0.1:8080/ocsp/web"}) ||
		!slices.Equal(leaf.IssuingCertificateURL, []string{"http://127.0.0.1:8080/ca/web.crt"}) {
		t.Errorf("AIA %v %v", leaf.OCSPServer, leaf.IssuingCertificateURL)
	}
	if !slices.Equal(authority.CRLDistributionPoints, []string{"http://127.0.0.1:8080/crl/root/0.crl"}) {
		t.Errorf("authority CDP %v", authority.CRLDistributionPoints)
	}

	revokedAt := time.Date(2051, 1, 2, 3, 4, 5, 0, time.UTC) // GeneralizedTime
	big := []byte{0xff, 0x01, 0x02}                          // needs a leading zero octet
	signs := f.keys.signs.Load()
	issuedAt := f.now
	f.now = revokedAt.Add(time.Hour) // a CRL lists no revocation after its thisUpdate
	crls, err := f.ca.SignCRLs(ctx, ca.CRLRequest{Authority: "web", Validity: 24 * time.Hour, Shards: []ca.CRLShard{
		{Shard: shard, Entries: entries(
			ca.Revoked{Serial: leaf.SerialNumber.Bytes(), RevokedAt: issuedAt, Reason: 1},
			ca.Revoked{Serial: big, RevokedAt: revokedAt},
		)},
		{Shard: (shard + 1) % ca.DefaultShards, Entries: entries()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.keys.signs.Load() - signs; got != 2 {
		t.Errorf("%d CA signatures for 2 CRLs", got)
	}
	for i, c := range crls {
		l, err := x509.ParseRevocationList(c.DER)
		if err != nil {
			t.Fatalf("shard %d: %v", c.Shard, err)
		}
		if err := l.CheckSignatureFrom(authority); err != nil {
			t.Errorf("shard %d: signature: %v", c.Shard, err)
		}
		if l.Number.Int64() != 1 || c.Number != 1 || !slices.Equal(l.AuthorityKeyId, authority.SubjectKeyId) {
			t.Errorf("shard %d: number %v, AKI %x", c.Shard, l.Number, l.AuthorityKeyId)
		}
		if !l.ThisUpdate.Equal(c.ThisUpdate) || l.NextUpdate.Sub(l.ThisUpdate) != 24*time.Hour {
			t.Errorf("shard %d: thisUpdate %v nextUpdate %v", c.Shard, l.ThisUpdate, l.NextUpdate)
		}
		var idp []byte
		for _, e := range l.Extensions {
			if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 28}) {
				if !e.Critical {
					t.Errorf("shard %d: IDP not critical", c.Shard)
				}
				idp = e.Value
			}
		}
		var parsed struct {
			DP struct {
				FullName []asn1.RawValue `asn1:"optional,tag:0"`
			} `asn1:"optional,tag:0"`
			OnlyUser bool `asn1:"optional,tag:1"`
		}
		if _, err := asn1.Unmarshal(idp, &parsed); err != nil || len(parsed.DP.FullName) != 1 ||
			string(parsed.DP.FullName[0].Bytes) != ca.CRLURL(ca.DefaultBaseURL, "web", c.Shard) || !parsed.OnlyUser {
			t.Errorf("shard %d: IDP %x: %+v %v", c.Shard, idp, parsed, err)
		}
		if i == 1 {
			if len(l.RevokedCertificateEntries) != 0 {
				t.Errorf("empty shard lists %d", len(l.RevokedCertificateEntries))
			}
			continue
		}
		if got := l.RevokedCertificateEntries; len(got) != 2 || got[0].SerialNumber.Cmp(leaf.SerialNumber) != 0 ||
			got[0].ReasonCode != 1 || !got[0].RevocationTime.Equal(issuedAt.UTC().Truncate(time.Second)) ||
			got[1].SerialNumber.Cmp(new(bigInt).SetBytes(big)) != 0 || !got[1].RevocationTime.Equal(revokedAt) || got[1].ReasonCode != 0 {
			t.Errorf("entries %+v", got)
		}
	}
	again, err := f.ca.SignCRLs(ctx, ca.CRLRequest{Authority: "web", Validity: time.Hour, Shards: []ca.CRLShard{{Shard: shard, Entries: entries()}}})
	if err != nil || again[0].Number != 2 {
		t.Errorf("second CRL of the shard: %v, %v; want number 2", again, err)
	}
	if _, err := f.ca.SignCRLs(ctx, ca.CRLRequest{Authority: "web", Validity: time.Hour, Shards: []ca.CRLShard{{Shard: 99, Entries: entries()}}}); err == nil {
		t.Error("a shard beyond the authority's count was signed")
	}
}

type bigInt = big.Int

func TestOCSPResponder(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	iss, err := f.ca.Issue(ctx, ca.Request{Authority: "web", PublicKey: newKey(t).Public(), DNSNames: []string{"a.example.org"}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(iss.DER)
	authority, _ := x509.ParseCertificate(iss.Chain[0])
	signer, err := f.ca.IssueOCSPResponder(ctx, "web", 4*24*time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.Cert.CheckSignatureFrom(authority); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(signer.Cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) {
		t.Errorf("EKU %v", signer.Cert.ExtKeyUsage)
	}
	nocheck := false
	for _, e := range signer.Cert.Extensions {
		nocheck = nocheck || e.Id.Equal(profile.OIDOCSPNoCheck)
	}
	if !nocheck {
		t.Error("no id-pkix-ocsp-nocheck")
	}
	if _, err := f.store.Certificate(ctx, ca.Serial(signer.Cert.SerialNumber)); err != nil {
		t.Errorf("responder certificate not recorded: %v", err)
	}
	signs := f.keys.signs.Load()
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		der, err := signer.Respond(ca.OCSPStatus{Serial: leaf.SerialNumber, Hash: h, Status: ocsp.Revoked, RevokedAt: f.now.Truncate(time.Second),
			Reason: 4, ThisUpdate: f.now.Truncate(time.Second), NextUpdate: f.now.Add(30 * 24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		r, err := ocsp.ParseResponseForCert(der, leaf, authority)
		if err != nil {
			t.Fatalf("%v: %v", h, err)
		}
		if r.Status != ocsp.Revoked || r.RevocationReason != 4 || r.IssuerHash != h || !r.NextUpdate.Equal(signer.Cert.NotAfter) {
			t.Errorf("%v: %+v", h, r)
		}
	}
	if f.keys.signs.Load() != signs {
		t.Error("responses were signed by the CA key")
	}
}

// faultyKeys returns signers whose signatures do not verify, like a token
// with a hardware fault.
type faultyKeys struct{ *countingKeys }

type faultySigner struct{ crypto.Signer }

func (s faultySigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	sig, err := s.Signer.Sign(r, d, o)
	if err == nil {
		sig = bytes.Clone(sig)
		sig[len(sig)-1] ^= 1
	}
	return sig, err
}

func (k faultyKeys) Signer(ctx context.Context, uri string) (crypto.Signer, error) {
	s, err := k.countingKeys.Signer(ctx, uri)
	return faultySigner{s}, err
}

// TestCRLSignatureCheck: CRLs are signed like certificates: a key outside
// this process has its signatures checked, one of Go's own does not.
func TestCRLSignatureCheck(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	c := ca.New(ca.Options{Store: f.store, Keys: faultyKeys{f.keys}, Lint: lintGate(t), Clock: func() time.Time { return f.now }})
	req := ca.CRLRequest{Authority: "web", Validity: time.Hour, Shards: []ca.CRLShard{{Shard: 0, Entries: entries()}}}
	if _, err := c.SignCRLs(ctx, req); errs.KindOf(err) != errs.Internal || !strings.Contains(err.Error(), "invalid") {
		t.Fatalf("a faulty token's CRL signature: got %v, want it refused", err)
	}
	if err := c.SetVerify(ctx, "web", false); err != nil {
		t.Fatal(err)
	}
	signed, err := c.SignCRLs(ctx, req)
	if err != nil {
		t.Fatalf("a key trusted to sign correctly had its CRL signature checked: %v", err)
	}
	l, err := x509.ParseRevocationList(signed[0].DER)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := f.store.Authority(ctx, "web")
	issuer, _ := x509.ParseCertificate(root.CertDER)
	if l.CheckSignatureFrom(issuer) == nil {
		t.Error("the faulty signature verifies")
	}
}

// TestAuthorityBaseURLAndShards: an authority's own base URL and shard
// count reach everything relying parties follow: the leaf's CDP and AIA,
// and the IDP of each shard's CRL.
func TestAuthorityBaseURLAndShards(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	const base = "http://crl.example"
	if _, err := f.keys.kms.Generate(ctx, "file:own.key", kms.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ca.CreateAuthority(ctx, ca.AuthoritySpec{
		Name: "own", Purpose: profile.TLSServer, KeyURI: "file:own.key", Actor: "test",
		Policy: policy.Policy{DNS: []string{"example.org"}}, BaseURL: base, Shards: 4,
	}); err != nil {
		t.Fatal(err)
	}
	shards := map[int]bool{}
	for range 12 {
		iss, err := f.ca.Issue(ctx, ca.Request{Authority: "own", PublicKey: newKey(t).Public(), DNSNames: []string{"a.example.org"}, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(iss.DER)
		shard := ca.ShardOf(leaf.SerialNumber, 4)
		shards[shard] = true
		if want := ca.CRLURL(base, "own", shard); !slices.Equal(leaf.CRLDistributionPoints, []string{want}) {
			t.Errorf("CDP %v, want %s", leaf.CRLDistributionPoints, want)
		}
		if !slices.Equal(leaf.OCSPServer, []string{base + "/ocsp/own"}) || !slices.Equal(leaf.IssuingCertificateURL, []string{base + "/ca/own.crt"}) {
			t.Errorf("AIA %v %v", leaf.OCSPServer, leaf.IssuingCertificateURL)
		}
	}
	for s := range shards {
		if s < 0 || s >= 4 {
			t.Errorf("a leaf in shard %d of 4", s)
		}
	}
	req := ca.CRLRequest{Authority: "own", Validity: time.Hour}
	for s := range 4 {
		req.Shards = append(req.Shards, ca.CRLShard{Shard: s, Entries: entries()})
	}
	crls, err := f.ca.SignCRLs(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(crls) != 4 {
		t.Fatalf("%d CRLs for 4 shards", len(crls))
	}
	for _, c := range crls {
		want := ca.CRLURL(base, "own", c.Shard)
		if c.URL != want {
			t.Errorf("shard %d: URL %s, want %s", c.Shard, c.URL, want)
		}
		l, err := x509.ParseRevocationList(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		var idp struct {
			DP struct {
				FullName []asn1.RawValue `asn1:"optional,tag:0"`
			} `asn1:"optional,tag:0"`
		}
		found := false
		for _, e := range l.Extensions {
			if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 28}) {
				found = true
				if _, err := asn1.Unmarshal(e.Value, &idp); err != nil || len(idp.DP.FullName) != 1 || string(idp.DP.FullName[0].Bytes) != want {
					t.Errorf("shard %d: IDP %x, want %s (%v)", c.Shard, e.Value, want, err)
				}
			}
		}
		if !found {
			t.Errorf("shard %d: no IDP", c.Shard)
		}
	}
	req.Shards = []ca.CRLShard{{Shard: 4, Entries: entries()}}
	if _, err := f.ca.SignCRLs(ctx, req); errs.KindOf(err) != errs.Malformed {
		t.Errorf("shard 4 of 4: got %v, want it refused", err)
	}
}

// TestWholeCRL: the whole CRL lists what it is given, has no IDP, numbers
// of its own (not shard 0's) and its own URL; leaves of a one-shard
// authority name it as their CDP.
func TestWholeCRL(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	const base = "http://crl.example"
	if _, err := f.keys.kms.Generate(ctx, "file:one.key", kms.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	rec, err := f.ca.CreateAuthority(ctx, ca.AuthoritySpec{
		Name: "one", Purpose: profile.TLSServer, KeyURI: "file:one.key", Actor: "test",
		Policy: policy.Policy{DNS: []string{"example.org"}}, BaseURL: base, Shards: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	issuer, _ := x509.ParseCertificate(rec.CertDER)
	iss, err := f.ca.Issue(ctx, ca.Request{Authority: "one", PublicKey: newKey(t).Public(), DNSNames: []string{"a.example.org"}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(iss.DER)
	if want := ca.WholeCRLURL(base, "one"); want != base+"/crl/one.crl" || !slices.Equal(leaf.CRLDistributionPoints, []string{want}) {
		t.Errorf("one-shard leaf CDP %v, want %s", leaf.CRLDistributionPoints, want)
	}

	sign := func(shard int, list ...ca.Revoked) ca.SignedCRL {
		t.Helper()
		crls, err := f.ca.SignCRLs(ctx, ca.CRLRequest{Authority: "one", Validity: time.Hour, Shards: []ca.CRLShard{{Shard: shard, Entries: entries(list...)}}})
		if err != nil || len(crls) != 1 {
			t.Fatalf("shard %d: %v", shard, err)
		}
		return crls[0]
	}
	sign(0)
	sign(0)
	e := ca.Revoked{Serial: leaf.SerialNumber.Bytes(), RevokedAt: f.now, Reason: 1}
	whole := sign(ca.WholeCRL, e)
	if whole.Number != 1 || whole.URL != ca.WholeCRLURL(base, "one") || whole.Entries != 1 {
		t.Errorf("whole CRL: number %d, URL %s, %d entries; want 1, its own URL, 1", whole.Number, whole.URL, whole.Entries)
	}
	l, err := x509.ParseRevocationList(whole.DER)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckSignatureFrom(issuer); err != nil {
		t.Error(err)
	}
	if len(l.RevokedCertificateEntries) != 1 || l.RevokedCertificateEntries[0].SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("entries %+v", l.RevokedCertificateEntries)
	}
	for _, x := range l.Extensions {
		if x.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 28}) {
			t.Error("the whole CRL has an issuing distribution point")
		}
	}
	if again := sign(ca.WholeCRL); again.Number != 2 {
		t.Errorf("second whole CRL: number %d, want 2", again.Number)
	}
	if third := sign(0); third.Number != 3 {
		t.Errorf("shard 0 after the whole CRLs: number %d, want 3", third.Number)
	}
	if _, err := f.ca.SignCRLs(ctx, ca.CRLRequest{Authority: "one", Validity: time.Hour, Shards: []ca.CRLShard{{Shard: -2, Entries: entries()}}}); errs.KindOf(err) != errs.Malformed {
		t.Errorf("shard -2: got %v, want it refused", err)
	}
}
