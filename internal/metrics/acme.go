package metrics

import "github.com/prometheus/client_golang/prometheus"

// ACME counts the requests the ACME server answers and the validations it
// runs. A nil *ACME counts nothing.
type ACME struct {
	requests    *prometheus.CounterVec
	validations *prometheus.CounterVec
	valid       map[string]prometheus.Counter // by challenge type, resolved once
}

// challengeTypes are the challenges signet validates (RFC 8555 §8, RFC 8737).
var challengeTypes = []string{"http-01", "dns-01", "tls-alpn-01"}

func newACME() *ACME {
	a := &ACME{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_acme_requests_total",
			Help: "ACME requests this node answered, by endpoint (the route's pattern, never the requested path; other for none) and problem type sent (empty when the request succeeded).",
		}, []string{"endpoint", "problem"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_acme_validations_total",
			Help: "ACME challenge validations this node ran, by challenge type, outcome (valid, invalid) and the problem type of an invalid one.",
		}, []string{"challenge", "outcome", "problem"}),
		valid: map[string]prometheus.Counter{},
	}
	for _, c := range challengeTypes {
		a.valid[c] = a.validations.WithLabelValues(c, "valid", "")
	}
	return a
}

// Endpoint counts the requests of one ACME route. Routes are few and
// known when the server starts, so each has its counters resolved once;
// a nil *Endpoint counts nothing.
type Endpoint struct {
	ok       prometheus.Counter
	problems *prometheus.CounterVec // curried with the endpoint
}

// Endpoint returns the counters of the route pattern ("other" for
// requests no route matched).
func (a *ACME) Endpoint(pattern string) *Endpoint {
	if a == nil {
		return nil
	}
	return &Endpoint{
		ok:       a.requests.WithLabelValues(pattern, ""),
		problems: a.requests.MustCurryWith(prometheus.Labels{"endpoint": pattern}),
	}
}

// Answered counts a request that succeeded.
func (e *Endpoint) Answered() {
	if e != nil {
		e.ok.Inc()
	}
}

// Problem counts a request answered with a problem document of type typ
// (a URN from RFC 8555's list or signet's error kinds: bounded by code).
func (e *Endpoint) Problem(typ string) {
	if e != nil {
		e.problems.WithLabelValues(typ).Inc()
	}
}

// Validation counts one finished validation of a challenge type; problem
// is the type of an invalid one's error ("" when valid).
func (a *ACME) Validation(challenge string, valid bool, problem string) {
	if a == nil {
		return
	}
	if c := a.valid[challenge]; valid && c != nil {
		c.Inc()
		return
	}
	outcome := "valid"
	if !valid {
		outcome = "invalid"
	}
	a.validations.WithLabelValues(challenge, outcome, problem).Inc()
}
