package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"signet/internal/store"
)

// EndpointLister reads the endpoint checks signet check --record stored.
type EndpointLister interface {
	EndpointChecks(ctx context.Context, serial string) ([]store.EndpointCheck, error)
}

// Endpoints exports a gauge per endpoint recorded by signet check
// --record: when the certificate it served expires (so that an alert says
// how many days are left), its verdict and when it was checked. The endpoints are the one operator-bounded label set (whoever
// records them chooses how many). lead is as for Store: only the node that
// signs CRLs exports them.
func (r *Registry) Endpoints(st EndpointLister, lead func(context.Context) (bool, error), log *slog.Logger) {
	r.reg.MustRegister(&endpointCollector{st: st, lead: lead, log: log})
}

var (
	endpointLabels      = []string{"endpoint", "starttls", "name"}
	endpointAfterDesc   = prometheus.NewDesc("signet_endpoint_certificate_not_after_timestamp_seconds", "When the certificate a recorded endpoint served at its last check expires, as a Unix time; absent if it served none.", endpointLabels, nil)
	endpointVerdictDesc = prometheus.NewDesc("signet_endpoint_verdict", "1 for the verdict (ok, warn, fail) of each recorded endpoint's last signet check, 0 for the others.", append(endpointLabels, "verdict"), nil)
	endpointCheckedDesc = prometheus.NewDesc("signet_endpoint_checked_timestamp_seconds", "When each recorded endpoint was last checked, as a Unix time.", endpointLabels, nil)
)

type endpointCollector struct {
	st   EndpointLister
	lead func(context.Context) (bool, error)
	log  *slog.Logger
}

func (c *endpointCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- endpointAfterDesc
	ch <- endpointVerdictDesc
	ch <- endpointCheckedDesc
}

func (c *endpointCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c.lead != nil {
		if ok, err := c.lead(ctx); err != nil || !ok {
			return // another node exports them
		}
	}
	list, err := c.st.EndpointChecks(ctx, "")
	if err != nil {
		c.log.Warn("metrics: cannot read the recorded endpoints from the store", "err", err)
		return
	}
	for _, e := range list {
		labels := []string{e.Endpoint, e.StartTLS, e.Name}
		if !e.NotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(endpointAfterDesc, prometheus.GaugeValue, float64(e.NotAfter.Unix()), labels...)
		}
		for _, v := range []string{"ok", "warn", "fail"} {
			val := 0.0
			if e.Verdict == v {
				val = 1
			}
			ch <- prometheus.MustNewConstMetric(endpointVerdictDesc, prometheus.GaugeValue, val, append(labels, v)...)
		}
		ch <- prometheus.MustNewConstMetric(endpointCheckedDesc, prometheus.GaugeValue, float64(e.CheckedAt.Unix()), labels...)
	}
}
