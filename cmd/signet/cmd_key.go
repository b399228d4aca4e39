package main

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"signet/internal/errs"
	"signet/internal/kms"
)

// cmdKeyCSR makes a certificate request signed by a key on a token, on a
// machine with or without a home: the user's token need not be where the
// CA is.
func cmdKeyCSR(e *env, args []string) error {
	f := newFlags(e, "key csr")
	var u unlockFlags
	u.register(f)
	var dns, emails listFlag
	uri := f.String("uri", "", "key `URI`: pkcs11:token=T;object=NAME (or file:PATH)")
	cn := f.String("cn", "", "subject common `NAME` (default: the first name)")
	f.Var(&dns, "dns", "DNS `NAME` to request (repeatable, or comma-separated)")
	f.Var(&emails, "email", "email `ADDRESS` to request (repeatable)")
	out := f.String("out", "", "write the request (PEM) to `FILE`; - for standard output")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *uri == "" || *out == "" {
		return badUsage("--uri URI and --out FILE are required")
	}
	if *cn == "" && len(dns) == 0 && len(emails) == 0 {
		return badUsage("give the names to request: --cn NAME, --dns NAME or --email ADDRESS")
	}
	_, keys, bare, done, err := keyContext(e, f, u, *uri)
	if err != nil {
		return err
	}
	defer done()
	signer, err := keys.Signer(e.ctx, bare)
	if err != nil {
		return err
	}
	der, err := subjectCSR(signer, *cn, dns, emails)
	if err != nil {
		return err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if *out == "-" {
		_, err = e.stdout.Write(data)
		return err
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		return errs.Wrap(errs.Unavailable, err, "writing the request")
	}
	fmt.Fprintf(e.stdout, "wrote %s (request signed by %s)\n", *out, bare)
	return nil
}

// subjectCSR is a PKCS#10 request for the names, signed by signer: the
// proof that whoever asks holds the key.
func subjectCSR(signer crypto.Signer, cn string, dns, emails []string) ([]byte, error) {
	switch {
	case cn != "":
	case len(dns) > 0:
		cn = dns[0]
	case len(emails) > 0:
		cn = emails[0]
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: dns, EmailAddresses: emails,
	}, signer)
	if err != nil {
		return nil, errs.Wrap(errs.KindOf(err), err, "signing the request")
	}
	return der, nil
}

// cmdKeyImportCert writes a certificate (and with --chain its issuers)
// to the token beside its key, for software that finds the certificate
// there (OpenVPN's --pkcs11-id, browsers, ssh's PKCS#11 support).
func cmdKeyImportCert(e *env, args []string) error {
	f := newFlags(e, "key import-cert")
	var u unlockFlags
	u.register(f)
	uri := f.String("uri", "", "key `URI`: pkcs11:token=T;object=NAME")
	certFile := f.String("cert", "", "PEM `FILE`: the key's certificate first, then (for --chain) its issuers")
	withChain := f.Bool("chain", false, "also write the CA certificates that follow the first one in --cert")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if !strings.HasPrefix(*uri, "pkcs11:") || *certFile == "" {
		return badUsage("--uri 'pkcs11:token=T;object=NAME' and --cert FILE are required")
	}
	certs, err := readCertificates(*certFile)
	if err != nil {
		return err
	}
	if !*withChain {
		certs = certs[:1]
	}
	_, keys, bare, done, err := keyContext(e, f, u, *uri)
	if err != nil {
		return err
	}
	defer done()
	res, err := keys.ImportCertificate(e.ctx, bare, certs[0], certs[1:])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, res)
	}
	printImported(e, res, certs[0])
	return nil
}

func printImported(e *env, res kms.Imported, leaf *x509.Certificate) {
	if res.NewID {
		fmt.Fprintf(e.stdout, "key %q had no CKA_ID: gave it id %s\n", res.Label, res.ID)
	}
	state := "wrote"
	if !res.Written {
		state = "already on the token:"
	}
	fmt.Fprintf(e.stdout, "%s certificate %x (%s) on token %q, label %q, id %s\n", state, leaf.SerialNumber, leaf.Subject, res.Token, res.Label, res.ID)
	if res.Replaced > 0 {
		fmt.Fprintf(e.stdout, "removed %d earlier certificate(s) of this key\n", res.Replaced)
	}
	if res.Chain+res.Present > 0 {
		fmt.Fprintf(e.stdout, "CA certificates: %d written, %d already on the token\n", res.Chain, res.Present)
	}
}

// readCertificates reads the certificates of a PEM file, at least one.
func readCertificates(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, errs.Wrap(errs.NotFound, err, "reading the certificate")
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errs.Wrap(errs.Malformed, err, "%s: certificate %d cannot be parsed", file, len(certs)+1)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errs.New(errs.Malformed, "%s holds no PEM certificate: give the file signet issue --out wrote", file)
	}
	return certs, nil
}
