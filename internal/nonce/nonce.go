// Package nonce issues single-use, short-lived, authenticated nonces: the
// ACME server's Replay-Nonce values and the challenges an SSH host signs
// to renew its certificate. Each user has its own HMAC key.
package nonce

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"sync"
	"sync/atomic"
	"time"
)

// Nonces are stateless to issue and cheap to check, so that no request
// costs a durable write and several nodes can share one database:
//
//	nonce = base64url(issued-at seconds ‖ node ‖ counter ‖ HMAC-SHA256(key, …)[:16])
//
// The HMAC key is shared through the store (store.Secret), so every node
// accepts every node's nonces, and a nonce older than the lifetime is
// refused by its own timestamp. Replay is stopped by an in-memory set of
// the nonces used on this node during the last lifetime, sharded so that
// no lock is global. The trade-off: a nonce used on node A could be used
// once more on node B within its lifetime. A replayed request is still
// signed by the client's key, over TLS, for a fixed purpose, so this gives
// an attacker nothing it does not already have; a node's restart likewise
// forgets its set, which is why the lifetime is short. Deployments that
// want strict single use across nodes route a client to one node (clients
// retry with a fresh nonce).
type Nonces struct {
	key      []byte
	node     [4]byte
	counter  atomic.Uint32
	lifetime time.Duration
	now      func() time.Time
	macs     sync.Pool
	shards   [64]shard
}

const (
	bodyLen = 12 // time(4) node(4) counter(4)
	macLen  = 16
	// Len is a nonce's length: base64url without padding.
	Len = ((bodyLen+macLen)*8 + 5) / 6
)

type shard struct {
	mu        sync.Mutex
	genStart  time.Time
	cur, prev map[[bodyLen]byte]struct{}
}

// New returns the nonces of key (shared by the nodes that must accept each
// other's), each valid for lifetime by the clock now.
func New(key []byte, lifetime time.Duration, now func() time.Time) *Nonces {
	n := &Nonces{key: key, lifetime: lifetime, now: now}
	rand.Read(n.node[:])
	n.macs.New = func() any { return hmac.New(sha256.New, n.key) }
	for i := range n.shards {
		n.shards[i].cur = map[[bodyLen]byte]struct{}{}
	}
	return n
}

func (n *Nonces) mac(data []byte, out []byte) []byte {
	h := n.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(data)
	out = h.Sum(out)
	n.macs.Put(h)
	return out
}

// New returns a fresh nonce.
func (n *Nonces) New() string {
	var b [bodyLen + sha256.Size]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(n.now().Unix()))
	copy(b[4:8], n.node[:])
	binary.BigEndian.PutUint32(b[8:12], n.counter.Add(1))
	n.mac(b[:bodyLen], b[:bodyLen])
	return base64.RawURLEncoding.EncodeToString(b[:bodyLen+macLen])
}

// Use accepts a nonce once: authentic, within its lifetime, not used before.
func (n *Nonces) Use(s string) bool {
	if len(s) != Len {
		return false
	}
	var b [bodyLen + macLen]byte
	if k, err := base64.RawURLEncoding.Decode(b[:], []byte(s)); err != nil || k != len(b) {
		return false
	}
	var sum [sha256.Size]byte
	if !hmac.Equal(n.mac(b[:bodyLen], sum[:0])[:macLen], b[bodyLen:]) {
		return false
	}
	now := n.now()
	issued := time.Unix(int64(binary.BigEndian.Uint32(b[0:4])), 0)
	if now.Sub(issued) > n.lifetime || issued.Sub(now) > time.Minute {
		return false
	}
	var id [bodyLen]byte
	copy(id[:], b[:bodyLen])
	sh := &n.shards[(uint(b[11])^uint(b[7]))%uint(len(n.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Two generations of one lifetime each: a nonce recorded in cur stays
	// known for at least a lifetime, after which its timestamp refuses it.
	if elapsed := now.Sub(sh.genStart); elapsed >= n.lifetime {
		sh.prev = sh.cur
		if elapsed >= 2*n.lifetime {
			sh.prev = nil
		}
		sh.cur, sh.genStart = make(map[[bodyLen]byte]struct{}, len(sh.prev)), now
	}
	if _, used := sh.cur[id]; used {
		return false
	}
	if _, used := sh.prev[id]; used {
		return false
	}
	sh.cur[id] = struct{}{}
	return true
}
