package limits

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"signet/internal/config"
)

// TestSource: X-Forwarded-For names the source only when the peer is a
// trusted proxy, and then the last hop that is not one; IPv6 sources
// count per /64.
func TestSource(t *testing.T) {
	l, err := New(config.Limits{TrustedProxies: []string{"10.0.0.0/8", "2001:db8:ffff::1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ remote, xff, want string }{
		{"192.0.2.7:4000", "", "192.0.2.7"},
		{"192.0.2.7:4000", "198.51.100.1", "192.0.2.7"}, // untrusted peer: header ignored
		{"10.1.2.3:4000", "198.51.100.1", "198.51.100.1"},
		{"10.1.2.3:4000", "203.0.113.9, 198.51.100.1, 10.9.9.9", "198.51.100.1"}, // the client's own hops are not believed
		{"10.1.2.3:4000", "junk, 198.51.100.1", "198.51.100.1"},
		{"10.1.2.3:4000", "198.51.100.1, junk", "10.1.2.3"},
		{"[2001:db8:1:2:3:4:5:6]:4000", "", "2001:db8:1:2::/64"},
		{"[2001:db8:ffff::1]:4000", "2001:db8:aa:bb::9", "2001:db8:aa:bb::/64"},
		{"[::ffff:192.0.2.7]:4000", "", "192.0.2.7"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := l.Source(r); got != tc.want {
			t.Errorf("%s with X-Forwarded-For %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
	if _, err := New(config.Limits{TrustedProxies: []string{"10.0.0.0/33"}}, nil); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}

// TestTrackedBound: the buckets of a limit never exceed max_tracked keys.
func TestTrackedBound(t *testing.T) {
	l, err := New(config.Limits{MaxTracked: 10, NewAccountsPerIP: config.Rate{Count: 1, Per: time.Hour}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.0.2." + strconv.Itoa(i%250) + ":1"
		l.NewAccount(r)
		if n := len(l.newAccounts.m); n > 10 {
			t.Fatalf("%d sources tracked, max_tracked is 10", n)
		}
	}
}
