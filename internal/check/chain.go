package check

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Expiry thresholds: a certificate warns when fewer than warnDays days
// remain, or, if it lives less than 6 weeks, less than a third of its
// lifetime (a 7-day certificate warns at 2⅓ days left, not from the start).
const warnDays = 14

// verifyChain checks the chain served against the roots: trusted and
// complete, in order, every certificate within its validity, keys and
// signatures strong enough. It returns the leaf's issuer, when the chain is
// trusted, for the revocation checks; else nil.
func verifyChain(r *Report, o Options, certs []*x509.Certificate) *x509.Certificate {
	leaf := certs[0]
	from := o.RootsFrom
	if from == "" {
		from = "the system's roots"
	}
	for i := 0; i+1 < len(certs); i++ {
		if !bytes.Equal(certs[i].RawIssuer, certs[i+1].RawSubject) || certs[i].CheckSignatureFrom(certs[i+1]) != nil {
			r.add(Warn, "chain", "served out of order: certificate %d (%s) is not issued by the next one (%s)", i, certs[i].Subject, certs[i+1].Subject)
			break
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	// Trust is judged within the leaf's validity; expiry is its own line.
	at := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	if o.Now.After(leaf.NotBefore) && o.Now.Before(leaf.NotAfter) {
		at = o.Now
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: o.Roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	var issuer *x509.Certificate
	chain := certs
	if err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			r.add(Fail, "chain", "not trusted by %s, or incomplete (an intermediate certificate missing): %v", from, err)
		} else {
			r.add(Fail, "chain", "does not verify against %s: %v", from, err)
		}
	} else {
		chain = chains[0]
		issuer = chain[min(1, len(chain)-1)] // a self-signed leaf is its own issuer
		names := make([]string, len(chain))
		for i, c := range chain {
			names[i] = c.Subject.String()
		}
		r.add(OK, "chain", "trusted by %s: %s", from, strings.Join(names, " <- "))
	}
	checkExpiry(r, o.Now, chain)
	checkKeys(r, chain)
	return issuer
}

func checkExpiry(r *Report, now time.Time, chain []*x509.Certificate) {
	for _, c := range chain {
		if now.Before(c.NotBefore) {
			r.add(Fail, "expiry", "%s is not valid before %s", c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
			return
		}
		if now.After(c.NotAfter) {
			r.add(Fail, "expiry", "%s expired on %s", c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
			return
		}
	}
	soonest := chain[0]
	for _, c := range chain[1:] {
		if c.NotAfter.Before(soonest.NotAfter) {
			soonest = c
		}
	}
	left := soonest.NotAfter.Sub(now)
	days := int(left.Hours() / 24)
	limit := warnDays * 24 * time.Hour
	if life := soonest.NotAfter.Sub(soonest.NotBefore); life < 42*24*time.Hour {
		limit = life / 3
	}
	who := "certificate"
	if soonest != chain[0] {
		who = fmt.Sprintf("chain (%s)", soonest.Subject)
	}
	if left < limit {
		r.add(Warn, "expiry", "%s expires in %d days, on %s", who, days, soonest.NotAfter.UTC().Format(time.RFC3339))
		return
	}
	r.add(OK, "expiry", "%s expires in %d days, on %s", who, days, soonest.NotAfter.UTC().Format(time.RFC3339))
}

// checkKeys wants RSA keys of 2048 bits or more, ECDSA on P-256 or larger,
// and no SHA-1 or MD5 signature on any certificate but a self-signed root.
func checkKeys(r *Report, chain []*x509.Certificate) {
	worst := OK
	var notes []string
	for i, c := range chain {
		desc := ""
		switch k := c.PublicKey.(type) {
		case *rsa.PublicKey:
			bits := k.N.BitLen()
			desc = fmt.Sprintf("RSA %d", bits)
			if bits < 2048 {
				worst = Fail
				desc += " (too small: want 2048 bits or more)"
			}
		case *ecdsa.PublicKey:
			bits := k.Curve.Params().BitSize
			desc = "ECDSA " + k.Curve.Params().Name
			if bits < 256 {
				worst = Fail
				desc += " (too small: want P-256 or larger)"
			}
		case ed25519.PublicKey:
			desc = "Ed25519"
		default:
			desc = fmt.Sprintf("%T", k)
		}
		selfSigned := bytes.Equal(c.RawIssuer, c.RawSubject)
		switch c.SignatureAlgorithm {
		case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1, x509.MD5WithRSA, x509.MD2WithRSA:
			if !selfSigned || i == 0 {
				worst = Fail
				desc += ", signed with " + c.SignatureAlgorithm.String()
			}
		}
		notes = append(notes, desc)
	}
	r.add(worst, "key", "%s", strings.Join(notes, "; "))
}
