package metrics

import "github.com/prometheus/client_golang/prometheus"

// OCSP counts the OCSP responses served. A nil *OCSP counts nothing.
type OCSP struct {
	responses *prometheus.CounterVec
	children  map[string]*[2]prometheus.Counter // by status: miss, hit
}

// OCSPStatuses are the statuses a response is counted by: a certificate's
// (good, revoked, unknown) or an error response's (RFC 6960 §2.3).
var OCSPStatuses = []string{"good", "revoked", "unknown", "malformed", "unauthorized", "tryLater", "internalError"}

func newOCSP() *OCSP {
	o := &OCSP{
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_ocsp_responses_total",
			Help: "OCSP responses this node served, by status (good, revoked, unknown, or the error: malformed, unauthorized, tryLater, internalError) and cache (hit: served as signed before; miss: signed or read for this request, or an error).",
		}, []string{"status", "cache"}),
		children: map[string]*[2]prometheus.Counter{},
	}
	for _, s := range OCSPStatuses {
		o.children[s] = &[2]prometheus.Counter{o.responses.WithLabelValues(s, "miss"), o.responses.WithLabelValues(s, "hit")}
	}
	return o
}

// Response counts one response of status (one of OCSPStatuses), served
// from the cache or not.
func (o *OCSP) Response(status string, hit bool) {
	if o == nil {
		return
	}
	c := o.children[status]
	if c == nil {
		return
	}
	if hit {
		c[1].Inc()
	} else {
		c[0].Inc()
	}
}
