package wfe

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"signet/internal/acme"
	"signet/internal/acme/ari"
	"signet/internal/acme/va"
	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/policy"
	"signet/internal/store"
)

// orderStatus is an order's status now: the stored one once finalization
// has begun, else what its authorizations and expiry make it (§7.1.6).
func (w *WFE) orderStatus(o *store.ACMEOrder) string {
	switch o.Status {
	case store.StatusProcessing, store.StatusValid, store.StatusInvalid:
		return o.Status
	}
	if w.now().After(o.Expires) {
		return store.StatusInvalid
	}
	ready := true
	for i := range o.Authzs {
		switch o.Authzs[i].Status {
		case store.StatusValid:
		case store.StatusPending:
			ready = false
		default:
			return store.StatusInvalid
		}
	}
	if ready {
		return store.StatusReady
	}
	return store.StatusPending
}

// authzStatus is an authorization's status now: pending and valid ones
// expire with their order (§7.1.6).
func (w *WFE) authzStatus(o *store.ACMEOrder, n int) string {
	s := o.Authzs[n].Status
	if (s == store.StatusPending || s == store.StatusValid) && w.now().After(o.Expires) {
		return store.StatusExpired
	}
	return s
}

func (w *WFE) orderView(r *http.Request, a *authority, o *store.ACMEOrder) acme.Order {
	v := acme.Order{
		Status: w.orderStatus(o), Expires: o.Expires, Finalize: a.url(r, w, "order", o.ID, "finalize"),
		Identifiers: make([]acme.Identifier, len(o.Identifiers)), Authorizations: make([]string, len(o.Authzs)),
		Profile: o.Profile, Error: storedProblem(o.ErrorType, o.ErrorDetail),
	}
	if v.Error == nil && v.Status == store.StatusInvalid {
		v.Error = authzProblem(o)
	}
	for i, id := range o.Identifiers {
		v.Identifiers[i] = acme.Identifier(id)
	}
	for i := range o.Authzs {
		v.Authorizations[i] = a.url(r, w, "authz", o.ID, strconv.Itoa(i))
	}
	if o.CertSerial != "" {
		v.Certificate = a.url(r, w, "cert", o.CertSerial)
	}
	if o.Replaces != "" {
		v.Replaces = a.certID(o.Replaces)
	}
	return v
}

func (w *WFE) authzView(r *http.Request, a *authority, o *store.ACMEOrder, n int) acme.Authorization {
	az := &o.Authzs[n]
	v := acme.Authorization{Identifier: acme.Identifier(az.Identifier), Status: w.authzStatus(o, n), Expires: o.Expires,
		Wildcard: az.Wildcard, Challenges: make([]acme.Challenge, len(az.Challenges))}
	for i := range az.Challenges {
		v.Challenges[i] = w.challengeView(r, a, o, n, i)
	}
	return v
}

// authzProblem says why an order's authorizations made it invalid: the
// first failed challenge's problem, naming its identifier.
func authzProblem(o *store.ACMEOrder) *acme.Problem {
	for _, az := range o.Authzs {
		for _, c := range az.Challenges {
			if p := storedProblem(c.ErrorType, c.ErrorDetail); p != nil && c.Status == store.StatusInvalid {
				p.Identifier = &acme.Identifier{Type: az.Identifier.Type, Value: az.Identifier.Value}
				return p
			}
		}
	}
	return nil
}

func (w *WFE) challengeView(r *http.Request, a *authority, o *store.ACMEOrder, n, i int) acme.Challenge {
	c := &o.Authzs[n].Challenges[i]
	v := acme.Challenge{Type: c.Type, URL: a.url(r, w, "chall", o.ID, strconv.Itoa(n), c.Type), Status: c.Status, Token: c.Token,
		Error: storedProblem(c.ErrorType, c.ErrorDetail)}
	if !c.Validated.IsZero() {
		t := c.Validated
		v.Validated = &t
	}
	if c.Status == store.StatusPending {
		// §7.1.6: a challenge being validated is processing. The store
		// records outcomes only, so this node says so of its own running
		// validations.
		if running, ok := w.inflight.Load(validationKey(o.ID, n)); ok && running.(*validation).typ == c.Type {
			v.Status = store.StatusProcessing
		}
	}
	return v
}

func validationKey(order string, n int) string { return order + "/" + strconv.Itoa(n) }

// loadOrder reads an order of this authority that the signer owns. Another
// account's order is answered as unauthorized, never shown.
func (w *WFE) loadOrder(r *http.Request, req *request, id string) (store.ACMEOrder, error) {
	o, err := w.store.ACMEOrder(r.Context(), id)
	if err == nil && o.Authority != req.auth.name {
		err = errs.New(errs.NotFound, "order %s not found", id)
	}
	if err != nil {
		return o, err
	}
	if o.AccountID != req.account.ID {
		return o, problem(acme.Unauthorized, errs.Unauthorized, "order %s belongs to another account", id)
	}
	return o, nil
}

// newOrder: §7.4, with RFC 8738 IP identifiers, wildcards where the policy
// allows them, profiles and RFC 9773 replaces.
func (w *WFE) newOrder(r *http.Request, req *request) (*response, error) {
	var in acme.NewOrderRequest
	if err := decode(req.payload, &in); err != nil {
		return nil, err
	}
	if in.NotBefore != "" || in.NotAfter != "" {
		return nil, errs.New(errs.Malformed, "notBefore and notAfter are not supported: choose a profile")
	}
	// An authority that cannot issue now says so before the client
	// proves control of anything.
	if err := w.o.CA.Ready(r.Context(), req.auth.name); err != nil {
		return nil, err
	}
	if len(in.Identifiers) == 0 {
		return nil, errs.New(errs.Malformed, "an order needs at least one identifier")
	}
	if most := w.o.Limits.Settings().IdentifiersPerOrder; len(in.Identifiers) > most {
		return nil, errs.New(errs.RateLimited, "an order may name at most %d identifiers; split it", most)
	}
	if in.Profile == "" {
		in.Profile = "default"
	}
	if _, ok := req.auth.profiles[in.Profile]; !ok {
		return nil, problem(acme.InvalidProfile, errs.Malformed, "authority %q has no profile %q", req.auth.name, in.Profile)
	}
	var dns []string
	var ips []net.IP
	var ids []store.ACMEIdentifier
	for _, id := range in.Identifiers {
		switch id.Type {
		case "dns":
			v := policy.Canonical(id.Value)
			if !slices.Contains(dns, v) {
				dns = append(dns, v)
				ids = append(ids, store.ACMEIdentifier{Type: "dns", Value: v})
			}
		case "ip":
			a, err := netip.ParseAddr(id.Value)
			if err != nil || a.Zone() != "" {
				return nil, errs.New(errs.Malformed, "ip identifier %q is not an IP address", id.Value)
			}
			v := a.Unmap().String()
			if !slices.ContainsFunc(ids, func(x store.ACMEIdentifier) bool { return x.Type == "ip" && x.Value == v }) {
				ips = append(ips, net.IP(a.Unmap().AsSlice()))
				ids = append(ids, store.ACMEIdentifier{Type: "ip", Value: v})
			}
		default:
			return nil, problem(acme.UnsupportedIdentifier, errs.Malformed, "identifier type %q is not supported (use dns or ip)", id.Type)
		}
	}
	if err := req.auth.policy.Check(dns, ips, nil); err != nil {
		return nil, err
	}
	if err := w.checkLoad(r, req, len(ids)); err != nil {
		return nil, err
	}
	o := store.ACMEOrder{
		ID: newOrderID(w.now()), Authority: req.auth.name, AccountID: req.account.ID, Status: store.StatusPending,
		Expires: w.now().Add(w.o.OrderLifetime).UTC().Truncate(1e9), Identifiers: ids, Profile: in.Profile, CreatedAt: w.now().UTC(),
	}
	if in.Replaces != "" {
		serial, err := w.checkReplaces(r, req, in.Replaces, ids)
		if err != nil {
			return nil, err
		}
		o.Replaces = serial
	}
	o.Authzs = make([]store.ACMEAuthz, len(ids))
	for i, id := range ids {
		az := store.ACMEAuthz{Identifier: id, Status: store.StatusPending}
		types := []string{acme.HTTP01, acme.DNS01, acme.TLSALPN01}
		if id.Type == "ip" {
			types = []string{acme.HTTP01, acme.TLSALPN01}
		} else if base, ok := strings.CutPrefix(id.Value, "*."); ok {
			az.Identifier.Value, az.Wildcard, types = base, true, []string{acme.DNS01}
		}
		for _, t := range types {
			az.Challenges = append(az.Challenges, store.ACMEChallenge{Type: t, Token: newToken(), Status: store.StatusPending})
		}
		o.Authzs[i] = az
	}
	if err := w.store.CreateACMEOrder(r.Context(), o); err != nil {
		return nil, err
	}
	o.Version = 1
	return &response{status: http.StatusCreated, body: w.orderView(r, req.auth, &o), location: req.auth.url(r, w, "order", o.ID)}, nil
}

// checkLoad refuses a new order of n authorizations to an account that
// has made too many orders lately or would hold too many pending
// authorizations. Both are counted in the store, shared by every node.
func (w *WFE) checkLoad(r *http.Request, req *request, n int) error {
	if w.o.Limits == nil {
		return nil
	}
	l := w.o.Limits.Settings()
	rate := l.OrdersPerAccount
	if rate.Off() {
		rate.Per = time.Hour
	}
	now := w.now()
	load, err := w.store.ACMEAccountLoad(r.Context(), req.account.ID, now.Add(-rate.Per), now)
	switch {
	case err != nil:
		return err
	case !rate.Off() && load.OrdersSince >= rate.Count:
		return errs.Later(errs.New(errs.RateLimited, "account %s has made %d orders in the last %s (limit %s)",
			req.account.ID, load.OrdersSince, rate.Per, rate), rate.Per/time.Duration(rate.Count))
	case load.PendingAuthzs+n > l.PendingAuthzsPerAccount:
		return errs.Later(errs.New(errs.RateLimited, "account %s holds %d pending authorizations, and may hold %d: complete or deactivate some first",
			req.account.ID, load.PendingAuthzs, l.PendingAuthzsPerAccount), time.Minute)
	}
	return nil
}

// checkReplaces accepts a certificate of this account that shares an
// identifier with the new order and that no live order replaces yet
// (RFC 9773 §5).
func (w *WFE) checkReplaces(r *http.Request, req *request, certID string, ids []store.ACMEIdentifier) (string, error) {
	aki, serial, err := ari.ParseCertID(certID)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(aki, req.auth.ski) {
		return "", errs.New(errs.Malformed, "replaces: the certificate was not issued by authority %q", req.auth.name)
	}
	c, err := w.store.Certificate(r.Context(), serial)
	if err != nil || c.Authority != req.auth.name || c.Requester != "acme:"+req.account.ID {
		return "", problem(acme.Unauthorized, errs.Unauthorized, "replaces: certificate %s was not issued to this account", serial)
	}
	if !slices.ContainsFunc(ids, func(id store.ACMEIdentifier) bool {
		return id.Type == "dns" && slices.Contains(c.DNSNames, id.Value) || id.Type == "ip" && slices.Contains(c.IPAddresses, id.Value)
	}) {
		return "", errs.New(errs.Malformed, "replaces: the order shares no identifier with certificate %s", serial)
	}
	others, err := w.store.ACMEOrders(r.Context(), store.ACMEOrderFilter{Replaces: serial})
	if err != nil {
		return "", err
	}
	for i := range others {
		if w.orderStatus(&others[i]) != store.StatusInvalid {
			return "", problem(acme.AlreadyReplaced, errs.Conflict, "certificate %s is already being replaced by order %s", serial, others[i].ID)
		}
	}
	return serial, nil
}

func (w *WFE) order(r *http.Request, req *request) (*response, error) {
	o, err := w.loadOrder(r, req, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	view := w.orderView(r, req.auth, &o)
	resp := &response{body: view}
	if view.Status == store.StatusPending || view.Status == store.StatusProcessing {
		resp.retry = 1
	}
	return resp, nil
}

// authzIndex reads the order and the index of the authorization in the URL.
func (w *WFE) authzIndex(r *http.Request, req *request) (store.ACMEOrder, int, error) {
	o, err := w.loadOrder(r, req, r.PathValue("id"))
	if err != nil {
		return o, 0, err
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= len(o.Authzs) {
		return o, 0, errs.New(errs.NotFound, "no such authorization")
	}
	return o, n, nil
}

// authz: POST-as-GET, or deactivation (§7.5.2).
func (w *WFE) authz(r *http.Request, req *request) (*response, error) {
	o, n, err := w.authzIndex(r, req)
	if err != nil {
		return nil, err
	}
	if len(req.payload) > 0 {
		var in acme.StatusUpdate
		if err := decode(req.payload, &in); err != nil {
			return nil, err
		}
		if in.Status != store.StatusDeactivated {
			return nil, errs.New(errs.Malformed, "an authorization's status can only be set to deactivated")
		}
		if s := w.authzStatus(&o, n); s != store.StatusPending && s != store.StatusValid {
			return nil, errs.New(errs.Malformed, "a %s authorization cannot be deactivated", s)
		}
		o.Authzs[n].Status = store.StatusDeactivated
		if err := w.store.UpdateACMEOrder(r.Context(), o); err != nil {
			return nil, err
		}
	}
	resp := &response{body: w.authzView(r, req.auth, &o, n)}
	if o.Authzs[n].Status == store.StatusPending {
		resp.retry = 1
	}
	return resp, nil
}

// challenge: POST-as-GET, or the client's signal that it is ready (§7.5.1).
// Validation runs in the background; the client polls.
func (w *WFE) challenge(r *http.Request, req *request) (*response, error) {
	o, n, err := w.authzIndex(r, req)
	if err != nil {
		return nil, err
	}
	typ := r.PathValue("type")
	i := slices.IndexFunc(o.Authzs[n].Challenges, func(c store.ACMEChallenge) bool { return c.Type == typ })
	if i < 0 {
		return nil, errs.New(errs.NotFound, "no %s challenge in this authorization", typ)
	}
	view := w.challengeView(r, req.auth, &o, n, i)
	resp := &response{body: &view, links: []string{`<` + req.auth.url(r, w, "authz", o.ID, strconv.Itoa(n)) + `>;rel="up"`}}
	if view.Status == store.StatusProcessing {
		resp.retry = 1
	}
	if len(req.payload) == 0 || w.authzStatus(&o, n) != store.StatusPending || o.Authzs[n].Challenges[i].Status != store.StatusPending {
		return resp, nil
	}
	if err := w.o.Limits.CanValidate(o.AccountID, o.Authzs[n].Identifier.Value); err != nil {
		return nil, err
	}
	key := validationKey(o.ID, n)
	v := &validation{done: make(chan struct{}), typ: typ}
	if running, busy := w.inflight.LoadOrStore(key, v); busy {
		v = running.(*validation)
	} else {
		c := o.Authzs[n].Challenges[i]
		keyAuth := c.Token + "." + req.account.KeyID
		w.bg.Add(1)
		go w.validate(o, n, c.Type, c.Token, acme.Identifier(o.Authzs[n].Identifier), keyAuth, key, v)
	}
	// Most validations take milliseconds: waiting a little for the outcome
	// spares the client a poll (and Retry-After's second); a slow one is
	// left running and reported as processing.
	t := time.NewTimer(w.o.ValidationWait)
	defer t.Stop()
	select {
	case <-v.done:
		if !v.recorded {
			// Another request's validation, or one that lost a race: the
			// store says what happened.
			if o, err = w.store.ACMEOrder(r.Context(), o.ID); err != nil {
				break
			}
		} else {
			o = v.order
		}
		view = w.challengeView(r, req.auth, &o, n, i)
		resp.body = &view
		return resp, nil
	case <-t.C:
	case <-r.Context().Done():
	}
	view.Status, resp.retry = store.StatusProcessing, 1
	return resp, nil
}

// validation is one running validation; after done, order is the order as
// recorded with its outcome, if recorded.
type validation struct {
	typ      string
	done     chan struct{}
	order    store.ACMEOrder
	recorded bool
}

// validate runs one validation and records its outcome in the order, read
// again only if it changed meanwhile (a compare-and-swap on its version).
func (w *WFE) validate(o store.ACMEOrder, n int, typ, token string, id acme.Identifier, keyAuth, key string, v *validation) {
	defer w.bg.Done()
	defer close(v.done)
	defer w.inflight.Delete(key)
	verr := w.o.VA.Validate(w.bgCtx, typ, id, token, keyAuth)
	for try := range 5 {
		if try > 0 {
			var err error
			if o, err = w.store.ACMEOrder(w.bgCtx, o.ID); err != nil {
				return
			}
		}
		az := &o.Authzs[n]
		i := slices.IndexFunc(az.Challenges, func(c store.ACMEChallenge) bool { return c.Type == typ })
		if az.Status != store.StatusPending || i < 0 {
			return
		}
		c := &az.Challenges[i]
		if verr == nil {
			c.Status, c.Validated, az.Status = store.StatusValid, w.now().UTC().Truncate(1e9), store.StatusValid
		} else {
			c.Status, az.Status = store.StatusInvalid, store.StatusInvalid
			c.ErrorType, c.ErrorDetail = string(acme.Connection), verr.Error()
			var f *va.Failure
			if errors.As(verr, &f) {
				c.ErrorType = string(f.Type)
			}
		}
		err := w.store.UpdateACMEOrder(w.bgCtx, o)
		if err == nil {
			w.log.Info("acme validation", "account", o.AccountID, "authority", o.Authority, "identifier", id.Type+":"+id.Value,
				"challenge", typ, "outcome", c.Status, "problem", c.ErrorType)
			if verr != nil {
				w.o.Limits.ValidationFailed(o.AccountID, id.Value)
			}
			o.Version++
			v.order, v.recorded = o, true
			return
		}
		if errs.KindOf(err) != errs.Conflict {
			if w.bgCtx.Err() == nil {
				w.log.Warn("acme: recording a validation", "order", o.ID, "err", err)
			}
			return
		}
	}
}

// finalize checks the CSR against the order and issues through ca.Issue.
func (w *WFE) finalize(r *http.Request, req *request) (_ *response, err error) {
	o, err := w.loadOrder(r, req, r.PathValue("id"))
	defer func() {
		outcome, typ := "issued", ""
		if err != nil {
			outcome, typ = "refused", strings.TrimPrefix(toProblem(err).Type, acme.ErrorNS)
		}
		ids := make([]string, len(o.Identifiers))
		for i, id := range o.Identifiers {
			ids[i] = id.Type + ":" + id.Value
		}
		w.log.Info("acme finalize", "account", req.account.ID, "authority", req.auth.name, "order", o.ID,
			"identifiers", strings.Join(ids, ","), "outcome", outcome, "problem", typ)
	}()
	if err != nil {
		return nil, err
	}
	if s := w.orderStatus(&o); s != store.StatusReady {
		return nil, problem(acme.OrderNotReady, errs.Unauthorized, "order %s is %s, not ready", o.ID, s)
	}
	var in acme.FinalizeRequest
	if err := decode(req.payload, &in); err != nil {
		return nil, err
	}
	der, err := base64.RawURLEncoding.DecodeString(in.CSR)
	if err != nil {
		return nil, problem(acme.BadCSR, errs.Malformed, "csr is not base64url DER")
	}
	csr, err := ca.ParseCSR(der)
	if err != nil {
		return nil, withType(acme.BadCSR, err)
	}
	dns, ips, err := csrMatches(csr, o.Identifiers)
	if err != nil {
		return nil, err
	}
	if k, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && k.Equal(req.jwk.Key) {
		return nil, problem(acme.BadCSR, errs.Rejected, "the certificate key must not be the account key")
	}
	// A second finalize of the same order on this node waits for nobody:
	// it is told the order is busy. Across nodes the store decides: the
	// certificate and the order's move to valid are one transaction that
	// holds only if the order is still at the version read here.
	key := "finalize/" + o.ID
	if _, busy := w.inflight.LoadOrStore(key, struct{}{}); busy {
		return nil, problem(acme.OrderNotReady, errs.Unauthorized, "order %s is being finalized", o.ID)
	}
	defer w.inflight.Delete(key)
	if err := w.o.Limits.Certificate(req.auth.name); err != nil {
		return nil, err
	}
	done := o
	done.Status = store.StatusValid
	prof := req.auth.profiles[o.Profile]
	issued, err := w.o.CA.Issue(r.Context(), ca.Request{
		Authority: req.auth.name, CSR: csr, CommonName: commonName(o.Identifiers), DNSNames: dns, IPAddresses: ips,
		Usage: prof.usage, Validity: prof.validity, Actor: "acme:" + req.account.ID, Finalizes: &done,
	})
	if err != nil {
		var rs policy.Refusals
		switch k := errs.KindOf(err); {
		case k == errs.Conflict:
			err = problem(acme.OrderNotReady, errs.Unauthorized, "order %s was finalized meanwhile", o.ID)
		case (k == errs.Rejected || k == errs.Malformed) && !errors.As(err, &rs):
			err = withType(acme.BadCSR, err)
		}
		return nil, err
	}
	done.CertSerial, done.Version = issued.Serial, done.Version+1
	return &response{body: w.orderView(r, req.auth, &done), location: req.auth.url(r, w, "order", o.ID)}, nil
}

// commonName is the subject CN of an order's certificate: its first DNS
// identifier that fits a CN (64 octets, RFC 5280's ub-common-name), as
// validated, which newOrder made lowercase A-labels; none gives no CN. It
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
			return nil, nil, problem(acme.BadCSR, errs.Rejected, "the CSR's common name %q is an IP address missing from its subject alternative names", cn)
		}
		got = append(got, "dns:"+policy.Canonical(cn))
	}
	if len(csr.EmailAddresses)+len(csr.URIs) > 0 {
		return nil, nil, problem(acme.BadCSR, errs.Rejected, "the CSR asks for email or URI names, which ACME orders cannot authorize")
	}
	slices.Sort(want)
	slices.Sort(got)
	got = slices.Compact(got)
	if !slices.Equal(want, got) {
		return nil, nil, problem(acme.BadCSR, errs.Rejected, "the CSR names %v, the order %v", got, want)
	}
	return dns, ips, nil
}

// certificate downloads the PEM chain: leaf, then the issuing authorities.
// The URL names the serial; the certificate's requester names its account.
func (w *WFE) certificate(r *http.Request, req *request) (*response, error) {
	c, err := w.store.Certificate(r.Context(), r.PathValue("id"))
	if err != nil || c.Authority != req.auth.name {
		return nil, errs.New(errs.NotFound, "no such certificate")
	}
	if c.Requester != "acme:"+req.account.ID {
		return nil, problem(acme.Unauthorized, errs.Unauthorized, "certificate %s was not issued to this account", c.Serial)
	}
	var b bytes.Buffer
	b.Grow(1500 * (1 + len(req.auth.chain)))
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
	for _, der := range req.auth.chain {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return &response{raw: b.Bytes(), ctype: "application/pem-certificate-chain"}, nil
}
