package config

import (
	"strings"
	"testing"

	"signet/internal/errs"
)

// TestBaseURL: base_url takes the same rule as an authority's base URL
// (profile.CheckBaseURL): certificates name URLs under it, so a query,
// fragment or user information would end up inside them.
func TestBaseURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"", true},
		{"http://crl.example", true},
		{"https://pki.example/signet", true},
		{"http://crl.example/", false},
		{"ftp://crl.example", false},
		{"http://crl.example?x=1", false},
		{"http://crl.example/pki?x=1", false},
		{"http://crl.example#top", false},
		{"http://user@crl.example", false},
	} {
		c := Default()
		c.BaseURL = tc.url
		err := c.Validate()
		if tc.ok && err != nil {
			t.Errorf("%q: %v", tc.url, err)
		}
		if !tc.ok && (errs.KindOf(err) != errs.Malformed || !strings.Contains(err.Error(), "base_url")) {
			t.Errorf("%q: got %v, want it refused", tc.url, err)
		}
	}
}
