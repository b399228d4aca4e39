package orders

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"slices"

	"signet/internal/acme"
	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/policy"
	"signet/internal/store"
)

// Finalize issues the certificate of a ready order o of authority a for
// the CSR in (§7.4), whose key must not be accountKey, the key of the
// account that owns o; it returns the order, valid, with the
// certificate's serial.
//
// The certificate and the order's move to valid are one store transaction
// (store.FinalizeOrder rides along with the certificate's record) that
// holds only if the order is still at the version read, so two nodes
// finalizing one order issue one certificate; the loser's signature never
// leaves the server. On one node a second finalize of the same order waits
// for nobody: it is told the order is busy.
func (b *Book) Finalize(ctx context.Context, a *Authority, o store.ACMEOrder, accountKey crypto.PublicKey, in acme.FinalizeRequest) (store.ACMEOrder, error) {
	if s := b.Status(&o); s != store.StatusReady {
		return o, acme.Errorf(acme.OrderNotReady, errs.Unauthorized, "order %s is %s, not ready", o.ID, s)
	}
	der, err := base64.RawURLEncoding.DecodeString(in.CSR)
	if err != nil {
		return o, acme.Errorf(acme.BadCSR, errs.Malformed, "csr is not base64url DER")
	}
	csr, err := ca.ParseCSR(der)
	if err != nil {
		return o, acme.WithType(acme.BadCSR, err)
	}
	dns, ips, err := csrMatches(csr, o.Identifiers)
	if err != nil {
		return o, err
	}
	if k, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && k.Equal(accountKey) {
		return o, acme.Errorf(acme.BadCSR, errs.Rejected, "the certificate key must not be the account key")
	}
	if err := b.checkReused(ctx, &o); err != nil {
		return o, err
	}
	key := "finalize/" + o.ID
	if _, busy := b.inflight.LoadOrStore(key, struct{}{}); busy {
		return o, acme.Errorf(acme.OrderNotReady, errs.Unauthorized, "order %s is being finalized", o.ID)
	}
	defer b.inflight.Delete(key)
	if err := b.o.Limits.Certificate(a.Name); err != nil {
		return o, err
	}
	done := o
	done.Status = store.StatusValid
	prof := a.Profiles[o.Profile]
	issued, err := b.o.CA.Issue(ctx, ca.Request{
		Authority: a.Name, CSR: csr, CommonName: commonName(o.Identifiers), DNSNames: dns, IPAddresses: ips,
		Usage: prof.Usage, Validity: prof.Validity, Actor: "acme:" + o.AccountID, Rider: store.FinalizeOrder(done),
	})
	if err != nil {
		var rs policy.Refusals
		switch k := errs.KindOf(err); {
		case k == errs.Conflict:
			err = acme.Errorf(acme.OrderNotReady, errs.Unauthorized, "order %s was finalized meanwhile", o.ID)
		case (k == errs.Rejected || k == errs.Malformed) && !errors.As(err, &rs):
			err = acme.WithType(acme.BadCSR, err)
		}
		return o, err
	}
	done.CertSerial, done.Version = issued.Serial, done.Version+1
	return done, nil
}

// commonName is the subject CN of an order's certificate: its first DNS
// identifier that fits a CN (64 octets, RFC 5280's ub-common-name), as
// validated, which Create made lowercase A-labels; none gives no CN. It
// never comes from the CSR, whose CN only has to match an identifier once
// folded ("PC1.CORP.TEST." and a Kelvin sign both fold to one), and
// would otherwise reach the certificate as the client wrote it.
func commonName(ids []store.ACMEIdentifier) string {
	for _, id := range ids {
		if id.Type == "dns" && len(id.Value) <= 64 {
			return id.Value
		}
	}
	return ""
}

// csrMatches requires the CSR to name exactly the order's identifiers, in
// its subject alternative names or (DNS names) its common name, and
// returns them for ca.Issue.
func csrMatches(csr *x509.CertificateRequest, ids []store.ACMEIdentifier) ([]string, []net.IP, error) {
	var want, got []string
	var dns []string
	var ips []net.IP
	for _, id := range ids {
		want = append(want, id.Type+":"+id.Value)
		if id.Type == "dns" {
			dns = append(dns, id.Value)
		} else if a, err := netip.ParseAddr(id.Value); err == nil {
			ips = append(ips, net.IP(a.AsSlice()))
		}
	}
	for _, n := range csr.DNSNames {
		got = append(got, "dns:"+policy.Canonical(n))
	}
	for _, ip := range csr.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			got = append(got, "ip:"+a.Unmap().String())
		}
	}
	// §7.4: a dns identifier may stand in the common name, the subject
	// alternative names or both; an IP address only among the latter.
	if cn := csr.Subject.CommonName; cn != "" && !slices.Contains(got, "dns:"+policy.Canonical(cn)) && !slices.Contains(got, "ip:"+cn) {
		if _, err := netip.ParseAddr(cn); err == nil {
			return nil, nil, acme.Errorf(acme.BadCSR, errs.Rejected, "the CSR's common name %q is an IP address missing from its subject alternative names", cn)
		}
		got = append(got, "dns:"+policy.Canonical(cn))
	}
	if len(csr.EmailAddresses)+len(csr.URIs) > 0 {
		return nil, nil, acme.Errorf(acme.BadCSR, errs.Rejected, "the CSR asks for email or URI names, which ACME orders cannot authorize")
	}
	slices.Sort(want)
	slices.Sort(got)
	got = slices.Compact(got)
	if !slices.Equal(want, got) {
		return nil, nil, acme.Errorf(acme.BadCSR, errs.Rejected, "the CSR names %v, the order %v", got, want)
	}
	return dns, ips, nil
}
