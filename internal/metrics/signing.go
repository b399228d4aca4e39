package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// signing holds the signature metrics of CA keys, by key backend
// (software, pkcs11) and token label ("" for software keys). Tokens are
// few and configured by the operator; each key's children are resolved on
// its first signature and kept.
type signing struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec

	mu       sync.RWMutex
	children map[keyLabels]keyChildren
}

type keyLabels struct{ backend, token string }

type keyChildren struct {
	ok, failed prometheus.Observer
	signErrors prometheus.Counter
}

func newSigning() *signing {
	return &signing{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signet_signing_duration_seconds",
			Help: "Signatures by CA keys on this node (X.509 and SSH certificates, CRLs, OCSP responder certificates), by key backend (software, pkcs11), token label (empty for software keys) and outcome (ok, error), with their latency.",
			// Software keys sign in tens of microseconds, tokens in milliseconds to seconds.
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10),
		}, []string{"backend", "token", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_key_errors_total",
			Help: "CA key failures on this node, by key backend, token label and operation: open (the key could not be opened: token absent, PIN refused, file missing; a locked key is no error) or sign (the key failed to sign or returned an invalid signature).",
		}, []string{"backend", "token", "op"}),
		children: map[keyLabels]keyChildren{},
	}
}

func (s *signing) of(backend, token string) keyChildren {
	k := keyLabels{backend, token}
	s.mu.RLock()
	c, ok := s.children[k]
	s.mu.RUnlock()
	if ok {
		return c
	}
	c = keyChildren{
		ok:         s.duration.WithLabelValues(backend, token, "ok"),
		failed:     s.duration.WithLabelValues(backend, token, "error"),
		signErrors: s.errors.WithLabelValues(backend, token, "sign"),
	}
	s.mu.Lock()
	s.children[k] = c
	s.mu.Unlock()
	return c
}

// Signature implements ca.Observer.
func (r *Registry) Signature(backend, token string, d time.Duration, err error) {
	c := r.signing.of(backend, token)
	if err != nil {
		c.failed.Observe(d.Seconds())
		c.signErrors.Inc()
		return
	}
	c.ok.Observe(d.Seconds())
}

// KeyError implements ca.Observer.
func (r *Registry) KeyError(backend, token string) {
	r.signing.errors.WithLabelValues(backend, token, "open").Inc()
}
