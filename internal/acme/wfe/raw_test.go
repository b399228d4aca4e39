package wfe_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"
	xacme "golang.org/x/crypto/acme"
)

// problemDoc is what the server answers on errors.
type problemDoc struct {
	Type        string `json:"type"`
	Detail      string `json:"detail"`
	Status      int    `json:"status"`
	Subproblems []struct {
		Type       string `json:"type"`
		Identifier struct {
			Type, Value string
		} `json:"identifier"`
	} `json:"subproblems"`
	Algorithms []string `json:"algorithms"`
}

func (e *env) nonce() string {
	e.t.Helper()
	resp, err := e.ts.Client().Head(e.ts.URL + "/acme/default/new-nonce")
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Replay-Nonce")
}

// jws signs payload as a flattened JWS: with kid if set, else with the jwk.
type jwsOpts struct {
	alg jose.SignatureAlgorithm
	key any // signing key; default the given signer
}

func signJWS(t *testing.T, key crypto.Signer, kid, url, nonce string, payload []byte, o *jwsOpts) []byte {
	t.Helper()
	alg := jose.ES256
	var skey any = key
	if o != nil && o.alg != "" {
		alg = o.alg
	}
	if o != nil && o.key != nil {
		skey = o.key
	}
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"url": url}}
	if nonce != "" {
		opts.ExtraHeaders["nonce"] = nonce
	}
	if kid != "" {
		opts.ExtraHeaders["kid"] = kid
	} else {
		opts.EmbedJWK = true
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: skey}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	// go-jose leaves out an empty payload; POST-as-GET sends it as "".
	var m map[string]any
	json.Unmarshal([]byte(obj.FullSerialize()), &m)
	if _, ok := m["payload"]; !ok {
		m["payload"] = ""
	}
	b, _ := json.Marshal(m)
	return b
}

// post sends a signed request and decodes a problem if there is one.
func (e *env) post(url string, body []byte) (*http.Response, []byte, *problemDoc) {
	e.t.Helper()
	resp, err := e.ts.Client().Post(url, "application/jose+json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		var p problemDoc
		json.Unmarshal(b, &p)
		return resp, b, &p
	}
	return resp, b, nil
}

// signed posts payload to url signed by key under kid (a fresh nonce).
func (e *env) signed(key crypto.Signer, kid, url string, payload []byte) (*http.Response, []byte, *problemDoc) {
	return e.post(url, signJWS(e.t, key, kid, url, e.nonce(), payload, nil))
}

func wantProblem(t *testing.T, p *problemDoc, typ string) {
	t.Helper()
	if p == nil {
		t.Fatalf("no problem document, want %s", typ)
	}
	if p.Type != "urn:ietf:params:acme:error:"+typ {
		t.Fatalf("problem %s (%s), want %s", p.Type, p.Detail, typ)
	}
}

// challenge orders name and returns the order and its challenge of type
// typ, not yet answered.
func (e *env) challenge(t *testing.T, c *xacme.Client, name, typ string) (*xacme.Order, *xacme.Challenge) {
	t.Helper()
	ctx := context.Background()
	o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: name}})
	if err != nil {
		t.Fatal(err)
	}
	az, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range az.Challenges {
		if ch.Type == typ {
			return o, ch
		}
	}
	t.Fatalf("the authorization of %s has no %s challenge", name, typ)
	return nil, nil
}

// readyOrder makes an order for name and solves it with http-01.
func (e *env) readyOrder(c *xacme.Client, names ...string) *xacme.Order {
	e.t.Helper()
	var ids []xacme.AuthzID
	for _, n := range names {
		ids = append(ids, xacme.AuthzID{Type: "dns", Value: n})
	}
	o, err := c.AuthorizeOrder(context.Background(), ids)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, u := range o.AuthzURLs {
		e.solve(c, u, "http-01")
	}
	o, err = c.WaitOrder(context.Background(), o.URI)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}
