package config

import (
	"strings"
	"testing"
	"time"

	"signet/internal/errs"
)

// TestParseDurationBounds: every duration signet reads (CLI, API, signet.toml)
// goes through ParseDuration, which must refuse anything beyond 100 years
// rather than wrap around (213504d once gave 26 minutes).
func TestParseDurationBounds(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration // 0 with a non-empty refused: an error containing it
		refused string
	}{
		{"30d", 30 * 24 * time.Hour, ""},
		{"52w", 52 * 7 * 24 * time.Hour, ""},
		{"720h", 720 * time.Hour, ""},
		{"36525d", MaxDuration, ""},
		{"876600h", MaxDuration, ""},
		{"36526d", 0, "longer than 100 years"},
		{"5218w", 0, "longer than 100 years"},
		{"876601h", 0, "longer than 100 years"},
		{"213504d", 0, "longer than 100 years"},
		{"30500w", 0, "longer than 100 years"},
		{"18446744073709551616d", 0, "longer than 100 years"},
		{"2562048h", 0, "at most 100 years"},
		{"-5h", 0, "negative"},
		{"1.5d", 0, "whole number"},
		{"d", 0, "whole number"},
		{"soon", 0, "use forms like"},
	} {
		got, err := ParseDuration(tc.in)
		if tc.refused == "" {
			if err != nil || got != tc.want {
				t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
			}
			continue
		}
		if errs.KindOf(err) != errs.Malformed || !strings.Contains(err.Error(), tc.refused) {
			t.Errorf("%q: got %v, %v; want an error saying %q", tc.in, got, err, tc.refused)
		}
	}
}

// TestDurationInConfig: signet.toml durations take the same bound.
func TestDurationInConfig(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("213504d")); err == nil || !strings.Contains(err.Error(), "100 years") {
		t.Fatalf("got %v, %v; want 213504d refused", time.Duration(d), err)
	}
}

// FuzzParseDuration: whatever ParseDuration accepts lies between zero and
// MaxDuration, and reads back the same from its Go form.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "52w", "720h", "1h30m", "36525d", "213504d", "-1d", "9223372036854775807ns", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if errs.KindOf(err) != errs.Malformed {
				t.Fatalf("%q: error of kind %v: %v", s, errs.KindOf(err), err)
			}
			return
		}
		if d < 0 || d > MaxDuration {
			t.Fatalf("%q gave %v, outside 0..100 years", s, d)
		}
		if again, err := ParseDuration(d.String()); err != nil || again != d {
			t.Fatalf("%q gave %v, which reads back as %v, %v", s, d, again, err)
		}
	})
}
