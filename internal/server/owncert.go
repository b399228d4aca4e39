package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync/atomic"
	"time"

	"signet/internal/ca"
)

// ownCert holds the server's own certificate and renews it, through the
// issuance path, once two thirds of its lifetime have passed, so a server
// that runs for months never serves an expired certificate.
type ownCert struct {
	issue    func(context.Context) (*tls.Certificate, error)
	log      *slog.Logger
	now      func() time.Time
	cur      atomic.Pointer[tls.Certificate]
	renewing atomic.Bool
	renewed  chan struct{} // tests wait on it; never closed
}

func newOwnCert(ctx context.Context, issue func(context.Context) (*tls.Certificate, error), log *slog.Logger) (*ownCert, error) {
	o := &ownCert{issue: issue, log: log, now: time.Now, renewed: make(chan struct{}, 1)}
	c, err := issue(ctx)
	if err != nil {
		return nil, err
	}
	o.cur.Store(c)
	return o, nil
}

// renewAt is two thirds into c's validity.
func renewAt(c *tls.Certificate) time.Time {
	nb, na := c.Leaf.NotBefore, c.Leaf.NotAfter
	return nb.Add(na.Sub(nb) * 2 / 3)
}

// get serves the current certificate and, when it is due, starts one
// renewal in the background; handshakes never wait for the CA.
func (o *ownCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := o.cur.Load()
	if o.now().After(renewAt(c)) && o.renewing.CompareAndSwap(false, true) {
		go o.renew()
	}
	return c, nil
}

func (o *ownCert) renew() {
	defer o.renewing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := o.issue(ctx)
	if err != nil {
		o.log.Error("renewing the server certificate failed; will retry on the next handshake", "err", err)
		return
	}
	o.cur.Store(c)
	o.log.Info("renewed the server certificate", "serial", ca.Serial(c.Leaf.SerialNumber), "not_after", c.Leaf.NotAfter)
	select {
	case o.renewed <- struct{}{}:
	default:
	}
}
