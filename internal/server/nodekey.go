package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"time"

	"signet/internal/ca"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/store"
)

// The server's own TLS key is a node key, like any web server's: PKCS#8
// PEM in a 0600 file of the home (Options.OwnKeyFile), made on the first
// start and kept, never a CA key. Its certificate (Options.OwnCertFile) is
// reused by the next start while it is valid, from the server authority's
// current certificate, for the configured names, and has more than a third
// of its lifetime left; otherwise a new one is issued for the same key.

// nodeKey loads the server's TLS key, making it when the file does not
// exist, and refuses one that others may read or that is a CA's key.
func (s *Server) nodeKey(ctx context.Context) (crypto.Signer, error) {
	path := s.o.OwnKeyFile
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newNodeKey(path)
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "reading the server's TLS key")
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, errs.New(errs.Rejected, "the server's TLS key %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errs.New(errs.Malformed, "the server's TLS key %s is not a PKCS#8 PEM private key: remove it and serve makes a new one", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	signer, ok := k.(crypto.Signer)
	if err != nil || !ok {
		return nil, errs.New(errs.Malformed, "the server's TLS key %s does not parse: remove it and serve makes a new one", path)
	}
	auths, err := s.o.Store.Authorities(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range auths {
		c, err := x509.ParseCertificate(a.CertDER)
		if err != nil {
			continue
		}
		if eq, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(signer.Public()) {
			return nil, errs.New(errs.Rejected, "the server's TLS key %s is the key of authority %q; a CA key never serves TLS: remove the file and serve makes a node key", path, a.Name)
		}
	}
	return signer, nil
}

// newNodeKey makes a P-256 key and writes it to path, 0600, never over an
// existing file.
func newNodeKey(path string) (crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "server key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "server key")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "writing the server's TLS key")
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, errs.Wrap(errs.Unavailable, err, "writing the server's TLS key %s", path)
	}
	return key, nil
}

// storedOwn returns the certificate a previous start stored, with the
// authority's current chain, if it is still to be used for key: nil if
// there is none or it is not.
func (s *Server) storedOwn(ctx context.Context, key crypto.Signer, names []string, now time.Time) *tls.Certificate {
	data, err := os.ReadFile(s.o.OwnCertFile)
	if err != nil {
		return nil
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil
	}
	chain, err := s.o.CA.Chain(ctx, s.o.Authority)
	if err != nil || len(chain) == 0 {
		return nil
	}
	issuer, err := x509.ParseCertificate(chain[0])
	if err != nil || leaf.CheckSignatureFrom(issuer) != nil {
		return nil // another authority, or one re-made since
	}
	if eq, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(key.Public()) {
		return nil
	}
	var have []string
	have = append(have, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		have = append(have, ip.String())
	}
	var want []string
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		want = append(want, n)
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		return nil // the names changed
	}
	c := &tls.Certificate{Certificate: append([][]byte{leaf.Raw}, chain...), PrivateKey: key, Leaf: leaf}
	if now.Before(leaf.NotBefore) || !now.Before(renewAt(c)) {
		return nil
	}
	rec, err := s.o.Store.Certificate(ctx, ca.Serial(leaf.SerialNumber))
	if err != nil || rec.Status != store.Valid {
		return nil // revoked, or not this home's
	}
	return c
}

// storeOwn writes the server's certificate for the next start.
func (s *Server) storeOwn(c *tls.Certificate) error {
	return config.ReplaceFile(s.o.OwnCertFile, 0o644, func(w io.Writer) error {
		return pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.Leaf.Raw})
	})
}
