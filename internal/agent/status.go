package agent

import (
	"fmt"
	"strings"
	"time"

	"signet/internal/acme/client"
)

// Entry is one managed certificate as signet agent status shows it.
type Entry struct {
	Name      string    `json:"name"`
	Names     []string  `json:"names"`
	Serial    string    `json:"serial,omitempty"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	RenewAt   time.Time `json:"next_renewal,omitzero"`
	ARI       bool      `json:"renewal_information"` // the time was chosen in the server's window
	Failures  int       `json:"failures,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// Status reads the installed certificates and the state, without asking
// the server: what is installed, until when, and when it is renewed next.
func Status(cfg *client.Config, st *State) []Entry {
	a := &Agent{Config: cfg}
	var out []Entry
	for _, m := range cfg.Certificates {
		e := Entry{Name: m.Name, Names: append(append([]string{}, m.DNS...), m.IP...)}
		cs := st.Certificates[m.Name]
		if cur := a.installed(m); cur != nil {
			e.Serial, e.NotAfter = fmt.Sprintf("%x", cur.SerialNumber), cur.NotAfter
			e.RenewAt = twoThirds(cur)
			if cs != nil && cs.Serial == e.Serial && !cs.RenewAt.IsZero() {
				e.RenewAt, e.ARI = cs.RenewAt, cs.ARI
			}
		}
		if cs != nil {
			e.Failures, e.RetryAt, e.LastError = cs.Failures, cs.RetryAt, cs.Error
		}
		out = append(out, e)
	}
	return out
}

// String is the entry as a line of text.
func (e Entry) String() string {
	t := func(v time.Time) string {
		if v.IsZero() {
			return "-"
		}
		return v.UTC().Format(time.RFC3339)
	}
	serial, next := e.Serial, t(e.RenewAt)+" (two thirds of the lifetime)"
	if e.ARI {
		next = t(e.RenewAt) + " (server's renewal information)"
	}
	if serial == "" {
		serial, next = "none installed", "at the next run"
	}
	s := fmt.Sprintf("%s\t%s\tserial %s\texpires %s\tnext renewal %s", e.Name, strings.Join(e.Names, ","), serial, t(e.NotAfter), next)
	if e.Failures > 0 {
		s += fmt.Sprintf("\t%d failures, retry %s: %s", e.Failures, t(e.RetryAt), e.LastError)
	}
	return s
}
