package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"time"

	"signet/internal/errs"
)

// selfSignedValidity is the life of a self-signed server certificate; it
// is replaced as soon as the server's authority can issue one.
const selfSignedValidity = 90 * 24 * time.Hour

// SelfSignedServer makes a TLS server certificate for the names, signed by
// its own fresh in-memory key, never by a CA key and never recorded: what
// serve uses when the authority of its own certificate cannot issue one
// (locked, unavailable) at its first start. Clients check it by its
// fingerprint.
func SelfSignedServer(dns []string, ips []net.IP) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "server key")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "serial")
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "signet (self-signed until its authority can issue)"},
		NotBefore: now.Add(-backdate), NotAfter: now.Add(selfSignedValidity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: dns, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "self-signed server certificate")
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "self-signed server certificate")
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
