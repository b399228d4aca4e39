package check

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Downloads from a certificate's URLs are bounded: OCSP answers are small,
// CRLs of a large CA are not.
const (
	maxOCSP      = 64 << 10
	maxCRL       = 16 << 20
	maxRedirects = 3
)

// revocation asks the leaf's own OCSP responder and CRL distribution point
// whether it is revoked, if the chain is trusted (issuer not nil). Only
// http and https URLs are fetched. Not being able to ask warns; revoked
// fails.
func revocation(ctx context.Context, r *Report, o Options, leaf, issuer *x509.Certificate) {
	if len(leaf.OCSPServer) == 0 && len(leaf.CRLDistributionPoints) == 0 {
		r.add(Info, "revocation", "certificate names no OCSP responder and no CRL")
		return
	}
	if issuer == nil {
		// The URLs are the server's to choose: fetching them from an
		// untrusted certificate would let any server make the checker
		// send requests from where it stands.
		r.add(Info, "revocation", "not checked: the chain is not trusted, so the URLs it names are not fetched")
		return
	}
	client := &http.Client{
		Timeout: o.timeout(),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			return httpURL(req.URL)
		},
	}
	if len(leaf.OCSPServer) > 0 {
		checkOCSP(ctx, r, client, leaf.OCSPServer[0], leaf, issuer)
	}
	if len(leaf.CRLDistributionPoints) > 0 {
		checkCRL(ctx, r, client, o.Now, leaf.CRLDistributionPoints[0], leaf, issuer)
	}
}

func httpURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %s is not http or https", u.Redacted())
	}
	return nil
}

// fetch GETs (body nil) or POSTs u and returns at most limit bytes of a 200
// answer.
func fetch(ctx context.Context, client *http.Client, u string, body []byte, contentType string, limit int64) ([]byte, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	if err := httpURL(pu); err != nil {
		return nil, err
	}
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("answer larger than %d bytes", limit)
	}
	return b, nil
}

func checkOCSP(ctx context.Context, r *Report, client *http.Client, u string, leaf, issuer *x509.Certificate) {
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		r.add(Warn, "ocsp", "cannot make an OCSP request: %v", err)
		return
	}
	b, err := fetch(ctx, client, u, req, "application/ocsp-request", maxOCSP)
	if err != nil {
		r.add(Warn, "ocsp", "%s: %v", u, err)
		return
	}
	resp, err := ocsp.ParseResponseForCert(b, leaf, issuer)
	if err != nil {
		r.add(Warn, "ocsp", "%s: answer does not verify: %v", u, err)
		return
	}
	switch resp.Status {
	case ocsp.Good:
		r.add(OK, "ocsp", "%s: good", u)
	case ocsp.Revoked:
		r.add(Fail, "ocsp", "%s: revoked on %s (reason %d)", u, resp.RevokedAt.UTC().Format(time.RFC3339), resp.RevocationReason)
	default:
		r.add(Warn, "ocsp", "%s: unknown to the responder", u)
	}
}

func checkCRL(ctx context.Context, r *Report, client *http.Client, now time.Time, u string, leaf, issuer *x509.Certificate) {
	b, err := fetch(ctx, client, u, nil, "", maxCRL)
	if err != nil {
		r.add(Warn, "crl", "%s: %v", u, err)
		return
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		r.add(Warn, "crl", "%s: not a DER CRL: %v", u, err)
		return
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		r.add(Warn, "crl", "%s: not signed by the certificate's issuer: %v", u, err)
		return
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			r.add(Fail, "crl", "%s: revoked on %s (reason %d)", u, e.RevocationTime.UTC().Format(time.RFC3339), e.ReasonCode)
			return
		}
	}
	if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
		r.add(Warn, "crl", "%s: not listed, but the CRL is stale (next update was %s)", u, crl.NextUpdate.UTC().Format(time.RFC3339))
		return
	}
	r.add(OK, "crl", "%s: not listed", u)
}
