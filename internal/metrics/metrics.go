// Package metrics owns signet's Prometheus registry and the definitions of
// its metrics. Other packages take a small interface (ca.Observer) or nil;
// only serve builds a Registry and serves it on its own listener.
//
// Labels are bounded: authority names, purposes, outcomes and states, never
// serials, account IDs or certificate names.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"signet/internal/ca"
	"signet/internal/store"
)

// Registry holds what this node did (counters and histograms) and, through
// Store, gauges of what the store knows.
type Registry struct {
	reg      *prometheus.Registry
	issuance *prometheus.HistogramVec
	acme     *ACME
	ocsp     *OCSP
	signing  *signing
	commits  *commits
}

// New returns a registry with the Go runtime and process collectors.
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), acme: newACME(), ocsp: newOCSP(), signing: newSigning(), commits: newCommits()}
	r.issuance = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "signet_issuance_duration_seconds",
		Help: "X.509 leaf issuance attempts on this node by authority, purpose and outcome (issued, or the error kind: rejected, locked, ...), with their latency. " +
			"Whether a request came over the API, ACME or the CLI is not visible here: every path goes through the same gate.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	}, []string{"authority", "purpose", "outcome"})
	r.reg.MustRegister(r.issuance, r.acme.requests, r.acme.validations, r.ocsp.responses, r.signing.duration, r.signing.errors,
		r.commits.duration, r.commits.batch, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Issuance implements ca.Observer.
func (r *Registry) Issuance(authority, purpose, outcome string, d time.Duration) {
	r.issuance.WithLabelValues(authority, purpose, outcome).Observe(d.Seconds())
}

// ACME returns the ACME server's counters; nil for a nil Registry.
func (r *Registry) ACME() *ACME {
	if r == nil {
		return nil
	}
	return r.acme
}

// OCSP returns the OCSP responder's counters; nil for a nil Registry.
func (r *Registry) OCSP() *OCSP {
	if r == nil {
		return nil
	}
	return r.ocsp
}

// Handler serves the exposition format at /metrics.
func (r *Registry) Handler(log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	return mux
}

// Store exports gauges of what the store knows about authorities, read at
// each scrape. Only the node that signs CRLs should call it, so that a sum
// over the nodes of a cluster does not count a certificate twice.
// lead, when set (several nodes), says whether this node signs CRLs.
func (r *Registry) Store(c *ca.CA, st ca.Lister, lead func(context.Context) (bool, error), log *slog.Logger) {
	r.reg.MustRegister(&storeCollector{c: c, st: st, lead: lead, log: log})
}

var (
	stateDesc    = prometheus.NewDesc("signet_authority_state", "1 for each authority's current state (locked, unlocked, unavailable, disabled), 0 for the others.", []string{"authority", "state"}, nil)
	certsDesc    = prometheus.NewDesc("signet_certificates", "Certificates recorded in the store by issuing authority and status (valid includes expired; revoked).", []string{"authority", "status"}, nil)
	expiringDesc = prometheus.NewDesc("signet_certificates_expiring", "Unrevoked, unexpired certificates that expire within the given number of days (1, 7, 30), by issuing authority.", []string{"authority", "within_days"}, nil)
	caAfterDesc  = prometheus.NewDesc("signet_ca_certificate_not_after_timestamp_seconds", "When each X.509 authority's own CA certificate expires, as a Unix time.", []string{"authority"}, nil)
)

type storeCollector struct {
	c    *ca.CA
	st   ca.Lister
	lead func(context.Context) (bool, error)
	log  *slog.Logger
}

func (s *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- certsDesc
	ch <- caAfterDesc
	ch <- expiringDesc
}

func (s *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.lead != nil {
		if ok, err := s.lead(ctx); err != nil || !ok {
			return // another node exports them
		}
	}
	list, err := s.c.Status(ctx, s.st)
	if err != nil {
		s.log.Warn("metrics: cannot read the authorities from the store", "err", err)
		return
	}
	now := time.Now()
	windows := []int{1, 7, 30}
	expiring := map[string][]int{}
	for _, a := range list {
		expiring[a.Name] = make([]int, len(windows))
	}
	_, err = s.st.Statuses(ctx, store.StatusQuery{}, func(cs store.CertStatus) error {
		left := cs.NotAfter.Sub(now)
		if n := expiring[cs.Authority]; n != nil && !cs.Revoked && left > 0 {
			for i, d := range windows {
				if left <= time.Duration(d)*24*time.Hour {
					n[i]++
				}
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("metrics: cannot read the certificates from the store", "err", err)
		return
	}
	for _, a := range list {
		for i, d := range windows {
			ch <- prometheus.MustNewConstMetric(expiringDesc, prometheus.GaugeValue, float64(expiring[a.Name][i]), a.Name, strconv.Itoa(d))
		}
		for _, st := range []ca.State{ca.Locked, ca.Unlocked, ca.Unavailable, ca.Disabled} {
			v := 0.0
			if a.State == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, a.Name, string(st))
		}
		ch <- prometheus.MustNewConstMetric(certsDesc, prometheus.GaugeValue, float64(a.Issued-a.Revoked), a.Name, "valid")
		ch <- prometheus.MustNewConstMetric(certsDesc, prometheus.GaugeValue, float64(a.Revoked), a.Name, "revoked")
		if a.NotAfter != nil {
			ch <- prometheus.MustNewConstMetric(caAfterDesc, prometheus.GaugeValue, float64(a.NotAfter.Unix()), a.Name)
		}
	}
}
