package policy

import (
	"net"
	"strconv"
	"strings"
)

// dnsSyntax returns why name is not a DNS name signet certifies, or "".
// The rules are RFC 1034/1123 host names (LDH labels) as the Baseline
// Requirements narrow them: no underscores, no trailing dot, lower case,
// no name that is an IP address or ends in an all-numeric label (which
// resolvers may read as an address), and "*" only as the whole leftmost
// label, followed by at least one label ("*.corp" is a fine internal name).
func dnsSyntax(name string, wildcardOK bool) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 253:
		return "is longer than 253 characters"
	case strings.HasSuffix(name, "."):
		return "ends with a dot (write it without the trailing dot)"
	case net.ParseIP(name) != nil:
		return "is an IP address, not a DNS name"
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return "is not ASCII (use its A-label, xn--, form)"
		}
		if 'A' <= name[i] && name[i] <= 'Z' {
			return "has upper-case letters (names are certified in lower case)"
		}
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		switch {
		case l == "*" && i == 0 && wildcardOK:
			if len(labels) < 2 {
				return "is a bare wildcard"
			}
			continue
		case strings.Contains(l, "*") && wildcardOK:
			return "has a wildcard that is not the whole leftmost label"
		case l == "":
			return "has an empty label"
		case len(l) > 63:
			return "has a label longer than 63 characters"
		case l[0] == '-' || l[len(l)-1] == '-':
			return "has a label that starts or ends with a hyphen"
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return "has the character " + strconv.QuoteRune(rune(c)) + " (only a-z, 0-9 and - are allowed)"
			}
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return "ends in an all-numeric label (it looks like an IP address)"
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// emailSyntax accepts the plain mailbox form local@domain (RFC 5321 dot-atom
// local parts, no quoted strings, no comments): what people and the
// SMIME-style lints expect in an rfc822Name.
func emailSyntax(addr string) string {
	at := strings.IndexByte(addr, '@')
	switch {
	case addr == "":
		return "is empty"
	case len(addr) > 254:
		return "is longer than 254 characters"
	case at < 0:
		return "has no @"
	case strings.Count(addr, "@") > 1:
		return "has more than one @"
	case at == 0:
		return "has an empty local part"
	case at > 64:
		return "has a local part longer than 64 characters"
	}
	local := addr[:at]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return "has a local part with a misplaced dot"
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),:;<>[\]`, c) >= 0 {
			return "has the character " + strconv.QuoteRune(rune(c)) + " in its local part"
		}
	}
	if why := dnsSyntax(addr[at+1:], false); why != "" {
		return "has a domain that " + why
	}
	return ""
}

// principalSyntax keeps SSH principals printable and free of the characters
// that separate them in authorized_keys and sshd_config lines.
func principalSyntax(p string) string {
	switch {
	case p == "":
		return "is empty"
	case len(p) > 255:
		return "is longer than 255 characters"
	case p == "*":
		return "is a wildcard; principals are certified by name"
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == ',' || c == '"' {
			return "has the character " + strconv.QuoteRune(rune(c))
		}
	}
	return ""
}
