// Package benchload fills a home with a large inventory for benchmarks:
// real certificates, signed by an authority's key through ca.Issue (the
// one issuance path: each is recorded with its audit event, so the chain
// verifies), many at once so that the store's group commit writes them in
// big transactions, and a share of them revoked through ca.Revoke.
//
// The one thing it leaves out is zlint: at about 300 µs a certificate it
// would make ten million take hours. Nothing that reads the inventory
// (OCSP, CRLs, the read API) depends on a certificate having been linted.
package benchload

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"signet/internal/ca"
	"signet/internal/home"
)

// Options say what to load.
type Options struct {
	Authority string // an issuing X.509 authority of the home
	Count     int    // certificates to issue
	// RevokeEvery revokes one certificate in every RevokeEvery (0: none).
	RevokeEvery int
	// Workers issue at once; the store batches what they record into one
	// transaction (default 256).
	Workers int
	// Progress, if set, is told the certificates done so far, about every
	// 10,000.
	Progress func(done int)
}

// Report is what Load did.
type Report struct {
	Issued, Revoked int
	Elapsed         time.Duration
}

// passLint is the lint gate that passes everything (see the package doc).
type passLint struct{}

func (passLint) Check([]byte) error    { return nil }
func (passLint) CheckCRL([]byte) error { return nil }

// Load issues o.Count certificates of o.Authority in h. Validities are
// spread from one day to the authority's default, so that listings by
// expiry find some certificates in every week; each certificate names
// host-N.bench.example.
func Load(ctx context.Context, h *home.Home, o Options) (Report, error) {
	if o.Count <= 0 {
		return Report{}, fmt.Errorf("benchload: the count must be positive, not %d", o.Count)
	}
	if o.Workers <= 0 {
		o.Workers = 256
	}
	rec, err := h.Store.Authority(ctx, o.Authority)
	if err != nil {
		return Report{}, err
	}
	c := ca.New(ca.Options{Store: h.Store, Keys: h.Keys, Lint: passLint{}, BaseURL: h.Config.RevocationBaseURL()})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // one subject key: only the CA's signature costs
	if err != nil {
		return Report{}, err
	}
	maxDays := max(int(rec.DefaultValidity/(24*time.Hour)), 1)
	start := time.Now()
	var next, done, revoked atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, o.Workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= o.Count || ctx.Err() != nil {
					return
				}
				is, err := c.Issue(ctx, ca.Request{Authority: o.Authority, PublicKey: key.Public(),
					DNSNames: []string{fmt.Sprintf("host-%d.bench.example", i)},
					Validity: time.Duration(1+i%maxDays) * 24 * time.Hour, Actor: "benchload"})
				if err == nil && o.RevokeEvery > 0 && i%o.RevokeEvery == 0 {
					if _, err = c.Revoke(ctx, is.Serial, 1+i%5/4*3, "benchload"); err == nil { // keyCompromise or superseded
						revoked.Add(1)
					}
				}
				if err != nil {
					errc <- err
					cancel()
					return
				}
				if n := done.Add(1); n%10000 == 0 && o.Progress != nil {
					o.Progress(int(n))
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	rep := Report{Issued: int(done.Load()), Revoked: int(revoked.Load()), Elapsed: time.Since(start)}
	if err := <-errc; err != nil {
		return rep, err
	}
	return rep, nil
}
