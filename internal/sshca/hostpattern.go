package sshca

import (
	"strconv"
	"strings"

	"signet/internal/errs"
)

// CheckHostPattern accepts an OpenSSH known_hosts host pattern list, as
// it goes between "@cert-authority" and the key: comma-separated entries,
// each a host name or address pattern with the wildcards * and ?, or
// [pattern]:port, optionally negated with a leading !. Anything else
// (white space, control characters, #, quotes, empty entries) would
// corrupt the line it is written into or be read by ssh as something else.
func CheckHostPattern(list string) error {
	if list == "" {
		return errs.New(errs.Malformed, "the known_hosts pattern is empty; give host names such as \"*.example.org,!old.example.org\"")
	}
	for _, entry := range strings.Split(list, ",") {
		if why := hostPatternSyntax(entry); why != "" {
			return errs.New(errs.Malformed, "known_hosts pattern %q: entry %q %s; give comma-separated host names or [host]:port, with * and ? as wildcards and ! to exclude",
				list, entry, why)
		}
	}
	return nil
}

// hostPatternSyntax says what is wrong with one entry of a pattern list.
func hostPatternSyntax(entry string) string {
	host := strings.TrimPrefix(entry, "!")
	if rest, ok := strings.CutPrefix(host, "["); ok {
		h, port, ok := strings.Cut(rest, "]:")
		if n, err := strconv.Atoi(port); !ok || err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "has a bracket but is not [host]:port with a port from 1 to 65535"
		}
		host = h
	}
	if host == "" {
		return "names no host"
	}
	if len(host) > 255 {
		return "is longer than 255 characters"
	}
	for _, c := range host {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.ContainsRune(".-_:*?", c):
		default:
			return "contains " + strconv.QuoteRune(c) + ", which is not allowed in a host name pattern"
		}
	}
	return ""
}
