package kms

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"signet/internal/errs"
)

// URI is a parsed RFC 7512 PKCS#11 URI, reduced to what kms uses.
// Its zero fields are absent attributes.
type URI struct {
	// Path attributes: they select the token and the object.
	Token        string
	Manufacturer string
	Serial       string
	Model        string
	SlotID       *uint
	Object       string // CKA_LABEL
	ID           []byte // CKA_ID
	Type         string // public, private, cert, secret-key, data

	// Query attributes: where the module is and where the PIN comes from.
	ModulePath string
	ModuleName string
	PINSource  Source
}

var objectTypes = map[string]bool{"public": true, "private": true, "cert": true, "secret-key": true, "data": true}

// ParseURI parses a "pkcs11:" URI. It refuses a pin-value attribute (a PIN
// in a URI ends up in configs, shell history and process listings), unknown
// standard attributes (a misspelt "objekt" must not widen a search to every
// key) and repeated attributes; vendor "x-" attributes are ignored.
// Backend names where the key at uri signs, for metrics: pkcs11 and the
// token's label, or software and "".
func Backend(uri string) (backend, token string) {
	if scheme(uri) != "pkcs11" {
		return "software", ""
	}
	if u, err := ParseURI(uri); err == nil {
		token = u.Token
	}
	return "pkcs11", token
}

func ParseURI(s string) (*URI, error) {
	if len(s) < 7 || !strings.EqualFold(s[:7], "pkcs11:") {
		return nil, errs.New(errs.Malformed, "PKCS#11 URI %q must start with pkcs11:", Redact(s))
	}
	rest := s[7:]
	path, query, _ := strings.Cut(rest, "?")
	u := &URI{}
	seen := map[string]bool{}
	bad := func(format string, args ...any) error {
		return errs.New(errs.Malformed, "PKCS#11 URI %q: "+format, append([]any{Redact(s)}, args...)...)
	}
	for part := range strings.SplitSeq(path, ";") {
		if part == "" {
			continue
		}
		name, raw, ok := strings.Cut(part, "=")
		if !ok {
			return nil, bad("attribute %q has no value", part)
		}
		if seen[name] {
			return nil, bad("attribute %q appears twice", name)
		}
		seen[name] = true
		val, err := unescape(raw)
		if err != nil {
			return nil, bad("attribute %s: %v", name, err)
		}
		switch name {
		case "token":
			u.Token = val
		case "manufacturer":
			u.Manufacturer = val
		case "serial":
			u.Serial = val
		case "model":
			u.Model = val
		case "object":
			u.Object = val
		case "id":
			if len(val) > 0 { // id= selects nothing, like an absent id
				u.ID = []byte(val)
			}
		case "type":
			if !objectTypes[val] {
				return nil, bad("type %q is not one of public, private, cert, secret-key, data", val)
			}
			u.Type = val
		case "slot-id":
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return nil, bad("slot-id %q is not a decimal number", val)
			}
			id := uint(n)
			u.SlotID = &id
		case "library-manufacturer", "library-description", "library-version", "slot-manufacturer", "slot-description":
			// Standard, but kms selects by token: accepted and not used.
		default:
			if !strings.HasPrefix(name, "x-") {
				return nil, bad("unknown path attribute %q", name)
			}
		}
	}
	for part := range strings.SplitSeq(query, "&") {
		if part == "" {
			continue
		}
		name, raw, ok := strings.Cut(part, "=")
		if !ok {
			return nil, bad("query attribute %q has no value", part)
		}
		if seen["?"+name] {
			return nil, bad("query attribute %q appears twice", name)
		}
		seen["?"+name] = true
		if name == "pin-value" {
			// Do not echo the URI: it holds the PIN.
			return nil, errs.New(errs.Malformed, "PKCS#11 URI with pin-value refused: %s; give the token's PIN source as pin in its [tokens.LABEL] entry of signet.toml, or --pin", sourceHint)
		}
		val, err := unescape(raw)
		if err != nil {
			return nil, bad("query attribute %s: %v", name, err)
		}
		switch name {
		case "module-path":
			u.ModulePath = val
		case "module-name":
			u.ModuleName = val
		case "pin-source":
			src, err := ParseSource(val)
			if err != nil {
				return nil, err
			}
			u.PINSource = src
		default:
			if !strings.HasPrefix(name, "x-") {
				return nil, bad("unknown query attribute %q", name)
			}
		}
	}
	return u, nil
}

// Redact is a key URI fit for messages and logs: the value of any
// pin-value attribute, a PIN in the clear, is replaced by "xxxxx".
func Redact(uri string) string {
	const attr = "pin-value="
	var b strings.Builder
	for {
		i := strings.Index(uri, attr)
		if i < 0 {
			b.WriteString(uri)
			return b.String()
		}
		b.WriteString(uri[:i+len(attr)])
		b.WriteString("xxxxx")
		uri = uri[i+len(attr):]
		if j := strings.IndexAny(uri, ";?&"); j >= 0 {
			uri = uri[j:]
		} else {
			uri = ""
		}
	}
}

// HasPINValue reports whether uri carries a pin-value attribute, a PIN in
// the clear, which ParseURI refuses.
func HasPINValue(uri string) bool { return withoutAttrs(uri, "pin-value") != uri }

// Token is how a node opens one PKCS#11 token: the module to load, the
// source of its PIN and, when labels repeat, the serial that picks it.
// Only the node's configuration says these, never a stored key URI.
type Token struct {
	Module string
	PIN    Source
	Serial string
}

// SplitURI separates an operator-given key URI into what may be stored,
// uri without module-path, pin-source and pin-value, and the token
// settings it carried, to be kept in the node's configuration: label is
// its token label, tok its module-path and pin-source (ok is false when it
// carried neither). A pin-value is refused, as by ParseURI.
func SplitURI(uri string) (bare, label string, tok Token, ok bool, err error) {
	if scheme(uri) != "pkcs11" {
		return uri, "", Token{}, false, nil
	}
	u, err := ParseURI(uri)
	if err != nil {
		return "", "", Token{}, false, err
	}
	if u.ModulePath == "" && u.PINSource == "" {
		return uri, "", Token{}, false, nil
	}
	if u.Token == "" {
		return "", "", Token{}, false, errs.New(errs.Malformed,
			"PKCS#11 URI %q names a module or PIN source but no token label: add token=LABEL, so the token can be listed in signet.toml", uri)
	}
	return withoutAttrs(uri, "module-path", "pin-source"), u.Token, Token{Module: u.ModulePath, PIN: u.PINSource, Serial: u.Serial}, true, nil
}

// StripPINValue returns uri without its pin-value attributes.
func StripPINValue(uri string) string { return withoutAttrs(uri, "pin-value") }

// withoutAttrs returns uri without the path and query attributes named.
func withoutAttrs(uri string, names ...string) string {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return uri
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	drop := func(s, sep string) string {
		parts := strings.Split(s, sep)
		keep := parts[:0]
		for _, p := range parts {
			name, _, _ := strings.Cut(p, "=")
			if !slices.Contains(names, name) {
				keep = append(keep, p)
			}
		}
		return strings.Join(keep, sep)
	}
	out := scheme + ":" + drop(path, ";")
	if q := drop(query, "&"); hasQuery && (q != "" || query == "") {
		out += "?" + q
	}
	return out
}

// String is MarshalURI(u).
func (u *URI) String() string { return MarshalURI(u) }

// MarshalURI writes u in RFC 7512 form; ParseURI(MarshalURI(u)) equals u.
// The id is always percent-encoded byte by byte, as RFC 7512 recommends.
func MarshalURI(u *URI) string {
	var b strings.Builder
	b.WriteString("pkcs11:")
	sep := ""
	// RFC 7512 lets these stand unencoded in path (pk11-path-res) and
	// query (pk11-query-res) values; everything else but unreserved is encoded.
	const inPath, inQuery = ":[]@!$'()*+,", ":[]/@!$'()*+,"
	attr := func(name, val, plain string) {
		b.WriteString(sep)
		sep = ";"
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(escape(val, plain))
	}
	if u.Token != "" {
		attr("token", u.Token, inPath)
	}
	if u.Manufacturer != "" {
		attr("manufacturer", u.Manufacturer, inPath)
	}
	if u.Serial != "" {
		attr("serial", u.Serial, inPath)
	}
	if u.Model != "" {
		attr("model", u.Model, inPath)
	}
	if u.SlotID != nil {
		attr("slot-id", strconv.FormatUint(uint64(*u.SlotID), 10), inPath)
	}
	if u.Object != "" {
		attr("object", u.Object, inPath)
	}
	if len(u.ID) > 0 {
		attr("id", string(u.ID), "-")
	}
	if u.Type != "" {
		attr("type", u.Type, inPath)
	}
	sep = "?"
	if u.ModulePath != "" {
		attr("module-path", u.ModulePath, inQuery)
		sep = "&"
	}
	if u.ModuleName != "" {
		attr("module-name", u.ModuleName, inQuery)
		sep = "&"
	}
	if u.PINSource != "" {
		attr("pin-source", string(u.PINSource), inQuery)
	}
	return b.String()
}

// unescape decodes RFC 3986 percent-encoding. The result may be any bytes
// (an id is not text): url.PathUnescape checks only the escapes.
func unescape(s string) (string, error) {
	v, err := url.PathUnescape(s)
	if err != nil {
		return "", errs.Wrap(errs.Malformed, err, "bad percent-encoding")
	}
	return v, nil
}

// escape percent-encodes every byte but RFC 3986 unreserved characters and
// those in plain; plain "-" encodes every byte, as for an id.
func escape(s string, plain string) string {
	all := plain == "-"
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		keep := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			strings.IndexByte("-._~", c) >= 0 || strings.IndexByte(plain, c) >= 0
		if keep && !all {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&15])
	}
	return b.String()
}
