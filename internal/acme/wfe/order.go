package wfe

import (
	"bytes"
	"encoding/pem"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"signet/internal/acme"
	"signet/internal/acme/orders"
	"signet/internal/errs"
	"signet/internal/store"
)

// orderStatus is an order's status now (orders.Book.Status).
func (w *WFE) orderStatus(o *store.ACMEOrder) string { return w.book.Status(o) }

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
		// A reused authorization is named by its source's URL: one
		// authorization, whichever order the client reaches it from.
		id, n, ok := orders.ReusedSource(&o.Authzs[i])
		if !ok {
			id, n = o.ID, i
		}
		v.Authorizations[i] = a.url(r, w, "authz", id, strconv.Itoa(n))
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
	v := acme.Authorization{Identifier: acme.Identifier(az.Identifier), Status: w.book.AuthzStatus(o, n), Expires: orders.AuthzExpires(o, n),
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
	if c.Status == store.StatusPending && w.book.Validating(o.ID, n, c.Type) {
		v.Status = store.StatusProcessing // §7.1.6
	}
	return v
}

// loadOrder reads an order of this authority that the signer owns.
func (w *WFE) loadOrder(r *http.Request, req *request, id string) (store.ACMEOrder, error) {
	return w.book.Order(r.Context(), &req.auth.order, req.account.ID, id)
}

// newOrder: §7.4 (orders.Book.Create), with one log line per attempt.
func (w *WFE) newOrder(r *http.Request, req *request) (_ *response, err error) {
	var in acme.NewOrderRequest
	var o store.ACMEOrder
	defer func() {
		ids := make([]string, len(in.Identifiers))
		for i, id := range in.Identifiers {
			ids[i] = id.Type + ":" + id.Value
		}
		outcome, typ := "created", ""
		if err != nil {
			outcome, typ = "refused", problemName(err)
		}
		w.log.Info("acme order", "account", req.account.ID, "authority", req.auth.name, "order", o.ID,
			"identifiers", strings.Join(ids, ","), "profile", in.Profile, "outcome", outcome, "problem", typ)
	}()
	if err := decode(req.payload, &in); err != nil {
		return nil, err
	}
	// An authority that cannot issue now says so before the client
	// proves control of anything.
	if err := w.o.CA.Ready(r.Context(), req.auth.name); err != nil {
		return nil, err
	}
	if o, err = w.book.Create(r.Context(), &req.auth.order, req.account.ID, in); err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, body: w.orderView(r, req.auth, &o), location: req.auth.url(r, w, "order", o.ID)}, nil
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
		if o, err = w.book.Deactivate(r.Context(), o, n); err != nil {
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
	if len(req.payload) == 0 {
		return resp, nil
	}
	v, err := w.book.Validate(o, n, typ, req.account.KeyID)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return resp, nil
	}
	// Most validations take milliseconds: waiting a little for the outcome
	// spares the client a poll (and Retry-After's second); a slow one is
	// left running and reported as processing.
	t := time.NewTimer(w.o.ValidationWait)
	defer t.Stop()
	select {
	case <-v.Done():
		if o, err = v.Order(r.Context()); err != nil {
			break
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

// finalize: §7.4 (orders.Book.Finalize), with one log line per attempt.
func (w *WFE) finalize(r *http.Request, req *request) (_ *response, err error) {
	o, err := w.loadOrder(r, req, r.PathValue("id"))
	defer func() {
		outcome, typ := "issued", ""
		if err != nil {
			outcome, typ = "refused", problemName(err)
		}
		ids := make([]string, len(o.Identifiers))
		for i, id := range o.Identifiers {
			ids[i] = id.Type + ":" + id.Value
		}
		w.log.Info("acme finalize", "account", req.account.ID, "authority", req.auth.name, "order", o.ID,
			"identifiers", strings.Join(ids, ","), "outcome", outcome, "problem", typ, "serial", o.CertSerial)
		if err == nil {
			w.log.Info("issued", "serial", o.CertSerial, "authority", req.auth.name, "requester", "acme:"+req.account.ID,
				"identifiers", strings.Join(ids, ","))
		}
	}()
	if err != nil {
		return nil, err
	}
	var in acme.FinalizeRequest
	if err := decode(req.payload, &in); err != nil {
		return nil, err
	}
	if o, err = w.book.Finalize(r.Context(), &req.auth.order, o, req.jwk.Key, in); err != nil {
		return nil, err
	}
	return &response{body: w.orderView(r, req.auth, &o), location: req.auth.url(r, w, "order", o.ID)}, nil
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
