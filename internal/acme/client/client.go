// Package client is signet's ACME client side (RFC 8555): it registers an
// account, obtains a certificate by answering challenges, asks for renewal
// information (RFC 9773) and names the certificate an order replaces. Keys
// are crypto.Signers, so a key on a token signs on the token and this
// package never sees a private key. signet acme certonly and signet agent
// both obtain certificates through Client.Obtain.
package client

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/acme"

	"signet/internal/errs"
	"signet/internal/kms"
)

// Client talks to one ACME server with one account key.
type Client struct {
	acme *acme.Client
	hc   *http.Client
	dir  *directory // read once, for what x/crypto/acme does not expose
}

// HTTPClient trusts the roots in caBundle (a PEM file), or the system's
// roots when caBundle is empty.
func HTTPClient(caBundle string) (*http.Client, error) {
	hc := &http.Client{Timeout: time.Minute}
	if caBundle == "" {
		return hc, nil
	}
	pool, err := ReadPool(caBundle)
	if err != nil {
		return nil, err
	}
	hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return hc, nil
}

// ReadPool reads the PEM certificates of a CA bundle file.
func ReadPool(caBundle string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "reading --ca-bundle")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errs.New(errs.Malformed, "--ca-bundle %s holds no PEM certificate; give the server's root certificate", caBundle)
	}
	return pool, nil
}

// New returns a client of the server whose directory is at directoryURL,
// signing with account.
func New(directoryURL string, hc *http.Client, account crypto.Signer, userAgent string) *Client {
	return &Client{
		acme: &acme.Client{Key: account, DirectoryURL: directoryURL, HTTPClient: hc, UserAgent: userAgent},
		hc:   hc,
	}
}

// Register finds or creates the account of the client's key, with an
// external account binding when eab is not nil.
func (c *Client) Register(ctx context.Context, eab *acme.ExternalAccountBinding) error {
	_, err := c.acme.Register(ctx, &acme.Account{ExternalAccountBinding: eab}, acme.AcceptTOS)
	if errors.Is(err, acme.ErrAccountAlreadyExists) {
		return nil
	}
	return Err(err, "registering the account")
}

// EAB reads an external account binding's HMAC key (base64url, as servers
// print it) from a secret source.
func EAB(kid, hmacSource string) (*acme.ExternalAccountBinding, error) {
	src, err := kms.ParseSource(hmacSource)
	if err != nil {
		return nil, err
	}
	raw, err := src.Read("EAB HMAC key")
	if err != nil {
		return nil, err
	}
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(string(raw)), "="))
	if err != nil {
		return nil, errs.New(errs.Malformed, "the EAB HMAC key from %s is not base64url; give the key the server printed", hmacSource)
	}
	return &acme.ExternalAccountBinding{KID: kid, Key: key}, nil
}

// Account finds the account of the client's key, which must exist, and
// returns its URL.
func (c *Client) Account(ctx context.Context) (string, error) {
	a, err := c.acme.GetReg(ctx, "")
	if err != nil {
		return "", Err(err, "finding the account of the account key")
	}
	c.acme.KID = acme.KeyID(a.URI)
	return a.URI, nil
}

// Rollover moves the account to newKey (RFC 8555 §7.3.5).
func (c *Client) Rollover(ctx context.Context, newKey crypto.Signer) error {
	if _, err := c.Account(ctx); err != nil {
		return err
	}
	return Err(c.acme.AccountKeyRollover(ctx, newKey), "rolling the account key over")
}

// Deactivate deactivates the account for good.
func (c *Client) Deactivate(ctx context.Context) error {
	if _, err := c.Account(ctx); err != nil {
		return err
	}
	return Err(c.acme.DeactivateReg(ctx), "deactivating the account")
}

// Revoke revokes a certificate (DER) with the account key.
func (c *Client) Revoke(ctx context.Context, der []byte, reason acme.CRLReasonCode) error {
	return Err(c.acme.RevokeCert(ctx, nil, der, reason), "revoking the certificate")
}

// Order is what to certify and how.
type Order struct {
	DNSNames []string
	IPs      []net.IP
	Key      crypto.Signer // the certificate's key: signs the request
	Solver   Solver
	Profile  string // issuance profile the server advertises, or ""
	// Replaces is the certificate this order renews (RFC 9773 §5), or nil.
	Replaces *x509.Certificate
}

// Obtain orders a certificate, answers its challenges, finalizes it with a
// request signed by o.Key and returns the chain, leaf first (DER). The leaf
// is checked to be for o.Key.
func (c *Client) Obtain(ctx context.Context, o Order) ([][]byte, error) {
	ids := acme.DomainIDs(o.DNSNames...)
	for _, ip := range o.IPs {
		ids = append(ids, acme.AuthzID{Type: "ip", Value: ip.String()})
	}
	orderURL, err := c.newOrder(ctx, ids, o.Profile, o.Replaces)
	if err != nil {
		return nil, err
	}
	order, err := c.acme.GetOrder(ctx, orderURL)
	if err != nil {
		return nil, Err(err, "reading the order")
	}
	for _, u := range order.AuthzURLs {
		if err := c.solve(ctx, u, o.Solver); err != nil {
			return nil, err
		}
	}
	if order, err = c.acme.WaitOrder(ctx, order.URI); err != nil {
		return nil, Err(err, "waiting for the order")
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: o.DNSNames, IPAddresses: o.IPs}, o.Key)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "signing the certificate request with the certificate key")
	}
	ders, _, err := c.acme.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	if err != nil {
		return nil, Err(err, "finalizing the order")
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil || !SamePublic(leaf.PublicKey, o.Key.Public()) {
		return nil, errs.New(errs.Rejected, "the server returned a certificate not for the certificate key; nothing written")
	}
	return ders, nil
}

// SamePublic reports whether two public keys are equal.
func SamePublic(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// Err turns an ACME or transport error into one that says what failed.
func Err(err error, what string) error {
	if err == nil {
		return nil
	}
	var ae *acme.Error
	if errors.As(err, &ae) {
		return serverError{errs.New(errs.Rejected, "%s: the ACME server says %s (%s)", what, ae.Detail, ae.ProblemType), ae}
	}
	var ee *errs.Error
	if errors.As(err, &ee) {
		return err
	}
	return errs.Wrap(errs.Unavailable, err, "%s", what)
}

// serverError is a problem the server reported, said for people, with the
// problem itself still in the chain (IsProblem).
type serverError struct {
	error
	problem *acme.Error
}

func (e serverError) Unwrap() []error { return []error{e.error, e.problem} }

// IsProblem reports whether err is the server's ACME problem of the given
// type, such as "alreadyReplaced" (urn:ietf:params:acme:error:NAME).
func IsProblem(err error, name string) bool {
	var ae *acme.Error
	return errors.As(err, &ae) && ae.ProblemType == "urn:ietf:params:acme:error:"+name
}
