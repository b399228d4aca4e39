package store

import (
	"context"
	"time"

	"signet/internal/errs"
)

// EndpointCheck is the latest recorded signet check of one endpoint: where
// a certificate is deployed and how that endpoint fared. It is an
// observation, not CA state, so no audit event goes with it.
type EndpointCheck struct {
	Endpoint  string    // HOST:PORT
	StartTLS  string    // "" (TLS from the start), xmpp, xmpp-server, smtp or postgres
	Name      string    // the name the certificate had to carry
	Serial    string    // the certificate served, lowercase hex; "" if none
	NotAfter  time.Time // its end; zero if none
	CheckedAt time.Time
	Verdict   string // ok, warn or fail
}

// Endpoints are the recorded checks.
type Endpoints interface {
	// RecordEndpointCheck replaces the record of c's endpoint (Endpoint,
	// StartTLS and Name) with c.
	RecordEndpointCheck(ctx context.Context, c EndpointCheck) error
	// EndpointChecks lists the records, those of certificate serial only
	// if serial is not "", by endpoint.
	EndpointChecks(ctx context.Context, serial string) ([]EndpointCheck, error)
}

// CheckEndpointCheck refuses a record that cannot be stored.
func CheckEndpointCheck(c EndpointCheck) error {
	switch {
	case c.Endpoint == "":
		return errs.New(errs.Malformed, "an endpoint check needs its endpoint")
	case c.CheckedAt.IsZero():
		return errs.New(errs.Malformed, "the check of %s has no time", c.Endpoint)
	case c.Verdict != "ok" && c.Verdict != "warn" && c.Verdict != "fail":
		return errs.New(errs.Malformed, "the check of %s has verdict %q, not ok, warn or fail", c.Endpoint, c.Verdict)
	}
	if c.Serial != "" {
		return CheckSerial(c.Serial)
	}
	return nil
}
