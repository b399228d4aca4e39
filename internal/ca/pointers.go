package ca

import (
	"encoding/binary"
	"math/big"
	"strconv"

	"signet/internal/profile"
	"signet/internal/store"
)

// DefaultBaseURL is where a local `signet serve` answers plain HTTP.
const DefaultBaseURL = "http://127.0.0.1:8080"

// DefaultShards is how many CRL shards a new issuing authority has: enough
// that a million revocations make CRLs of a few MB each, few enough that a
// quiet authority serves a handful of tiny files.
const DefaultShards = 16

// The URL layout under an authority's base URL. The revocation package
// serves exactly these paths; CRLURL is also the IDP of the shard's CRL.
func CRLURL(base, authority string, shard int) string {
	return base + "/crl/" + authority + "/" + strconv.Itoa(shard) + ".crl"
}

// WholeCRLURL is the authority's whole CRL (every shard's entries, no IDP).
func WholeCRLURL(base, authority string) string { return base + "/crl/" + authority + ".crl" }

// OCSPURL is the authority's OCSP responder.
func OCSPURL(base, authority string) string { return base + "/ocsp/" + authority }

// IssuerURL is the authority's certificate (DER), for AIA caIssuers.
func IssuerURL(base, authority string) string { return base + "/ca/" + authority + ".crt" }

// BaseURL is where an authority's revocation information is served.
func (c *CA) BaseURL(a store.Authority) string {
	if a.BaseURL != "" {
		return a.BaseURL
	}
	return c.base
}

// ShardOf assigns a serial to one of n shards. Serials are random, so the
// low 32 bits spread certificates evenly; the result is recorded with the
// certificate, so changing n later moves nothing already issued.
func ShardOf(serial *big.Int, n int) int {
	if n <= 1 {
		return 0
	}
	b := serial.Bytes()
	var last [4]byte
	copy(last[4-min(4, len(b)):], b[max(0, len(b)-4):])
	return int(binary.BigEndian.Uint32(last[:]) % uint32(n))
}

// leafPointers are the URLs in a leaf of authority a in the given shard.
// An authority of one shard names its whole CRL, the one CRL software
// such as OpenVPN loads; its shard 0 CRL is still served for older leaves.
func (c *CA) leafPointers(a store.Authority, shard int) profile.Pointers {
	base := c.BaseURL(a)
	crl := CRLURL(base, a.Name, shard)
	if a.Shards <= 1 {
		crl = WholeCRLURL(base, a.Name)
	}
	return profile.Pointers{CRL: crl, OCSP: OCSPURL(base, a.Name), IssuerURL: IssuerURL(base, a.Name)}
}

// Changed returns a channel closed at the next revocation by this CA:
// revocation services in the same process refresh at once instead of
// waiting for their next poll of the store.
func (c *CA) Changed() <-chan struct{} {
	c.changeMu.Lock()
	defer c.changeMu.Unlock()
	return c.changed
}

// OnIssue has f told of every certificate this CA records, once it is
// durable and before Issue returns: a mirror in the same process (the
// revocation service's) learns of it without reading the store back.
// f runs on the issuing goroutine and must be quick.
func (c *CA) OnIssue(f func(store.CertStatus)) {
	c.changeMu.Lock()
	defer c.changeMu.Unlock()
	var fs []func(store.CertStatus)
	if old := c.issued.Load(); old != nil {
		fs = append(fs, *old...)
	}
	fs = append(fs, f)
	c.issued.Store(&fs)
}

// OnRevoke has f told of every serial this CA revokes, once the revocation
// is durable and before Revoke returns: a responder in the same process
// drops what it cached for it at once, before its refresh (Changed) comes.
// f runs on the revoking goroutine and must be quick.
func (c *CA) OnRevoke(f func(serial string)) {
	c.changeMu.Lock()
	defer c.changeMu.Unlock()
	var fs []func(string)
	if old := c.revoked.Load(); old != nil {
		fs = append(fs, *old...)
	}
	fs = append(fs, f)
	c.revoked.Store(&fs)
}

func (c *CA) signalIssue(st store.CertStatus) {
	if fs := c.issued.Load(); fs != nil {
		for _, f := range *fs {
			f(st)
		}
	}
}

func (c *CA) signalRevoke(serial string) {
	if fs := c.revoked.Load(); fs != nil {
		for _, f := range *fs {
			f(serial)
		}
	}
}

func (c *CA) signalChange() {
	c.changeMu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.changeMu.Unlock()
}
