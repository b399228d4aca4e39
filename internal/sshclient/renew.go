// Package sshclient is the host side of signet's SSH host certificate
// renewal: a host proves it holds its host key and a certificate signet
// issued it, and gets the same certificate for a new validity, with no
// administrator credential (POST /api/v1/ssh/host-renewal).
package sshclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"signet/internal/errs"
	"signet/internal/sshca"
)

// Path is the renewal endpoint under a server's base URL.
const Path = "/api/v1/ssh/host-renewal"

// maxAnswer bounds what is read of an answer.
const maxAnswer = 64 << 10

// RenewHost renews the host certificate cert at the signet server at
// baseURL (https://host:port), signing the server's nonce with host, the
// certificate's key (on a token or in memory: any ssh.Signer). caBundle is
// PEM of the roots the server's HTTPS certificate chains to; nil: the
// system's. It returns the new certificate after checking it certifies the
// same key for the same principals as a host certificate not expired; it
// writes nothing.
func RenewHost(ctx context.Context, baseURL string, caBundle []byte, host ssh.Signer, cert *ssh.Certificate) (*ssh.Certificate, error) {
	if cert.CertType != ssh.HostCert {
		return nil, errs.New(errs.Malformed, "certificate %d is a user certificate; only host certificates renew themselves", cert.Serial)
	}
	if !bytes.Equal(host.PublicKey().Marshal(), cert.Key.Marshal()) {
		return nil, errs.New(errs.Malformed, "the host key (%s) is not the key of certificate %d (%s); give the private key the certificate certifies",
			ssh.FingerprintSHA256(host.PublicKey()), cert.Serial, ssh.FingerprintSHA256(cert.Key))
	}
	hc := &http.Client{Timeout: time.Minute}
	if caBundle != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caBundle) {
			return nil, errs.New(errs.Malformed, "the CA bundle holds no PEM certificate; give the root of the server's HTTPS certificate")
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	url := strings.TrimSuffix(baseURL, "/") + Path

	var n struct {
		Nonce string `json:"nonce"`
	}
	if err := call(ctx, hc, http.MethodGet, url, nil, &n); err != nil {
		return nil, err
	}
	sig, err := sshca.SignRenewal(host, n.Nonce, cert)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "signing the renewal with the host key")
	}
	body, _ := json.Marshal(map[string]string{
		"certificate": string(ssh.MarshalAuthorizedKey(cert)), "nonce": n.Nonce,
		"signature": base64.StdEncoding.EncodeToString(ssh.Marshal(sig)),
	})
	var answer bytes.Buffer
	if err := call(ctx, hc, http.MethodPost, url, body, &answer); err != nil {
		return nil, err
	}
	renewed, err := sshca.ParseCertificate(answer.Bytes())
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "the server's answer")
	}
	if renewed.CertType != ssh.HostCert || !bytes.Equal(renewed.Key.Marshal(), cert.Key.Marshal()) ||
		!slices.Equal(renewed.ValidPrincipals, cert.ValidPrincipals) || uint64(time.Now().Unix()) >= renewed.ValidBefore {
		return nil, errs.New(errs.Unavailable, "the server answered certificate %d, which is not for this host's key and principals or has expired; the current certificate is kept", renewed.Serial)
	}
	return renewed, nil
}

// call sends one request; a 2xx answer goes into out (JSON decoded, or
// the raw body into a *bytes.Buffer), anything else becomes an error with
// the server's problem detail.
func call(ctx context.Context, hc *http.Client, method, url string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return errs.Wrap(errs.Malformed, err, "server URL %q", url)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "%s %s", method, url)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "%s %s", method, url)
	}
	if resp.StatusCode/100 != 2 {
		var p struct {
			Type, Detail string
		}
		if json.Unmarshal(data, &p) == nil && p.Detail != "" {
			return errs.New(kindOf(p.Type), "the server refused the renewal: %s", p.Detail)
		}
		return errs.New(errs.Unavailable, "%s %s: %s", method, url, resp.Status)
	}
	if b, ok := out.(*bytes.Buffer); ok {
		b.Write(data)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return errs.Wrap(errs.Unavailable, err, "%s %s: the answer is not JSON", method, url)
	}
	return nil
}

// kindOf is the error kind a problem type names (urn:signet:error:KIND).
func kindOf(problemType string) errs.Kind {
	name := strings.TrimPrefix(problemType, "urn:signet:error:")
	for k := errs.Internal; k <= errs.Disabled; k++ {
		if k.String() == name {
			return k
		}
	}
	return errs.Unavailable
}
