package revocation

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"iter"
	"math/big"
	"sync"
	"time"

	"signet/internal/ca"
	"signet/internal/store"
)

// serialKey is a serial right-aligned in 20 octets (RFC 5280's maximum):
// a map key without an allocation, half the size of the hex string.
type serialKey [20]byte

func keyOfHex(s string) (serialKey, bool) {
	var k serialKey
	if len(s) > 2*len(k) || len(s)%2 != 0 {
		return k, false
	}
	_, err := hex.Decode(k[len(k)-len(s)/2:], []byte(s))
	return k, err == nil
}

func keyOfInt(n *big.Int) (serialKey, bool) {
	var k serialKey
	if n.Sign() <= 0 || n.BitLen() > 8*len(k) {
		return k, false
	}
	n.FillBytes(k[:])
	return k, true
}

// bytes returns the serial's octets without leading zeros, in buf.
func (k *serialKey) bytes(buf *serialKey) []byte {
	*buf = *k
	i := 0
	for i < len(buf)-1 && buf[i] == 0 {
		i++
	}
	return buf[i:]
}

// entry is what the CRLs need of one revoked certificate: 12 bytes, so a
// million fit in a few tens of MB. Times are Unix seconds, good to 2106.
type entry struct {
	notAfter  uint32
	revokedAt uint32 // 0 when valid
	shard     uint16
	reason    uint8
	revoked   bool
}

func unix32(t time.Time) uint32 { return uint32(min(max(t.Unix(), 0), 1<<32-1)) }

// entryOf is what the index keeps of a status.
func entryOf(c store.CertStatus) entry {
	e := entry{notAfter: unix32(c.NotAfter), shard: uint16(c.Shard), revoked: c.Revoked, reason: uint8(c.Reason)}
	if c.Revoked {
		e.revokedAt = unix32(c.RevokedAt)
	}
	return e
}

// authority is one authority as the revocation services see it: its
// certificate, the hashes OCSP requests name it by, and its unexpired
// revoked certificates, by CRL shard. Valid certificates are not kept:
// OCSP reads a certificate's status from the store when it has no
// response cached, so memory grows with revocations, not the inventory.
type authority struct {
	rec      store.Authority
	cert     *x509.Certificate
	nameHash map[crypto.Hash][]byte
	keyHash  map[crypto.Hash][]byte

	mu     sync.RWMutex
	shards []map[serialKey]entry // index = shard; revoked certificates only

	crl  crlState
	ocsp ocspState
}

func newAuthority(rec store.Authority) (*authority, error) {
	cert, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		return nil, err
	}
	a := &authority{rec: rec, cert: cert, nameHash: map[crypto.Hash][]byte{}, keyHash: map[crypto.Hash][]byte{}}
	spki := subjectPublicKey(cert)
	n1, k1 := sha1.Sum(cert.RawSubject), sha1.Sum(spki)
	n2, k2 := sha256.Sum256(cert.RawSubject), sha256.Sum256(spki)
	a.nameHash[crypto.SHA1], a.keyHash[crypto.SHA1] = n1[:], k1[:]
	a.nameHash[crypto.SHA256], a.keyHash[crypto.SHA256] = n2[:], k2[:]
	a.shards = make([]map[serialKey]entry, max(rec.Shards, 1))
	for i := range a.shards {
		a.shards[i] = map[serialKey]entry{}
	}
	return a, nil
}

// put records a revocation; it reports whether a CRL shard changed. A
// valid status is not kept (see authority).
func (a *authority) put(k serialKey, c store.CertStatus) bool {
	if !c.Revoked {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.shards) <= c.Shard { // shard count grew since this authority was loaded
		a.shards = append(a.shards, map[serialKey]entry{})
	}
	e := entryOf(c)
	old, had := a.shards[c.Shard][k]
	a.shards[c.Shard][k] = e
	return !had || old != e
}

// revoked yields the CRL entries of a shard: revoked certificates that
// expired after cutoff. The yielded Serial is valid during the call only.
// The caller holds a.mu for reading.
func (a *authority) revoked(shard int, cutoff time.Time) iter.Seq[ca.Revoked] {
	return func(yield func(ca.Revoked) bool) {
		if shard >= len(a.shards) {
			return
		}
		c := unix32(cutoff)
		var buf serialKey
		for k, e := range a.shards[shard] {
			if !e.revoked || e.notAfter <= c {
				continue
			}
			if !yield(ca.Revoked{Serial: k.bytes(&buf), RevokedAt: time.Unix(int64(e.revokedAt), 0), Reason: int(e.reason)}) {
				return
			}
		}
	}
}

// purge forgets certificates that expired before cutoff.
func (a *authority) purge(cutoff time.Time) {
	c := unix32(cutoff)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.shards {
		for k, e := range m {
			if e.notAfter <= c {
				delete(m, k)
			}
		}
	}
}

// subjectPublicKey is the BIT STRING contents an OCSP CertID's issuerKeyHash covers.
func subjectPublicKey(c *x509.Certificate) []byte {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil
	}
	return spki.PublicKey.RightAlign()
}
