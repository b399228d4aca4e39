package wfe

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"net/http"
	"strconv"

	"signet/internal/acme"
	"signet/internal/acme/ari"
	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/store"
)

// revoke: revokeCert signed by the account that ordered the certificate,
// by an account that holds valid authorizations for every identifier in
// it, or by the certificate's own key (§7.6). Revocation goes through
// ca.Revoke.
func (w *WFE) revoke(r *http.Request, req *request) (*response, error) {
	var in acme.RevokeRequest
	if err := decode(req.payload, &in); err != nil {
		return nil, err
	}
	der, err := base64.RawURLEncoding.DecodeString(in.Certificate)
	if err != nil {
		return nil, errs.New(errs.Malformed, "certificate is not base64url DER")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "certificate")
	}
	reason := 0
	if in.Reason != nil {
		reason = *in.Reason
	}
	if ca.ReasonName(reason) == "unknown" {
		return nil, problem(acme.BadRevocationReason, errs.Malformed, "revocation reason %d is not accepted", reason)
	}
	serial := ca.Serial(cert.SerialNumber)
	rec, err := w.store.Certificate(r.Context(), serial)
	if err != nil || rec.Authority != req.auth.name || !bytes.Equal(rec.DER, der) {
		return nil, errs.New(errs.NotFound, "authority %q did not issue this certificate", req.auth.name)
	}
	actor := ""
	if req.hasAcct {
		// ca.Issue recorded the ordering account as the requester.
		if rec.Requester != "acme:"+req.account.ID {
			holds, err := w.holdsAuthorizations(r, req.account.ID, cert)
			if err != nil {
				return nil, err
			}
			if !holds {
				return nil, problem(acme.Unauthorized, errs.Unauthorized,
					"certificate %s was not issued to this account, and the account holds no valid authorizations for all its identifiers", serial)
			}
		}
		actor = "acme:" + req.account.ID
	} else {
		k, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !k.Equal(req.jwk.Key) {
			return nil, problem(acme.Unauthorized, errs.Unauthorized, "the request is not signed by the certificate's key")
		}
		actor = "acme:certificate-key"
	}
	// An already revoked certificate is the store's Conflict.
	if _, err := w.o.CA.Revoke(r.Context(), serial, reason, actor); err != nil {
		if errs.KindOf(err) == errs.Conflict {
			return nil, problem(acme.AlreadyRevoked, errs.Malformed, "certificate %s is already revoked", serial)
		}
		return nil, err
	}
	w.log.Info("revoked", "serial", serial, "authority", req.auth.name, "reason", ca.ReasonName(reason), "actor", actor)
	return &response{raw: []byte{}}, nil
}

// maxRevocationScan bounds how many of an account's orders a revocation
// reads looking for authorizations; orders are deleted once stale, so an
// account reaches it only by ordering that much within an order lifetime.
const maxRevocationScan = 10000

// holdsAuthorizations reports whether the account holds, in its orders, an
// unexpired valid authorization for each identifier of cert (§7.6): its
// DNS names (a wildcard name by a wildcard authorization) and IP addresses.
func (w *WFE) holdsAuthorizations(r *http.Request, account string, cert *x509.Certificate) (bool, error) {
	need := map[store.ACMEIdentifier]bool{}
	for _, n := range cert.DNSNames {
		need[store.ACMEIdentifier{Type: "dns", Value: n}] = true
	}
	for _, ip := range cert.IPAddresses {
		need[store.ACMEIdentifier{Type: "ip", Value: ip.String()}] = true
	}
	if len(need) == 0 {
		return false, nil
	}
	after := ""
	for scanned := 0; scanned < maxRevocationScan; {
		page, err := w.store.ACMEOrders(r.Context(), store.ACMEOrderFilter{AccountID: account, AfterID: after, Limit: ordersPerPage})
		if err != nil {
			return false, err
		}
		for _, o := range page {
			for i, az := range o.Authzs {
				// A reused authorization counts through its source, which
				// is among these orders while it is valid.
				if w.book.AuthzStatus(&o, i) != store.StatusValid || az.Reused != "" {
					continue
				}
				id := az.Identifier
				if az.Wildcard {
					id.Value = "*." + id.Value
				}
				delete(need, id)
			}
			if len(need) == 0 {
				return true, nil
			}
		}
		if len(page) < ordersPerPage {
			break
		}
		scanned += len(page)
		after = page[len(page)-1].ID
	}
	return false, nil
}

// renewalInfo answers GET renewal-info/<certID> (RFC 9773 §4).
func (w *WFE) renewalInfo(rw http.ResponseWriter, r *http.Request) {
	a := w.reqAuthority(rw, r)
	if a == nil {
		return
	}
	aki, serial, err := ari.ParseCertID(r.PathValue("certid"))
	if err != nil {
		w.writeProblem(rw, r, err)
		return
	}
	rec, err := w.store.Certificate(r.Context(), serial)
	if err != nil || rec.Authority != a.name || !bytes.Equal(aki, a.ski) {
		w.writeProblem(rw, r, errs.New(errs.NotFound, "authority %q has no certificate %s", a.name, serial))
		return
	}
	info := acme.RenewalInfo{SuggestedWindow: ari.Window(rec.NotBefore, rec.NotAfter, rec.Status == store.Revoked, w.now())}
	rw.Header().Set("Retry-After", strconv.Itoa(int(ari.RetryAfter.Seconds())))
	writeJSON(rw, http.StatusOK, info)
}

// certID renders a serial of this authority as an RFC 9773 identifier.
func (a *authority) certID(serial string) string {
	b, err := hex.DecodeString(serial)
	if err != nil {
		return ""
	}
	return ari.CertID(&x509.Certificate{AuthorityKeyId: a.ski, SerialNumber: new(big.Int).SetBytes(b)})
}
