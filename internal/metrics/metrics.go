// Package metrics owns signet's Prometheus registry and the definitions of
// its metrics. The packages it imports take a small interface
// (ca.Observer, store.CommitObserver); the ACME server and the OCSP
// responder take its *ACME and *OCSP, which count nothing when nil. Only
// serve builds a Registry and serves it on its own listener. Counters on
// a hot path are resolved once (per route, status, key), not per event.
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

// Counter is what the store gauges read: the authorities and aggregate
// counts, never a walk over the certificates.
type Counter interface {
	ca.Lister
	store.Counted
}

// Store exports gauges of what the store knows about authorities, read at
// each scrape. Only the node that signs CRLs exports them, so that a sum
// over the nodes of a cluster does not count a certificate twice.
// lead, when set (several nodes), says whether this node signs CRLs.
func (r *Registry) Store(c *ca.CA, st Counter, lead func(context.Context) (bool, error), log *slog.Logger) {
	r.reg.MustRegister(&storeCollector{c: c, st: st, lead: lead, log: log, now: time.Now})
}

var (
	stateDesc    = prometheus.NewDesc("signet_authority_state", "1 for each authority's current state (locked, unlocked, unavailable, disabled), 0 for the others.", []string{"authority", "state"}, nil)
	certsDesc    = prometheus.NewDesc("signet_certificates", "Certificates recorded in the store by issuing authority and status (valid includes expired; revoked).", []string{"authority", "status"}, nil)
	expiringDesc = prometheus.NewDesc("signet_certificates_expiring", "Unrevoked, unexpired certificates that expire within the given number of days (1, 7, 30), by issuing authority.", []string{"authority", "within_days"}, nil)
	caAfterDesc  = prometheus.NewDesc("signet_ca_certificate_not_after_timestamp_seconds", "When each X.509 authority's own CA certificate expires, as a Unix time.", []string{"authority"}, nil)
	ordersDesc   = prometheus.NewDesc("signet_acme_orders", "ACME orders in the store by authority and state (pending; ready to finalize; processing; valid; invalid; expired: pending or ready past its expiry). Orders written before signet stored ready count as pending. Orders are deleted some time after they expire.", []string{"authority", "state"}, nil)
	crlThisDesc  = prometheus.NewDesc("signet_crl_this_update_timestamp_seconds", "When the CRL last published for each authority and shard (whole: the whole CRL) was signed (its thisUpdate), as a Unix time: its age is time() minus this.", []string{"authority", "shard"}, nil)
	crlNextDesc  = prometheus.NewDesc("signet_crl_next_update_timestamp_seconds", "The nextUpdate of the CRL last published for each authority and shard, as a Unix time. signet re-signs a CRL at half its validity.", []string{"authority", "shard"}, nil)
	crlSizeDesc  = prometheus.NewDesc("signet_crl_bytes", "The size in bytes (DER) of the CRL last published for each authority and shard.", []string{"authority", "shard"}, nil)
	auditDesc    = prometheus.NewDesc("signet_audit_head_seq", "The sequence number of the last event in the audit log (0 when it is empty).", nil, nil)
)

// expiryWindows are the days of signet_certificates_expiring.
var expiryWindows = []int{1, 7, 30}

// orderStates are exported for each ACME authority, 0 when it has none.
var orderStates = []string{store.StatusPending, store.StatusReady, store.StatusProcessing, store.StatusValid, store.StatusInvalid, store.StatusExpired}

type storeCollector struct {
	c    *ca.CA
	st   Counter
	lead func(context.Context) (bool, error)
	log  *slog.Logger
	now  func() time.Time
}

func (s *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{stateDesc, certsDesc, caAfterDesc, expiringDesc, ordersDesc, crlThisDesc, crlNextDesc, crlSizeDesc, auditDesc} {
		ch <- d
	}
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
	within := make([]time.Duration, len(expiryWindows))
	for i, d := range expiryWindows {
		within[i] = time.Duration(d) * 24 * time.Hour
	}
	census, err := s.st.Census(ctx, s.now(), within)
	if err != nil {
		s.log.Warn("metrics: cannot count what the store holds", "err", err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	type key struct{ authority, label string }
	expiring := map[key]int64{}
	for _, e := range census.Expiring {
		expiring[key{e.Authority, strconv.Itoa(int(e.Within / (24 * time.Hour)))}] = e.Count
	}
	orders := map[key]int64{}
	for _, o := range census.Orders {
		orders[key{o.Authority, o.State}] += o.Count
	}
	for _, a := range list {
		for _, d := range expiryWindows {
			days := strconv.Itoa(d)
			gauge(expiringDesc, float64(expiring[key{a.Name, days}]), a.Name, days)
		}
		for _, st := range []ca.State{ca.Locked, ca.Unlocked, ca.Unavailable, ca.Disabled} {
			v := 0.0
			if a.State == st {
				v = 1
			}
			gauge(stateDesc, v, a.Name, string(st))
		}
		gauge(certsDesc, float64(a.Issued-a.Revoked), a.Name, "valid")
		gauge(certsDesc, float64(a.Revoked), a.Name, "revoked")
		if a.NotAfter != nil {
			gauge(caAfterDesc, float64(a.NotAfter.Unix()), a.Name)
		}
		if a.ACME {
			for _, st := range orderStates {
				gauge(ordersDesc, float64(orders[key{a.Name, st}]), a.Name, st)
			}
		}
	}
	for _, l := range census.CRLs {
		shard := "whole"
		if l.Shard >= 0 {
			shard = strconv.Itoa(l.Shard)
		}
		gauge(crlThisDesc, float64(l.ThisUpdate.Unix()), l.Authority, shard)
		gauge(crlNextDesc, float64(l.NextUpdate.Unix()), l.Authority, shard)
		gauge(crlSizeDesc, float64(l.Size), l.Authority, shard)
	}
	gauge(auditDesc, float64(census.AuditHead))
}
