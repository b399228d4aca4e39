package sshca

import "testing"

// TestCheckHostPattern: what OpenSSH reads as a host pattern list passes;
// anything that would change the known_hosts line or its meaning does not.
func TestCheckHostPattern(t *testing.T) {
	for _, p := range []string{"*", "web.example.org", "*.example.org,!old.example.org", "Host_1.Example.ORG", "db?.example.org",
		"[web.example.org]:2222", "![*.example.org]:22", "10.0.0.*", "2001:db8::1", "[::1]:65535", "xn--bcher-kva.example"} {
		if err := CheckHostPattern(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "a\x00b", "a\vb", "a\tb", "a b", "a\nb", "a#b", "'a'", "\"a\"", "a\\b", "a,,b", ",a", "a,", "!", "!!a",
		"[a]", "[a]:", "[a]:x", "[a]:0", "[a]:65536", "[a]:022", "[]:22", "[a]:22]", "|1|c2FsdA==|aGFzaA==", "a/24", "u@h", "é.example"} {
		if err := CheckHostPattern(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}
