package wfe

import (
	"encoding/json"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"signet/internal/acme"
	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

func (w *WFE) accountURL(r *http.Request, a *authority, id string) string {
	return a.url(r, w, "account", id)
}

func (w *WFE) accountBody(r *http.Request, a *authority, acct store.ACMEAccount) acme.Account {
	out := acme.Account{Status: acct.Status, Contact: acct.Contacts, Orders: w.accountURL(r, a, acct.ID) + "/orders"}
	return out
}

// checkContacts accepts mailto: addresses, one address each.
func checkContacts(cs []string) error {
	if len(cs) > 10 {
		return problem(acme.InvalidContact, errs.Malformed, "at most 10 contacts")
	}
	for _, c := range cs {
		addr, ok := strings.CutPrefix(c, "mailto:")
		if !ok {
			return problem(acme.UnsupportedContact, errs.Malformed, "contact %q: only mailto: contacts are supported", c)
		}
		if a, err := mail.ParseAddress(addr); err != nil || a.Address != addr || strings.ContainsAny(addr, ",?") {
			return problem(acme.InvalidContact, errs.Malformed, "contact %q is not one email address", c)
		}
	}
	return nil
}

// newAccount: RFC 8555 §7.3, with onlyReturnExisting and EAB (§7.3.4).
func (w *WFE) newAccount(r *http.Request, req *request) (*response, error) {
	var in acme.NewAccountRequest
	if err := decode(req.payload, &in); err != nil {
		return nil, err
	}
	thumb, err := thumbprint(req.jwk)
	if err != nil {
		return nil, err
	}
	existing, err := w.store.ACMEAccountByKey(r.Context(), req.auth.name, thumb)
	switch {
	case err == nil && existing.Status != store.StatusValid:
		// §7.3.6: a deactivated account answers nothing but unauthorized.
		return nil, problem(acme.Unauthorized, errs.Unauthorized, "the account of this key is %s", existing.Status)
	case err == nil:
		return &response{body: w.accountBody(r, req.auth, existing), location: w.accountURL(r, req.auth, existing.ID)}, nil
	case errs.KindOf(err) != errs.NotFound:
		return nil, err
	case in.OnlyReturnExisting:
		return nil, problem(acme.AccountDoesNotExist, errs.Malformed, "no account exists with this key")
	}
	if err := checkContacts(in.Contact); err != nil {
		return nil, err
	}
	keyJSON, err := req.jwk.MarshalJSON()
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "the jwk")
	}
	acct := store.ACMEAccount{
		ID: newID(), Authority: req.auth.name, KeyID: thumb, Key: keyJSON, Contacts: in.Contact,
		Status: store.StatusValid, CreatedAt: w.now().UTC(),
	}
	switch {
	case len(in.ExternalAccountBinding) > 0 && string(in.ExternalAccountBinding) != "null":
		if acct.EABKeyID, err = w.checkEAB(r, req, in.ExternalAccountBinding, thumb); err != nil {
			return nil, err
		}
	case w.requiresEAB(r.Context(), req.auth.name):
		return nil, problem(acme.ExternalAccountRequired, errs.Unauthorized, "authority %q requires an external account binding", req.auth.name)
	}
	if err := w.o.Limits.NewAccount(r); err != nil {
		return nil, err
	}
	ev := audit.Event{Actor: "acme:" + acct.ID, Data: mustJSON(map[string]any{"key": thumb, "contact": acct.Contacts, "eab": acct.EABKeyID})}
	if err := w.store.CreateACMEAccount(r.Context(), acct, ev); err != nil {
		if errs.KindOf(err) == errs.Conflict && acct.EABKeyID == "" {
			// Another request created it meanwhile: answer as for an existing account.
			if existing, e := w.store.ACMEAccountByKey(r.Context(), req.auth.name, thumb); e == nil {
				return &response{body: w.accountBody(r, req.auth, existing), location: w.accountURL(r, req.auth, existing.ID)}, nil
			}
		}
		if acct.EABKeyID != "" && (errs.KindOf(err) == errs.Conflict || errs.KindOf(err) == errs.NotFound) {
			return nil, withType(acme.Unauthorized, errs.Wrap(errs.Unauthorized, err, "external account binding"))
		}
		return nil, err
	}
	body := w.accountBody(r, req.auth, acct)
	if acct.EABKeyID != "" {
		body.ExternalAccountBinding = in.ExternalAccountBinding
	}
	return &response{status: http.StatusCreated, body: body, location: w.accountURL(r, req.auth, acct.ID)}, nil
}

// checkEAB verifies an external account binding: an HMAC JWS by an EAB
// key of this authority, over the account's key, for this URL.
func (w *WFE) checkEAB(r *http.Request, req *request, raw json.RawMessage, thumb string) (string, error) {
	bad := func(format string, args ...any) error {
		return problem(acme.Unauthorized, errs.Unauthorized, "external account binding: "+format, args...)
	}
	// HS256 only: the keys signet hands out are 32 bytes, too short for
	// go-jose's HS384 and HS512.
	jws, h, err := parseJWS(raw, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		return "", withType(acme.Malformed, errs.Wrap(errs.Malformed, err, "external account binding"))
	}
	if h.KeyID == "" || h.Nonce != "" || h.JSONWebKey != nil {
		return "", errs.New(errs.Malformed, "external account binding: the JWS needs a kid and neither a nonce nor a jwk")
	}
	if u, _ := h.ExtraHeaders["url"].(string); u != req.url {
		return "", bad("url %q is not %q", u, req.url)
	}
	k, err := w.store.EABKey(r.Context(), h.KeyID)
	if err != nil || k.Authority != req.auth.name {
		return "", bad("unknown key %q", h.KeyID)
	}
	if k.AccountID != "" {
		return "", bad("key %q is bound to an account already", h.KeyID)
	}
	if w.o.UnsealEAB == nil {
		return "", errs.New(errs.Internal, "no EAB key unsealer configured")
	}
	key, err := w.o.UnsealEAB(k.ID, k.Sealed)
	if err != nil {
		return "", errs.Wrap(errs.Internal, err, "unsealing EAB key %q", h.KeyID)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return "", bad("the MAC does not verify")
	}
	var inner jose.JSONWebKey
	if err := inner.UnmarshalJSON(payload); err != nil {
		return "", errs.New(errs.Malformed, "external account binding: the payload is not a JWK")
	}
	if t, err := thumbprint(&inner); err != nil || t != thumb {
		return "", errs.New(errs.Malformed, "external account binding: it binds another key than the account's")
	}
	return h.KeyID, nil
}

// ownAccount checks the account in the URL is the one that signed.
func ownAccount(r *http.Request, req *request) error {
	if r.PathValue("id") != req.account.ID {
		return problem(acme.Unauthorized, errs.Unauthorized, "the request is signed by another account")
	}
	return nil
}

// fresh reads the signer's account from the store for a change to it: the
// cached copy may be up to accountTTL stale, and writing it back would undo
// a deactivation or key change made on another node meanwhile.
func (w *WFE) fresh(r *http.Request, req *request) (store.ACMEAccount, error) {
	acct, err := w.store.ACMEAccount(r.Context(), req.account.ID)
	if err != nil {
		return acct, err
	}
	if acct.Status != store.StatusValid {
		return acct, problem(acme.Unauthorized, errs.Unauthorized, "account %s is %s", acct.ID, acct.Status)
	}
	if acct.KeyID != req.account.KeyID {
		return acct, problem(acme.Unauthorized, errs.Unauthorized, "the request is not signed by the current key of account %s", acct.ID)
	}
	return acct, nil
}

// conflictRetry is when a client whose account change kept conflicting
// with others may try again.
const conflictRetry = time.Second

// changeAccount applies change to the signer's account as read from the
// store now. The store writes it only if the account is still valid with
// the signer's key; if it changed meanwhile, the account is read again
// once (a deactivation or key change then refuses the request) and the
// change tried again. A conflict that persists is answered 409 with
// Retry-After.
func (w *WFE) changeAccount(r *http.Request, req *request, change func(store.ACMEAccount) (store.ACMEAccount, error)) (store.ACMEAccount, error) {
	var err error
	for range 2 {
		var acct store.ACMEAccount
		if acct, err = w.fresh(r, req); err != nil {
			return acct, err
		}
		acct, err = change(acct)
		w.accounts.forget(acct.ID)
		if errs.KindOf(err) != errs.Conflict {
			return acct, err
		}
	}
	return store.ACMEAccount{}, errs.Later(err, conflictRetry)
}

// account: POST-as-GET, update of contacts, deactivation (§7.3.2, §7.3.6).
// A deactivation changes nothing else.
func (w *WFE) account(r *http.Request, req *request) (*response, error) {
	if err := ownAccount(r, req); err != nil {
		return nil, err
	}
	if len(req.payload) == 0 {
		return &response{body: w.accountBody(r, req.auth, req.account)}, nil
	}
	var in acme.NewAccountRequest
	if err := decode(req.payload, &in); err != nil {
		return nil, err
	}
	switch in.Status {
	case "", store.StatusValid: // clients may echo the whole account back
	case store.StatusDeactivated:
	default:
		return nil, errs.New(errs.Malformed, "an account's status can only be set to deactivated")
	}
	if in.Contact != nil {
		if err := checkContacts(in.Contact); err != nil {
			return nil, err
		}
	}
	ctx := r.Context()
	var acct store.ACMEAccount
	var err error
	switch {
	case in.Status == store.StatusDeactivated:
		acct, err = w.changeAccount(r, req, func(a store.ACMEAccount) (store.ACMEAccount, error) {
			ev := audit.Event{Actor: "acme:" + a.ID, Data: mustJSON(map[string]any{"status": store.StatusDeactivated})}
			a.Status = store.StatusDeactivated
			return a, w.store.DeactivateACMEAccount(ctx, a, ev)
		})
	case in.Contact != nil:
		acct, err = w.changeAccount(r, req, func(a store.ACMEAccount) (store.ACMEAccount, error) {
			ev := audit.Event{Actor: "acme:" + a.ID, Data: mustJSON(map[string]any{"contact": in.Contact})}
			err := w.store.UpdateACMEAccountContacts(ctx, a, in.Contact, ev)
			a.Contacts = in.Contact
			return a, err
		})
	default:
		acct, err = w.fresh(r, req)
	}
	if err != nil {
		return nil, err
	}
	return &response{body: w.accountBody(r, req.auth, acct)}, nil
}

const ordersPerPage = 100

// orders lists an account's orders (§7.1.2.1), a page at a time.
func (w *WFE) orders(r *http.Request, req *request) (*response, error) {
	if err := ownAccount(r, req); err != nil {
		return nil, err
	}
	after := r.URL.Query().Get("after")
	list, err := w.store.ACMEOrders(r.Context(), store.ACMEOrderFilter{AccountID: req.account.ID, AfterID: after, Limit: ordersPerPage + 1})
	if err != nil {
		return nil, err
	}
	out := struct {
		Orders []string `json:"orders"`
	}{Orders: []string{}}
	resp := &response{}
	if len(list) > ordersPerPage {
		list = list[:ordersPerPage]
		resp.links = []string{`<` + w.accountURL(r, req.auth, req.account.ID) + `/orders?after=` + list[len(list)-1].ID + `>;rel="next"`}
	}
	for i := range list {
		if w.orderStatus(&list[i]) == store.StatusInvalid {
			continue // §7.1.2.1: invalid orders SHOULD NOT be listed
		}
		out.Orders = append(out.Orders, req.auth.url(r, w, "order", list[i].ID))
	}
	resp.body = out
	return resp, nil
}

// keyChange rolls an account over to a new key (§7.3.5).
func (w *WFE) keyChange(r *http.Request, req *request) (*response, error) {
	jws, h, err := parseJWS(req.payload, algorithms)
	if err != nil {
		return nil, err
	}
	if h.JSONWebKey == nil || h.KeyID != "" {
		return nil, errs.New(errs.Malformed, "the inner JWS of a key change must carry the new key as jwk")
	}
	if err := checkKey(h.JSONWebKey); err != nil {
		return nil, err
	}
	if u, _ := h.ExtraHeaders["url"].(string); u != req.url {
		return nil, problem(acme.Unauthorized, errs.Unauthorized, "the inner JWS url %q is not %q", u, req.url)
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return nil, errs.New(errs.Malformed, "the inner JWS signature does not verify")
	}
	var in acme.KeyChangeRequest
	if err := decode(payload, &in); err != nil {
		return nil, err
	}
	if in.Account != w.accountURL(r, req.auth, req.account.ID) {
		return nil, problem(acme.Unauthorized, errs.Unauthorized, "the key change names account %q, not the signer's", in.Account)
	}
	var old jose.JSONWebKey
	if err := old.UnmarshalJSON(in.OldKey); err != nil {
		return nil, errs.New(errs.Malformed, "oldKey is not a JWK")
	}
	if t, err := thumbprint(&old); err != nil || t != req.account.KeyID {
		return nil, problem(acme.Unauthorized, errs.Unauthorized, "oldKey is not the account's current key")
	}
	newThumb, err := thumbprint(h.JSONWebKey)
	if err != nil {
		return nil, err
	}
	if other, err := w.store.ACMEAccountByKey(r.Context(), req.auth.name, newThumb); err == nil {
		return nil, &located{errs.New(errs.Conflict, "the new key belongs to an account already"), w.accountURL(r, req.auth, other.ID)}
	}
	newKey, err := h.JSONWebKey.MarshalJSON()
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "the new key")
	}
	acct, err := w.changeAccount(r, req, func(a store.ACMEAccount) (store.ACMEAccount, error) {
		ev := audit.Event{Actor: "acme:" + a.ID, Data: mustJSON(map[string]any{"old": a.KeyID, "new": newThumb})}
		err := w.store.ChangeACMEAccountKey(r.Context(), a, newThumb, newKey, ev)
		a.KeyID, a.Key = newThumb, newKey
		return a, err
	})
	if err != nil {
		return nil, err
	}
	return &response{body: w.accountBody(r, req.auth, acct)}, nil
}

// located is an error whose problem response carries a Location header
// (a key change to a key that has an account: §7.3.5).
type located struct {
	error
	location string
}

func (l *located) Unwrap() error { return l.error }

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
