package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	"sync/atomic"
	"testing"
	"time"
)

// TestOwnCertRenews: before two thirds of the lifetime the same
// certificate is served; after, a new one is issued in the background,
// and a failed renewal keeps serving the old one.
func TestOwnCertRenews(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var serial atomic.Int64
	var fail atomic.Bool
	issue := func(context.Context) (*tls.Certificate, error) {
		if fail.Load() {
			return nil, errors.New("CA unavailable")
		}
		n := serial.Add(1)
		return &tls.Certificate{Leaf: &x509.Certificate{SerialNumber: big.NewInt(n), NotBefore: start, NotAfter: start.Add(30 * 24 * time.Hour)}}, nil
	}
	o, err := newOwnCert(context.Background(), issue, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := start.Add(19 * 24 * time.Hour)
	o.now = func() time.Time { return now }
	if c, _ := o.get(nil); c.Leaf.SerialNumber.Int64() != 1 || serial.Load() != 1 {
		t.Fatal("renewed before two thirds of the lifetime")
	}
	fail.Store(true)
	now = start.Add(21 * 24 * time.Hour)
	o.get(nil) // due: starts a renewal, which fails
	for o.renewing.Load() {
		time.Sleep(time.Millisecond)
	}
	// Only now has the failed renewal finished; read the certificate
	// without get, which would start another renewal.
	if c := o.cur.Load(); c == nil || c.Leaf == nil || c.Leaf.SerialNumber.Int64() != 1 {
		t.Fatal("a failed renewal must keep the old certificate")
	}
	fail.Store(false)
	o.get(nil)
	select {
	case <-o.renewed:
	case <-time.After(5 * time.Second):
		t.Fatal("no renewal")
	}
	if c, _ := o.get(nil); c.Leaf.SerialNumber.Int64() != 2 {
		t.Fatalf("serving serial %d after renewal, want 2", c.Leaf.SerialNumber.Int64())
	}
}
