package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"iter"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"signet/internal/audit"
	"signet/internal/errs"
)

// Revoked is one CRL entry.
type Revoked struct {
	Serial    []byte // big-endian, positive, no leading zero octets
	RevokedAt time.Time
	Reason    int // RFC 5280 CRLReason; 0 (unspecified) is left out of the entry
}

// CRLShard is one shard to sign and the entries it lists. Shard WholeCRL
// is the authority's whole CRL. Entries is iterated twice (once to size
// the CRL, once to encode it), and twice more to pick and keep the lint's
// sample of a CRL of more than LintedCRLEntries, and must yield the same
// entries each time.
type CRLShard struct {
	Shard   int
	Entries iter.Seq[Revoked]
}

// WholeCRL is the shard number of an authority's whole CRL: every revoked
// certificate of all its shards, at WholeCRLURL, with no issuing
// distribution point, for software that loads one CRL per issuer. Its CRL
// numbers are reserved in the store under this shard number, a sequence of
// its own.
const WholeCRL = -1

// CRLRequest asks for CRLs of some shards of one authority.
type CRLRequest struct {
	Authority string
	Validity  time.Duration // nextUpdate - thisUpdate
	Shards    []CRLShard
	Progress  func(SignedCRL) // optional: called as each shard is signed
	Actor     string          // who asks, for the audit log
}

// SignedCRL is one shard's signed CRL.
type SignedCRL struct {
	Authority  string
	Shard      int
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
	URL        string // its distribution point, also in a shard's IDP
	DER        []byte
}

// SignCRLs signs the CRLs of the requested shards (WholeCRL included) with
// the authority's key.
// Their numbers are reserved in the store first, in one write, so numbers
// grow across processes and restarts. Each CRL carries the authority key
// identifier, its CRL number and a critical issuing distribution point
// naming exactly the URL its certificates' CDP names (RFC 5280 5.2.5), so
// that a shard's CRL cannot be taken for another shard's. The whole CRL has
// no IDP: it covers every certificate of the authority. Each CRL passes
// the gate (issuer.sign): linted before the key signs it, recorded as a
// crl.sign audit event before it is returned.
func (c *CA) SignCRLs(ctx context.Context, req CRLRequest) ([]SignedCRL, error) {
	a, err := c.authority(ctx, req.Authority)
	if err != nil {
		return nil, err
	}
	if req.Validity <= 0 {
		return nil, errs.New(errs.Malformed, "CRL validity must be positive")
	}
	shards := make([]int, len(req.Shards))
	for i, s := range req.Shards {
		if (s.Shard < 0 && s.Shard != WholeCRL) || s.Shard >= max(a.rec.Shards, 1) {
			return nil, errs.New(errs.Malformed, "authority %q has no CRL shard %d", a.rec.Name, s.Shard)
		}
		shards[i] = s.Shard
	}
	numbers, err := c.store.NextCRLNumbers(ctx, a.rec.Name, shards)
	if err != nil {
		return nil, err
	}
	// Revocation services run at most one second apart in thisUpdate; the
	// truncation keeps the encoding (UTCTime has seconds) equal to the value.
	this := c.now().UTC().Truncate(time.Second)
	next := this.Add(req.Validity)
	out := make([]SignedCRL, 0, len(req.Shards))
	for i, s := range req.Shards {
		crl := SignedCRL{Authority: a.rec.Name, Shard: s.Shard, Number: numbers[i], ThisUpdate: this, NextUpdate: next,
			URL: CRLURL(c.BaseURL(a.rec), a.rec.Name, s.Shard)}
		if s.Shard == WholeCRL {
			crl.URL = WholeCRLURL(c.BaseURL(a.rec), a.rec.Name)
		}
		d, n, err := c.prepareCRL(a, this, next, s.Entries, crlExtensions(a, crl.Number, crl.URL, s.Shard == WholeCRL))
		if err == nil {
			crl.Entries = n
			crl.DER, err = a.iss.sign(c.lint, d, func(der []byte) error {
				return c.store.AppendEvent(ctx, c.event(audit.Event{Kind: audit.KindCRLSign, Actor: req.Actor, Authority: a.rec.Name, Subject: crl.URL},
					map[string]any{"shard": s.Shard, "number": crl.Number, "entries": n, "this_update": this, "next_update": next, "sha256": fingerprint(der)}))
			})
		}
		if err != nil {
			return nil, errs.Wrap(errs.KindOf(err), err, "signing the CRL of %s shard %d", a.rec.Name, s.Shard)
		}
		out = append(out, crl)
		if req.Progress != nil {
			req.Progress(crl)
		}
	}
	return out, nil
}

// LintedCRLEntries bounds the stride sample of entries a large CRL is
// linted with. A CRL of at most that many entries is linted whole: the very
// TBS the CA key then signs. A larger one is linted as a draft made by the
// same encoder from the same fields and extensions, with the entries of
// lintSample (zlint needs about 5 µs and 2 KiB per entry: a million would
// take 5 s and 2 GiB, see BENCHMARKS.md).
const LintedCRLEntries = 1024

// prepareCRL is the gate's prepare step for a CRL: its TBSCertList, and
// the lint of the draft described at LintedCRLEntries, which carries the
// placeholder signature. It returns the number of entries.
func (c *CA) prepareCRL(a *authority, this, next time.Time, entries iter.Seq[Revoked], exts []byte) (draft, int, error) {
	if c.crlExtensions != nil {
		exts = c.crlExtensions(exts)
	}
	tbs, n, err := encodeCRL(a, this, next, entries, exts)
	if err != nil {
		return draft{}, 0, err
	}
	lint := func(l Linter) error {
		var linted []byte
		if n <= LintedCRLEntries {
			linted = bytes.Clone(tbs) // seal completes it in place
		} else {
			var err error
			if linted, _, err = encodeCRL(a, this, next, lintSample(entries, n), exts); err != nil {
				return err
			}
		}
		return l.CheckCRL(a.iss.finish(linted, a.iss.placeholder))
	}
	return draft{tbs: tbs, lint: lint}, n, nil
}

// lintSample is the entries a CRL of n > LintedCRLEntries entries is
// linted with, in their order: every stride-th, so that at most
// LintedCRLEntries are, and the entries that decide zlint's entry lints
// for the whole list: the latest revocation (none after thisUpdate), the
// earliest (none before RFC 2459), and the first entry of each reason code
// and encoding (serial length and sign, UTCTime or GeneralizedTime), whose
// extensions and encoding every other entry of that kind shares. Only
// duplicate serials, a zlint warning that refuses nothing, go unseen.
func lintSample(entries iter.Seq[Revoked], n int) iter.Seq[Revoked] {
	stride := (n + LintedCRLEntries - 1) / LintedCRLEntries
	var picked []int
	latest, earliest, i := 0, 0, 0
	var lt, et time.Time
	// kinds: by reason (a byte when encoded), serial length (at most 20
	// octets, RFC 5280 4.1.2.2; longer ones share a slot), sign and time.
	var kinds [256 * 32 * 2 * 2]bool
	for e := range entries {
		if i%stride == 0 {
			picked = append(picked, i)
		}
		if i == 0 || e.RevokedAt.After(lt) {
			latest, lt = i, e.RevokedAt
		}
		if i == 0 || e.RevokedAt.Before(et) {
			earliest, et = i, e.RevokedAt
		}
		k := ((e.Reason&0xff)*32+min(len(e.Serial), 31))*4 + int(e.Serial[0]>>7)*2
		if e.RevokedAt.Before(utc1950) || !e.RevokedAt.Before(utc2050) {
			k++ // GeneralizedTime
		}
		if !kinds[k] {
			kinds[k] = true
			picked = append(picked, i)
		}
		i++
	}
	picked = append(picked, latest, earliest)
	slices.Sort(picked)
	picked = slices.Compact(picked)
	// Kept, not yielded again from entries: encodeCRL walks the sample
	// twice, and walking a million entries for each was a quarter of the
	// CRL's encoding.
	sample := make([]Revoked, 0, len(picked))
	i = 0
	for e := range entries {
		if len(sample) < len(picked) && picked[len(sample)] == i {
			e.Serial = bytes.Clone(e.Serial) // valid during the yield only
			sample = append(sample, e)
		}
		i++
	}
	return slices.Values(sample)
}

// encodeCRL encodes RFC 5280 5.1's TBSCertList, version 2, straight into
// the one buffer that becomes the signed CRL (after maxHeader reserved
// bytes, as seal wants it): a million entries (38 MB) are written once and
// never copied. The entries are sized first.
func encodeCRL(a *authority, this, next time.Time, entries iter.Seq[Revoked], exts []byte) ([]byte, int, error) {
	algID := a.iss.algID
	size, n := 0, 0
	for e := range entries {
		l := entryLen(e)
		size += headerLen(l) + l
		n++
	}
	body := 3 + len(algID) + len(a.cert.RawSubject) + timeLen(this) + timeLen(next)
	if n > 0 { // an empty revokedCertificates must be absent, not empty
		body += headerLen(size) + size
	}
	extsLen := headerLen(len(exts)) + len(exts)
	body += headerLen(extsLen) + extsLen
	buf := make([]byte, maxHeader, maxHeader+headerLen(body)+body+len(algID)+sigRoom)
	buf = appendHeader(buf, 0x30, body)
	buf = append(buf, 0x02, 0x01, 0x01) // version v2
	buf = append(buf, algID...)
	buf = append(buf, a.cert.RawSubject...)
	buf = appendTime(buf, this)
	buf = appendTime(buf, next)
	if n > 0 {
		buf = appendHeader(buf, 0x30, size)
		var again int
		if buf, again = appendEntries(buf, entries); again != n {
			return nil, 0, errs.New(errs.Internal, "the CRL entries changed while being encoded")
		}
	}
	buf = appendHeader(buf, 0xa0, extsLen)
	buf = appendTLV(buf, 0x30, exts)
	if len(buf) != maxHeader+headerLen(body)+body {
		return nil, 0, errs.New(errs.Internal, "the CRL entries changed while being encoded")
	}
	return buf, n, nil
}

// crlExtensions: AKI, CRL number, critical IDP. The issuing authorities'
// CRLs list leaves only (onlyContainsUserCerts), the root's only CA
// certificates (onlyContainsCACerts): a CRL must not be taken as covering
// what it does not.
func crlExtensions(a *authority, number int64, url string, whole bool) []byte {
	var exts []byte
	// authorityKeyIdentifier: SEQUENCE { [0] keyIdentifier }
	aki := appendTLV(nil, 0x80, a.cert.SubjectKeyId)
	exts = appendExtension(exts, oidAKI, false, appendTLV(nil, 0x30, aki))
	exts = appendExtension(exts, oidCRLNumber, false, appendInteger(nil, bigEndian(uint64(number))))
	if whole {
		return exts
	}
	// IssuingDistributionPoint: SEQUENCE { [0] { [0] fullName { [6] URI } }, [1] or [2] TRUE }
	// The root's IDP names no distribution point: the root itself carries
	// no CDP (a trust anchor is not revocation-checked), and a named IDP
	// would put the root out of its own CRL's scope for checkers that walk
	// the whole chain (openssl verify -crl_check_all).
	var dp []byte
	if a.rec.Purpose == RootPurpose {
		dp = append(dp, 0x82, 0x01, 0xff)
	} else {
		uri := appendTLV(nil, 0x86, []byte(url))
		dp = appendTLV(nil, 0xa0, appendTLV(nil, 0xa0, uri))
		dp = append(dp, 0x81, 0x01, 0xff)
	}
	exts = appendExtension(exts, oidIDP, true, appendTLV(nil, 0x30, dp))
	return exts
}

var (
	oidAKI       = []byte{0x06, 0x03, 0x55, 0x1d, 0x23}
	oidCRLNumber = []byte{0x06, 0x03, 0x55, 0x1d, 0x14}
	oidIDP       = []byte{0x06, 0x03, 0x55, 0x1d, 0x1c}
)

// entryLen is the length of one entry's SEQUENCE contents as appendEntries
// writes it.
func entryLen(e Revoked) int {
	serial := e.Serial
	for len(serial) > 1 && serial[0] == 0 {
		serial = serial[1:]
	}
	n := 2 + len(serial) + timeLen(e.RevokedAt) // INTEGER + time
	if serial[0]&0x80 != 0 {
		n++
	}
	if e.Reason != 0 {
		n += 14 // SEQUENCE { SEQUENCE { OID, OCTET STRING { ENUMERATED } } }
	}
	return n
}

// appendEntries encodes each entry, without the enclosing SEQUENCE. It is
// the hot loop of a million-entry CRL, so it appends bytes by hand.
func appendEntries(b []byte, entries iter.Seq[Revoked]) ([]byte, int) {
	n := 0
	for e := range entries {
		serial := e.Serial
		for len(serial) > 1 && serial[0] == 0 {
			serial = serial[1:]
		}
		intLen := len(serial)
		if serial[0]&0x80 != 0 {
			intLen++
		}
		b = appendHeader(b, 0x30, entryLen(e))
		b = append(b, 0x02, byte(intLen))
		if intLen > len(serial) {
			b = append(b, 0)
		}
		b = append(b, serial...)
		b = appendTime(b, e.RevokedAt)
		if e.Reason != 0 {
			b = append(b, 0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, byte(e.Reason))
		}
		n++
	}
	return b, n
}

// RFC 5280 4.1.2.5: UTCTime encodes the years from 1950 to 2049.
var (
	utc1950 = time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)
	utc2050 = time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)
)

// timeLen is the length of appendTime's encoding of t.
func timeLen(t time.Time) int {
	if y := t.UTC().Year(); y >= 1950 && y < 2050 {
		return 15
	}
	return 17
}

// appendTime is RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime after.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y >= 1950 && y < 2050 {
		b = append(b, 0x17, 13)
		b = append2(b, y%100)
	} else {
		b = append(b, 0x18, 15)
		b = append2(b, y/100)
		b = append2(b, y%100)
	}
	b = append2(b, int(mo))
	b = append2(b, d)
	b = append2(b, h)
	b = append2(b, mi)
	b = append2(b, s)
	return append(b, 'Z')
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

// appendHeader appends a DER tag and definite length.
func appendHeader(b []byte, tag byte, n int) []byte {
	b = append(b, tag)
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 0x100:
		return append(b, 0x81, byte(n))
	case n < 0x10000:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// headerLen is the length of appendHeader's tag and length for n bytes.
func headerLen(n int) int {
	switch {
	case n < 0x80:
		return 2
	case n < 0x100:
		return 3
	case n < 0x10000:
		return 4
	case n < 0x1000000:
		return 5
	}
	return 6
}

func appendTLV(b []byte, tag byte, v []byte) []byte {
	return append(appendHeader(b, tag, len(v)), v...)
}

func appendBitString(b, sig []byte) []byte {
	b = appendHeader(b, 0x03, len(sig)+1)
	return append(append(b, 0), sig...)
}

// appendInteger encodes a non-negative big-endian magnitude.
func appendInteger(b, v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) == 0 {
		v = []byte{0}
	}
	if v[0]&0x80 != 0 {
		return appendTLV(b, 0x02, append([]byte{0}, v...))
	}
	return appendTLV(b, 0x02, v)
}

func bigEndian(v uint64) []byte {
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func appendExtension(b, oid []byte, critical bool, value []byte) []byte {
	var ext []byte
	ext = append(ext, oid...)
	if critical {
		ext = append(ext, 0x01, 0x01, 0xff)
	}
	ext = appendTLV(ext, 0x04, value)
	return appendTLV(b, 0x30, ext)
}

// algorithmIdentifier is the DER AlgorithmIdentifier of the signature
// algorithms signet's CA keys use (RFC 5758, RFC 4055, RFC 8410).
func algorithmIdentifier(alg x509.SignatureAlgorithm) ([]byte, error) {
	ecdsa := []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03}
	switch alg {
	case x509.ECDSAWithSHA256:
		return append(ecdsa, 0x02), nil
	case x509.ECDSAWithSHA384:
		return append(ecdsa, 0x03), nil
	case x509.ECDSAWithSHA512:
		return append(ecdsa, 0x04), nil
	case x509.SHA256WithRSA:
		return []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00}, nil
	case x509.PureEd25519:
		return []byte{0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70}, nil
	}
	return nil, errs.New(errs.Internal, "no CRL signature algorithm for %v", alg)
}

// CRLSerials checks that der is a CRL signed by issuer's key, as signet
// signs them, and calls fn with the serial (big-endian, no leading zeros)
// of each entry, in order. It reads the DER in place: for a CRL of a
// million entries x509.ParseRevocationList allocates about half a GB,
// which a server resuming its kept CRLs at start cannot afford.
func CRLSerials(der []byte, issuer *x509.Certificate, fn func(serial []byte)) error {
	bad := errs.New(errs.Malformed, "malformed CRL")
	in := cryptobyte.String(der)
	var crl, tbs, inner cryptobyte.String
	var algID []byte
	var sig asn1.BitString
	if !in.ReadASN1(&crl, casn1.SEQUENCE) || !in.Empty() ||
		!crl.ReadASN1Element(&tbs, casn1.SEQUENCE) ||
		!crl.ReadASN1Element((*cryptobyte.String)(&algID), casn1.SEQUENCE) ||
		!crl.ReadASN1BitString(&sig) || !crl.Empty() {
		return bad
	}
	alg, err := signatureAlgorithm(issuer.PublicKey)
	if err != nil {
		return err
	}
	if want, err := algorithmIdentifier(alg); err != nil || !bytes.Equal(algID, want) {
		return errs.New(errs.Malformed, "CRL signature algorithm is not the issuer's")
	}
	if err := checkSignature(alg, tbs, sig.RightAlign(), issuer.PublicKey); err != nil {
		return errs.Wrap(errs.Malformed, err, "CRL signature")
	}
	var entries cryptobyte.String
	var hasEntries bool
	if !tbs.ReadASN1(&inner, casn1.SEQUENCE) ||
		!inner.SkipOptionalASN1(casn1.INTEGER) || // version
		!inner.SkipASN1(casn1.SEQUENCE) || // signature
		!inner.SkipASN1(casn1.SEQUENCE) || // issuer
		!skipTime(&inner) ||
		(inner.PeekASN1Tag(casn1.UTCTime) || inner.PeekASN1Tag(casn1.GeneralizedTime)) && !skipTime(&inner) ||
		!inner.ReadOptionalASN1(&entries, &hasEntries, casn1.SEQUENCE) {
		return bad
	}
	for !entries.Empty() {
		var entry, serial cryptobyte.String
		if !entries.ReadASN1(&entry, casn1.SEQUENCE) || !entry.ReadASN1(&serial, casn1.INTEGER) {
			return bad
		}
		for len(serial) > 1 && serial[0] == 0 {
			serial = serial[1:]
		}
		fn(serial)
	}
	return nil
}

// skipTime skips a UTCTime or GeneralizedTime.
func skipTime(s *cryptobyte.String) bool {
	if s.PeekASN1Tag(casn1.UTCTime) {
		return s.SkipASN1(casn1.UTCTime)
	}
	return s.SkipASN1(casn1.GeneralizedTime)
}
