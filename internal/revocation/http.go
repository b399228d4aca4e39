package revocation

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"signet/internal/ca"
)

// MaxOCSPRequest bounds an OCSP request (one CertID and a nonce need about
// 100 bytes); anything larger is refused as malformed before it is parsed.
const MaxOCSPRequest = 1 << 10

// The plain-HTTP paths, as ca.CRLURL, ca.OCSPURL and ca.IssuerURL make them.
const (
	crlPrefix  = "/crl/"
	ocspPrefix = "/ocsp/"
	caPrefix   = "/ca/"
)

var (
	ctCRL      = []string{"application/pkix-crl"}
	ctCert     = []string{"application/pkix-cert"}
	ctOCSP     = []string{"application/ocsp-response"}
	crlCaching = "public, no-transform, max-age="
)

// Handler serves CRLs, OCSP and issuer certificates over plain HTTP, as
// relying parties fetch them (RFC 5280 4.2.1.13 and RFC 5019 want http:
// fetching a CRL over https would need a revocation check of its own).
// Paths are matched by hand, not by http.ServeMux: base64 OCSP requests in
// GET paths contain "//" and "+", which ServeMux would redirect or mangle.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		switch {
		case strings.HasPrefix(p, ocspPrefix):
			s.serveOCSP(w, r, p[len(ocspPrefix):])
		case strings.HasPrefix(p, crlPrefix):
			s.serveCRL(w, r, r.URL.Path[len(crlPrefix):])
		case strings.HasPrefix(p, caPrefix):
			s.serveCert(w, r, r.URL.Path[len(caPrefix):])
		default:
			http.Error(w, "not found: signet serves /crl/<authority>/<shard>.crl, /crl/<authority>.crl, /ocsp/<authority> and /ca/<authority>.crt here", http.StatusNotFound)
		}
	})
}

func getOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// serveCRL: /crl/<authority>/<shard>.crl, or /crl/<authority>.crl for the
// whole CRL.
func (s *Service) serveCRL(w http.ResponseWriter, r *http.Request, rest string) {
	if !getOrHead(w, r) {
		return
	}
	name, file, sharded := strings.Cut(rest, "/")
	shard, ok := ca.WholeCRL, false
	if sharded {
		num, crl := strings.CutSuffix(file, ".crl")
		n, err := strconv.Atoi(num)
		shard, ok = n, crl && err == nil && strconv.Itoa(n) == num && n >= 0
	} else {
		name, ok = strings.CutSuffix(name, ".crl")
	}
	a := s.authority(name)
	if !ok || a == nil {
		http.NotFound(w, r)
		return
	}
	d := a.crl.get(shard)
	if d == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h["Content-Type"], h["Etag"], h["Last-Modified"], h["Expires"] = ctCRL, d.etag, d.lastModified, d.expires
	// Shards are re-signed within seconds of a revocation, the whole CRL
	// within WholeCRLInterval; a cache may keep one for a few minutes,
	// never past nextUpdate.
	maxAge := min(time.Until(d.NextUpdate), 5*time.Minute)
	h.Set("Cache-Control", crlCaching+strconv.Itoa(int(max(maxAge, 0)/time.Second)))
	if match := r.Header.Get("If-None-Match"); match != "" && match == d.etag[0] {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if since, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !d.ThisUpdate.After(since) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(d.DER)))
	if r.Method == http.MethodGet {
		w.Write(d.DER)
	}
}

// serveCert: /ca/<authority>.crt, the AIA caIssuers target.
func (s *Service) serveCert(w http.ResponseWriter, r *http.Request, rest string) {
	if !getOrHead(w, r) {
		return
	}
	name, ok := strings.CutSuffix(rest, ".crt")
	a := s.authority(name)
	if !ok || a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h["Content-Type"] = ctCert
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("Content-Length", strconv.Itoa(len(a.rec.CertDER)))
	if r.Method == http.MethodGet {
		w.Write(a.rec.CertDER)
	}
}

// serveOCSP: POST /ocsp/<authority> with application/ocsp-request, or
// GET /ocsp/<authority>/<url-encoded base64 of the DER request> (RFC 6960
// appendix A.1). The authority in the path only routes: the request's
// issuer hashes pick the authority, and one not served is unauthorized.
func (s *Service) serveOCSP(w http.ResponseWriter, r *http.Request, rest string) {
	var der []byte
	switch r.Method {
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxOCSPRequest+1))
		if err != nil || len(body) > MaxOCSPRequest {
			s.writeOCSPError(w, ocsp.MalformedRequestErrorResponse)
			return
		}
		der = body
	case http.MethodGet:
		_, enc, ok := strings.Cut(rest, "/")
		if !ok || len(enc) > 2*MaxOCSPRequest {
			s.writeOCSPError(w, ocsp.MalformedRequestErrorResponse)
			return
		}
		enc, err := url.PathUnescape(enc)
		if err != nil {
			s.writeOCSPError(w, ocsp.MalformedRequestErrorResponse)
			return
		}
		if der, err = base64.StdEncoding.DecodeString(enc); err != nil {
			s.writeOCSPError(w, ocsp.MalformedRequestErrorResponse)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	resp, status, hit := s.lookup(der)
	if resp == nil {
		s.writeOCSPError(w, status)
		return
	}
	switch {
	case resp.revoked:
		s.o.Metrics.Response("revoked", hit)
	case resp.known:
		s.o.Metrics.Response("good", hit)
	default:
		s.o.Metrics.Response("unknown", hit)
	}
	h := w.Header()
	h["Content-Type"], h["Etag"], h["Last-Modified"], h["Expires"] = ctOCSP, resp.etag, resp.lastModified, resp.expires
	// RFC 5019 6.2: max-age no later than nextUpdate.
	maxAge := int(max(resp.nextUpdate.Sub(s.now()), 0) / time.Second)
	h.Set("Cache-Control", "max-age="+strconv.Itoa(maxAge)+", public, no-transform, must-revalidate")
	h.Set("Content-Length", strconv.Itoa(len(resp.der)))
	w.Write(resp.der)
}

// ocspErrors name the error responses for the metrics.
var ocspErrors = []struct {
	body []byte
	name string
}{
	{ocsp.MalformedRequestErrorResponse, "malformed"}, {ocsp.UnauthorizedErrorResponse, "unauthorized"},
	{ocsp.TryLaterErrorResponse, "tryLater"}, {ocsp.InternalErrorErrorResponse, "internalError"},
}

func (s *Service) writeOCSPError(w http.ResponseWriter, body []byte) {
	for _, e := range ocspErrors {
		if bytes.Equal(e.body, body) {
			s.o.Metrics.Response(e.name, false)
		}
	}
	h := w.Header()
	h["Content-Type"] = ctOCSP
	h.Set("Cache-Control", "no-store")
	w.Write(body)
}

// Lookup answers a DER OCSP request: the response, or nil and the error
// response to send (malformedRequest, unauthorized, internalError).
func (s *Service) Lookup(der []byte) (*response, []byte) {
	r, body, _ := s.lookup(der)
	return r, body
}

// lookup is Lookup that also says whether the response came from the
// cache, as signed before.
func (s *Service) lookup(der []byte) (_ *response, _ []byte, cached bool) {
	// Most clients send the same bytes for the same certificate (no nonce,
	// RFC 5019): those skip parsing, which is most of a request's cost.
	// The cache is keyed by what a request asks (see canonical), not by
	// whatever bytes a client sends.
	s.rawMu.RLock()
	hit, ok := s.raw[string(der)]
	s.rawMu.RUnlock()
	if ok {
		if r := hit.a.ocsp.cached(hit.k, s.now()); r != nil {
			return r, nil, true
		}
	}
	req, err := ocsp.ParseRequest(der)
	if err != nil || req.SerialNumber == nil {
		return nil, ocsp.MalformedRequestErrorResponse, false
	}
	if !slices.Contains(requestHashes, req.HashAlgorithm) {
		return nil, ocsp.UnauthorizedErrorResponse, false
	}
	a := s.issuer(req.HashAlgorithm, req.IssuerKeyHash, req.IssuerNameHash)
	if a == nil {
		return nil, ocsp.UnauthorizedErrorResponse, false
	}
	k, ok := keyOfInt(req.SerialNumber)
	if !ok {
		return nil, ocsp.MalformedRequestErrorResponse, false
	}
	rk := respKey{hash: req.HashAlgorithm, serial: k}
	resp := a.ocsp.cached(rk, s.now())
	if cached = resp != nil; !cached {
		resp, err = s.respond(a, rk, req.SerialNumber)
	}
	if errors.Is(err, errNoResponder) {
		return nil, ocsp.TryLaterErrorResponse, false
	}
	if errors.Is(err, errNotIssued) {
		return nil, ocsp.UnauthorizedErrorResponse, false
	}
	if err != nil {
		s.o.Log.Error("OCSP response", "authority", a.rec.Name, "err", err)
		return nil, ocsp.InternalErrorErrorResponse, false
	}
	if resp.known && canonical(der, req) {
		s.rawMu.Lock()
		if len(s.raw) < maxRaw {
			s.raw[string(der)] = rawHit{a, rk}
		}
		s.rawMu.Unlock()
	}
	return resp, nil, cached
}

// canonical says whether der is the one encoding of req's CertID without
// extras (no nonce, requestor name or further requests: RFC 5019's form,
// which most clients send). Only those go into the request-bytes cache, so
// it holds at most one entry per issuer, hash and serial however clients
// pad their requests.
func canonical(der []byte, req *ocsp.Request) bool {
	c, err := req.Marshal()
	return err == nil && bytes.Equal(c, der)
}

// issuer finds the served authority an OCSP CertID names.
func (s *Service) issuer(h crypto.Hash, keyHash, nameHash []byte) *authority {
	for _, a := range *s.authorities.Load() {
		if a.rec.Purpose == ca.RootPurpose {
			continue
		}
		if string(a.keyHash[h]) == string(keyHash) && string(a.nameHash[h]) == string(nameHash) {
			return a
		}
	}
	return nil
}
