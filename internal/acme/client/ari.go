package client

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"golang.org/x/crypto/acme"

	"signet/internal/acme/ari"
	"signet/internal/errs"
)

// x/crypto/acme has neither RFC 9773 renewal information nor the newOrder
// "replaces" field: this file asks for both itself, signing with go-jose
// through the account key's crypto.Signer (on the token for a token key).

// directory is what this package reads from the server's directory itself.
type directory struct {
	NewNonce    string `json:"newNonce"`
	NewOrder    string `json:"newOrder"`
	RenewalInfo string `json:"renewalInfo"`
	Meta        struct {
		Profiles map[string]string `json:"profiles"`
	} `json:"meta"`
}

func (c *Client) directory(ctx context.Context) (*directory, error) {
	if c.dir != nil {
		return c.dir, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.acme.DirectoryURL, nil)
	if err != nil {
		return nil, errs.New(errs.Malformed, "--server %q is not a URL", c.acme.DirectoryURL)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "reading the ACME directory %s", c.acme.DirectoryURL)
	}
	defer res.Body.Close()
	var d directory
	if res.StatusCode != http.StatusOK {
		return nil, errs.New(errs.Unavailable, "reading the ACME directory %s: %s", c.acme.DirectoryURL, res.Status)
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&d); err != nil || d.NewNonce == "" || d.NewOrder == "" {
		return nil, errs.New(errs.Malformed, "%s is not an ACME directory; give the server's directory URL", c.acme.DirectoryURL)
	}
	c.dir = &d
	return c.dir, nil
}

// kidSigner is the account key as go-jose signs with it: its JWS headers
// name the account URL (kid), not the key.
type kidSigner struct {
	jose.OpaqueSigner
	kid string
}

func (s kidSigner) Public() *jose.JSONWebKey {
	k := *s.OpaqueSigner.Public()
	k.KeyID = s.kid
	return &k
}

type nonceSource struct {
	ctx context.Context
	c   *Client
	url string
}

func (n nonceSource) Nonce() (string, error) {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodHead, n.url, nil)
	if err != nil {
		return "", err
	}
	res, err := n.c.hc.Do(req)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	if nonce := res.Header.Get("Replay-Nonce"); nonce != "" {
		return nonce, nil
	}
	return "", errs.New(errs.Unavailable, "the ACME server gave no nonce at %s", n.url)
}

// post sends payload to url signed by the account (RFC 8555 §6.2), once
// more after a badNonce, and returns the response with its body read.
func (c *Client) post(ctx context.Context, url string, payload any) (*http.Response, []byte, error) {
	d, err := c.directory(ctx)
	if err != nil {
		return nil, nil, err
	}
	if c.acme.KID == "" {
		if _, err := c.Account(ctx); err != nil {
			return nil, nil, err
		}
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, nil, errs.Wrap(errs.Internal, err, "encoding the request")
	}
	opaque := cryptosigner.Opaque(c.acme.Key)
	if len(opaque.Algs()) == 0 {
		return nil, nil, errs.New(errs.Malformed, "the account key's type cannot sign ACME requests; use an ECDSA, RSA or Ed25519 key")
	}
	for attempt := 0; ; attempt++ {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: opaque.Algs()[0], Key: kidSigner{opaque, string(c.acme.KID)}},
			&jose.SignerOptions{NonceSource: nonceSource{ctx, c, d.NewNonce}, ExtraHeaders: map[jose.HeaderKey]any{"url": url}})
		if err != nil {
			return nil, nil, errs.Wrap(errs.Internal, err, "making the request signer")
		}
		jws, err := signer.Sign(body)
		if err != nil {
			return nil, nil, errs.Wrap(errs.Unavailable, err, "signing the request with the account key")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(jws.FullSerialize()))
		if err != nil {
			return nil, nil, errs.Wrap(errs.Internal, err, "making the request")
		}
		req.Header.Set("Content-Type", "application/jose+json")
		req.Header.Set("User-Agent", c.acme.UserAgent)
		res, err := c.hc.Do(req)
		if err != nil {
			return nil, nil, errs.Wrap(errs.Unavailable, err, "POST %s", url)
		}
		data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		if err != nil {
			return nil, nil, errs.Wrap(errs.Unavailable, err, "POST %s", url)
		}
		if res.StatusCode < 300 {
			return res, data, nil
		}
		p := problem(res.StatusCode, data)
		if p.ProblemType == "urn:ietf:params:acme:error:badNonce" && attempt == 0 {
			continue
		}
		return nil, nil, p
	}
}

// problem reads an RFC 7807 problem document as x/crypto/acme's Error.
func problem(status int, body []byte) *acme.Error {
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	json.Unmarshal(body, &p)
	if p.Detail == "" {
		p.Detail = http.StatusText(status)
	}
	return &acme.Error{StatusCode: status, ProblemType: p.Type, Detail: p.Detail}
}

// newOrder creates an order (RFC 8555 §7.4) with the profile and replaces
// fields, and returns its URL.
func (c *Client) newOrder(ctx context.Context, ids []acme.AuthzID, profile string, replaces *x509.Certificate) (string, error) {
	d, err := c.directory(ctx)
	if err != nil {
		return "", err
	}
	if profile != "" {
		if _, ok := d.Meta.Profiles[profile]; !ok {
			return "", errs.New(errs.Rejected, "the ACME server does not advertise profile %q; choose one of: %s", profile, strings.Join(slices.Sorted(maps.Keys(d.Meta.Profiles)), ", "))
		}
	}
	type id struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	req := struct {
		Identifiers []id   `json:"identifiers"`
		Profile     string `json:"profile,omitempty"`
		Replaces    string `json:"replaces,omitempty"`
	}{Profile: profile}
	for _, i := range ids {
		req.Identifiers = append(req.Identifiers, id{i.Type, i.Value})
	}
	if replaces != nil {
		req.Replaces = ari.CertID(replaces)
	}
	res, _, err := c.post(ctx, d.NewOrder, req)
	if err != nil {
		return "", Err(err, "creating the order")
	}
	loc := res.Header.Get("Location")
	if loc == "" {
		return "", errs.New(errs.Unavailable, "the ACME server created an order without saying where (no Location)")
	}
	return loc, nil
}

// RenewalInfo is a server's advice on when to renew a certificate (RFC 9773 §4.2).
type RenewalInfo struct {
	Start, End time.Time // the suggested window
	RetryAfter time.Duration
}

// ErrNoRenewalInfo is returned by RenewalInfo when the server offers none.
var ErrNoRenewalInfo = errs.New(errs.NotFound, "the ACME server offers no renewal information")

// RenewalInfo asks the server when to renew cert. ErrNoRenewalInfo if the
// server's directory has no renewalInfo.
func (c *Client) RenewalInfo(ctx context.Context, cert *x509.Certificate) (RenewalInfo, error) {
	d, err := c.directory(ctx)
	if err != nil {
		return RenewalInfo{}, err
	}
	if d.RenewalInfo == "" {
		return RenewalInfo{}, ErrNoRenewalInfo
	}
	url := strings.TrimSuffix(d.RenewalInfo, "/") + "/" + ari.CertID(cert)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return RenewalInfo{}, errs.Wrap(errs.Internal, err, "making the renewal information request")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return RenewalInfo{}, errs.Wrap(errs.Unavailable, err, "reading renewal information")
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	if err != nil {
		return RenewalInfo{}, errs.Wrap(errs.Unavailable, err, "reading renewal information")
	}
	if res.StatusCode != http.StatusOK {
		return RenewalInfo{}, Err(problem(res.StatusCode, data), "reading renewal information")
	}
	var v struct {
		SuggestedWindow struct {
			Start time.Time `json:"start"`
			End   time.Time `json:"end"`
		} `json:"suggestedWindow"`
	}
	if err := json.Unmarshal(data, &v); err != nil || v.SuggestedWindow.Start.IsZero() || v.SuggestedWindow.End.Before(v.SuggestedWindow.Start) {
		return RenewalInfo{}, errs.New(errs.Malformed, "the ACME server's renewal information for %s has no valid suggestedWindow", ari.CertID(cert))
	}
	info := RenewalInfo{Start: v.SuggestedWindow.Start, End: v.SuggestedWindow.End}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
		info.RetryAfter = time.Duration(s) * time.Second
	}
	return info, nil
}
