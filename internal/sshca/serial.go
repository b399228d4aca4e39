package sshca

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"time"

	"signet/internal/errs"
)

// Serials are 63 bits (stores keep them in a signed 64-bit column): the
// milliseconds since serialEpoch above 20 random bits, and never smaller
// than the last one this process gave. In issue order, a batch of
// certificates lands on the last pages of the store's serial index instead
// of one random page each, which was most of the pages every commit wrote.
// They need not be unpredictable: the signature of an OpenSSH certificate
// starts with the 32-byte random nonce that protects X.509's random serials
// from chosen-prefix attacks. Several processes issuing at once may draw
// the same serial within a millisecond (once in 2^20); the store refuses
// the second and Issue signs again.
var serialEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const serialRandomBits = 20

type serials struct{ last atomic.Uint64 }

// next returns a serial in 1..2^63-1 greater than every earlier one.
func (s *serials) next(now time.Time) (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, errs.Wrap(errs.Internal, err, "serial")
	}
	ms := max(now.Sub(serialEpoch).Milliseconds(), 0)
	n := uint64(ms)<<serialRandomBits | binary.BigEndian.Uint64(b[:])&(1<<serialRandomBits-1)
	for {
		last := s.last.Load()
		next := max(n, last+1)
		if next >= 1<<63 {
			return 0, errs.New(errs.Internal, "SSH serials are exhausted")
		}
		if s.last.CompareAndSwap(last, next) {
			return next, nil
		}
	}
}
