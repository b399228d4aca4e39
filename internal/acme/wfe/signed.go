package wfe

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"signet/internal/acme"
	"signet/internal/errs"
)

// signed is a flattened JWS as ACME requests carry it (RFC 8555 §6.2),
// decoded once: go-jose's general parser cost a fifth of a request's
// front-end CPU, most of it re-encoding JSON, and allocated several
// kilobytes. Only the protected header exists; its members are read by
// exact name.
type signed struct {
	alg     jose.SignatureAlgorithm
	kid     string
	jwk     *jose.JSONWebKey // parsed by go-jose, nil without a jwk member
	nonce   string
	url     string
	input   []byte // protected "." payload, as signed
	payload []byte
	sig     []byte
}

// b64 decodes base64url, tolerating trailing padding as go-jose does.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// decodeSigned parses body as a flattened JWS with exactly the protected,
// payload and signature members and an algorithm among algs.
func decodeSigned(body []byte) (*signed, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, errs.New(errs.Malformed, "the body must be a JWS in flattened JSON serialization")
	}
	var shape map[string]json.RawMessage
	if err := json.Unmarshal(body, &shape); err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "the body is not a JWS")
	}
	var prot, payload, sig string
	for k, v := range shape {
		var dst *string
		switch k {
		case "protected":
			dst = &prot
		case "payload":
			dst = &payload
		case "signature":
			dst = &sig
		case "signatures":
			return nil, errs.New(errs.Malformed, "the JWS must use the flattened JSON serialization, with one signature")
		case "header":
			return nil, errs.New(errs.Malformed, "the JWS must not have an unprotected header")
		default:
			continue
		}
		if err := json.Unmarshal(v, dst); err != nil || string(v) == "null" {
			return nil, errs.New(errs.Malformed, "the JWS member %q is not a string", k)
		}
	}
	if _, ok := shape["protected"]; !ok || prot == "" {
		return nil, errs.New(errs.Malformed, "the JWS needs protected, payload and signature")
	}
	if _, ok := shape["payload"]; !ok {
		return nil, errs.New(errs.Malformed, "the JWS needs protected, payload and signature")
	}
	if _, ok := shape["signature"]; !ok {
		return nil, errs.New(errs.Malformed, "the JWS needs protected, payload and signature")
	}
	s := &signed{}
	var err error
	hdr, err := b64(prot)
	if err != nil {
		return nil, errs.New(errs.Malformed, "the protected header is not base64url")
	}
	if s.payload, err = b64(payload); err != nil {
		return nil, errs.New(errs.Malformed, "the payload is not base64url")
	}
	if s.sig, err = b64(sig); err != nil {
		return nil, errs.New(errs.Malformed, "the signature is not base64url")
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &h); err != nil || h == nil {
		return nil, errs.New(errs.Malformed, "the protected header is not a JSON object")
	}
	str := func(name string, dst *string) error {
		if v, ok := h[name]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return errs.New(errs.Malformed, "the protected header %q is not a string", name)
			}
		}
		return nil
	}
	var alg string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"alg", &alg}, {"kid", &s.kid}, {"nonce", &s.nonce}, {"url", &s.url}} {
		if err := str(f.name, f.dst); err != nil {
			return nil, err
		}
	}
	// Extensions a verifier must understand (RFC 7515 §4.1.11, RFC 7797)
	// are not part of ACME: refuse rather than ignore them.
	if _, ok := h["crit"]; ok {
		return nil, errs.New(errs.Malformed, "the JWS has critical header parameters, which ACME does not use")
	}
	if _, ok := h["b64"]; ok {
		return nil, errs.New(errs.Malformed, "the JWS has a b64 header parameter, which ACME does not use")
	}
	s.alg = jose.SignatureAlgorithm(alg)
	if !slices.Contains(algorithms, s.alg) {
		return nil, problem(acme.BadSignatureAlgorithm, errs.Malformed, "the JWS algorithm is not one of %v", algorithms)
	}
	if v, ok := h["jwk"]; ok {
		s.jwk = new(jose.JSONWebKey)
		if err := s.jwk.UnmarshalJSON(v); err != nil {
			return nil, errs.Wrap(errs.Malformed, err, "parsing the JWS jwk header")
		}
	}
	s.input = make([]byte, 0, len(prot)+1+len(payload))
	s.input = append(append(append(s.input, prot...), '.'), payload...)
	return s, nil
}

// verify checks the signature with key, whose type must fit the algorithm.
func (s *signed) verify(key *jose.JSONWebKey) error {
	bad := errs.New(errs.Malformed, "the JWS signature does not verify")
	if key == nil {
		return bad
	}
	switch pub := key.Key.(type) {
	case *ecdsa.PublicKey:
		var digest []byte
		var size int
		switch {
		case s.alg == jose.ES256 && pub.Curve == elliptic.P256():
			d := sha256.Sum256(s.input)
			digest, size = d[:], 32
		case s.alg == jose.ES384 && pub.Curve == elliptic.P384():
			d := sha512.Sum384(s.input)
			digest, size = d[:], 48
		default:
			return bad
		}
		if len(s.sig) != 2*size {
			return bad
		}
		r := new(big.Int).SetBytes(s.sig[:size])
		ss := new(big.Int).SetBytes(s.sig[size:])
		if !ecdsa.Verify(pub, digest, r, ss) {
			return bad
		}
	case *rsa.PublicKey:
		if s.alg != jose.RS256 {
			return bad
		}
		d := sha256.Sum256(s.input)
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], s.sig) != nil {
			return bad
		}
	case ed25519.PublicKey:
		if s.alg != jose.EdDSA || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, s.input, s.sig) {
			return bad
		}
	default:
		return bad
	}
	return nil
}
