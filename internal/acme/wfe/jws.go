package wfe

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"signet/internal/acme"
	"signet/internal/errs"
	"signet/internal/store"
)

// maxBody bounds every ACME request body; the largest legitimate one is a
// finalize with an RSA-4096 CSR naming many identifiers.
const maxBody = 64 << 10

// algorithms are the JWS algorithms accepted for account and certificate
// keys (RFC 8555 §6.2).
var algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.EdDSA}

// keyMode says which key header a resource takes.
type keyMode int

const (
	byKID keyMode = iota // an existing account signs
	byJWK                // a key not (yet) bound to an account signs: newAccount, revocation by certificate key
	either
)

// request is a verified ACME POST.
type request struct {
	auth    *authority
	url     string
	payload []byte
	jwk     *jose.JSONWebKey // the key that signed
	account store.ACMEAccount
	hasAcct bool
}

// readBody reads a bounded body.
func readBody(rw http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, errs.New(errs.Malformed, "request body is larger than %d bytes", maxBody)
	}
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "reading the request body")
	}
	return body, nil
}

// parseJWS parses a flattened JWS JSON serialization with exactly one
// signature, its protected header only, and an accepted algorithm.
func parseJWS(body []byte, algs []jose.SignatureAlgorithm) (*jose.JSONWebSignature, *jose.Header, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, nil, errs.New(errs.Malformed, "the body must be a JWS in flattened JSON serialization")
	}
	var shape struct {
		Protected  *string         `json:"protected"`
		Payload    *string         `json:"payload"`
		Signature  *string         `json:"signature"`
		Header     json.RawMessage `json:"header"`
		Signatures json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(body, &shape); err != nil {
		return nil, nil, errs.Wrap(errs.Malformed, err, "the body is not a JWS")
	}
	switch {
	case shape.Signatures != nil:
		return nil, nil, errs.New(errs.Malformed, "the JWS must use the flattened JSON serialization, with one signature")
	case shape.Header != nil:
		return nil, nil, errs.New(errs.Malformed, "the JWS must not have an unprotected header")
	case shape.Protected == nil || shape.Payload == nil || shape.Signature == nil:
		return nil, nil, errs.New(errs.Malformed, "the JWS needs protected, payload and signature")
	}
	jws, err := jose.ParseSignedJSON(string(body), algs)
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			names := make([]string, len(algs))
			for i, a := range algs {
				names[i] = string(a)
			}
			return nil, nil, &typed{typ: acme.BadSignatureAlgorithm, algorithms: names,
				err: errs.New(errs.Malformed, "the JWS algorithm is not one of %v", algs)}
		}
		return nil, nil, errs.Wrap(errs.Malformed, err, "parsing the JWS")
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, errs.New(errs.Malformed, "the JWS must have exactly one signature")
	}
	h := &jws.Signatures[0].Protected
	return jws, h, nil
}

// verify checks a POST as RFC 8555 §6.2–6.5 say: JWS shape, algorithm,
// nonce, url, then the key (kid → account, or jwk), then the signature.
func (w *WFE) verify(rw http.ResponseWriter, r *http.Request, auth *authority, mode keyMode) (*request, error) {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/jose+json" {
		return nil, &typed{typ: acme.Malformed, status: http.StatusUnsupportedMediaType,
			err: errs.New(errs.Malformed, "Content-Type must be application/jose+json, not %q", r.Header.Get("Content-Type"))}
	}
	body, err := readBody(rw, r)
	if err != nil {
		return nil, err
	}
	jws, h, err := parseJWS(body, algorithms)
	if err != nil {
		return nil, err
	}
	if h.Nonce == "" {
		return nil, problem(acme.BadNonce, errs.Malformed, "the JWS has no nonce")
	}
	if !w.nonces.Use(h.Nonce) {
		return nil, problem(acme.BadNonce, errs.Malformed, "the nonce is unknown, expired or used")
	}
	// The URL as the client named it, query included: the orders list's
	// next page is .../orders?after=ID.
	req := &request{auth: auth, url: w.base(r) + r.URL.Path}
	if r.URL.RawQuery != "" {
		req.url += "?" + r.URL.RawQuery
	}
	if u, _ := h.ExtraHeaders["url"].(string); u != req.url {
		return nil, problem(acme.Unauthorized, errs.Unauthorized, "the JWS url header %q is not the request URL %q", u, req.url)
	}
	switch {
	case h.KeyID != "" && h.JSONWebKey != nil:
		return nil, errs.New(errs.Malformed, "the JWS has both kid and jwk")
	case h.KeyID == "" && h.JSONWebKey == nil:
		return nil, errs.New(errs.Malformed, "the JWS has neither kid nor jwk")
	case h.KeyID != "" && mode == byJWK:
		return nil, errs.New(errs.Malformed, "this resource must be signed with a jwk header, not a kid")
	case h.JSONWebKey != nil && mode == byKID:
		return nil, errs.New(errs.Malformed, "this resource must be signed by an account: use a kid header, not a jwk")
	}
	if h.KeyID != "" {
		id, ok := strings.CutPrefix(h.KeyID, w.base(r)+auth.prefix+"/account/")
		if !ok || id == "" || strings.Contains(id, "/") {
			return nil, problem(acme.AccountDoesNotExist, errs.Unauthorized, "kid %q is not an account URL of this authority", h.KeyID)
		}
		e, err := w.signer(r.Context(), id)
		if errs.KindOf(err) == errs.NotFound || err == nil && e.acct.Authority != auth.name {
			return nil, problem(acme.AccountDoesNotExist, errs.Unauthorized, "account %q does not exist", id)
		}
		if err != nil {
			return nil, err
		}
		req.jwk, req.account, req.hasAcct = e.key, e.acct, true
	} else {
		if err := checkKey(h.JSONWebKey); err != nil {
			return nil, err
		}
		req.jwk = h.JSONWebKey
	}
	if req.payload, err = jws.Verify(req.jwk); err != nil {
		return nil, errs.New(errs.Malformed, "the JWS signature does not verify")
	}
	if req.hasAcct && req.account.Status != store.StatusValid {
		return nil, problem(acme.Unauthorized, errs.Unauthorized, "account %s is %s", req.account.ID, req.account.Status)
	}
	return req, nil
}

// checkKey refuses keys signet does not accept for accounts.
func checkKey(k *jose.JSONWebKey) error {
	if k == nil || !k.Valid() || !k.IsPublic() {
		return problem(acme.BadPublicKey, errs.Malformed, "the jwk is not a valid public key")
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 || pub.N.BitLen() > 8192 {
			return problem(acme.BadPublicKey, errs.Malformed, "RSA account keys need 2048 to 8192 bits")
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return problem(acme.BadPublicKey, errs.Malformed, "account keys must be ECDSA, RSA or Ed25519")
	}
	return nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint, base64url.
func thumbprint(k *jose.JSONWebKey) (string, error) {
	t, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", problem(acme.BadPublicKey, errs.Malformed, "cannot compute the key's thumbprint: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// decode reads a JSON payload; an empty one (POST-as-GET) is refused.
func decode(payload []byte, v any) error {
	if len(payload) == 0 {
		return errs.New(errs.Malformed, "the request needs a JSON payload")
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return errs.Wrap(errs.Malformed, err, "the payload is not the JSON expected")
	}
	return nil
}
