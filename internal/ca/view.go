package ca

import (
	"encoding/pem"
	"time"

	"signet/internal/store"
)

// CertificateView is what an operator sees of one certificate, in the one
// JSON shape that signet list, show, issue and revoke print with --json
// and the read API (/api/v1/certificates) answers with.
type CertificateView struct {
	Serial    string       `json:"serial"`
	Authority string       `json:"authority"`
	Subject   string       `json:"subject"`
	DNS       []string     `json:"dns"` // never null: [] when it has none
	IP        []string     `json:"ip"`
	Email     []string     `json:"email"`
	NotBefore time.Time    `json:"not_before"`
	NotAfter  time.Time    `json:"not_after"`
	Status    store.Status `json:"status"` // valid (also when expired) or revoked
	Expired   bool         `json:"expired"`
	Internal  bool         `json:"internal"` // issued by signet for itself
	Requester string       `json:"requester,omitempty"`
	RevokedAt *time.Time   `json:"revoked_at,omitempty"`
	// RevocationReason is the RFC 5280 name of the reason, when revoked;
	// Reason repeats it under the name signet show --json used before
	// the two shapes became one.
	RevocationReason string   `json:"revocation_reason,omitempty"`
	Reason           string   `json:"reason,omitempty"`
	PEM              string   `json:"pem,omitempty"`
	Chain            []string `json:"chain,omitempty"` // PEM, issuing authority first
	// Deployed are the endpoints signet check --record last found serving
	// it (one certificate's view only).
	Deployed []Deployment `json:"deployed,omitempty"`
}

// Deployment is one endpoint signet check --record found serving a
// certificate, with its latest verdict.
type Deployment struct {
	Endpoint  string    `json:"endpoint"`
	StartTLS  string    `json:"starttls,omitempty"`
	Name      string    `json:"name"`
	Verdict   string    `json:"verdict"`
	CheckedAt time.Time `json:"checked_at"`
}

// View is c as an operator sees it at now, without its PEM, chain or
// deployments (which a single certificate's view adds).
func View(c store.Certificate, now time.Time) CertificateView {
	v := CertificateView{
		Serial: c.Serial, Authority: c.Authority, Subject: c.Subject,
		DNS: orEmpty(c.DNSNames), IP: orEmpty(c.IPAddresses), Email: orEmpty(c.EmailAddresses),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), Status: c.Status,
		Expired: !now.Before(c.NotAfter), Internal: c.Internal, Requester: c.Requester,
	}
	if c.Status == store.Revoked {
		at := c.RevokedAt.UTC()
		v.RevokedAt, v.RevocationReason = &at, ReasonName(c.RevocationReason)
		v.Reason = v.RevocationReason
	}
	return v
}

// WithPEM adds the certificate's own PEM to v.
func (v *CertificateView) WithPEM(der []byte) {
	v.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// DeploymentOf is what check d found, as a certificate's view shows it.
func DeploymentOf(d store.EndpointCheck) Deployment {
	return Deployment{d.Endpoint, d.StartTLS, d.Name, d.Verdict, d.CheckedAt.UTC()}
}

// Deployments are checks as a certificate's view shows them.
func Deployments(checks []store.EndpointCheck) []Deployment {
	var out []Deployment
	for _, d := range checks {
		out = append(out, DeploymentOf(d))
	}
	return out
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
