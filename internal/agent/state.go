package agent

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"signet/internal/acme/client"
	"signet/internal/errs"
)

// DefaultStateDir is where the agent keeps its state unless --state says.
const DefaultStateDir = "/var/lib/signet-agent"

// stateFile is the agent's state in its state directory: small, mode
// 0600, and without secrets (serials, times, the last error).
const stateFile = "state.json"

// State is what the agent remembers between runs, by certificate name.
type State struct {
	Certificates map[string]*CertState `json:"certificates"`
}

// CertState is the agent's memory of one managed certificate.
type CertState struct {
	Serial   string       `json:"serial,omitempty"`    // of the installed certificate
	NotAfter time.Time    `json:"not_after,omitzero"`  // of the installed certificate
	RenewAt  time.Time    `json:"renew_at,omitzero"`   // when it is to be renewed
	ARI      bool         `json:"ari,omitempty"`       // RenewAt was chosen in the server's suggested window (RFC 9773)
	Window   [2]time.Time `json:"ari_window,omitzero"` // that window, to keep the choice while it stands
	CheckAt  time.Time    `json:"check_at,omitzero"`   // when to ask the server again
	Failures int          `json:"failures,omitempty"`  // renewals failed in a row
	RetryAt  time.Time    `json:"retry_at,omitzero"`   // the next attempt after a failure
	Error    string       `json:"last_error,omitempty"`
	Renewed  time.Time    `json:"renewed,omitzero"` // the last successful renewal
}

// CheckPrivate refuses a file or directory that another user owns or that
// the group or others may write: whoever can write the agent's
// configuration or state chooses the commands it runs as root.
func CheckPrivate(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "%s", what)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return errs.New(errs.Unauthorized, "%s %s is writable by group or others (mode %04o); make it writable by its owner only (chmod go-w %s)", what, path, fi.Mode().Perm(), path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Getuid() {
		return errs.New(errs.Unauthorized, "%s %s belongs to user %d, neither root nor this user; chown it", what, path, st.Uid)
	}
	return nil
}

// OpenStateDir makes dir (0700) if missing and checks it is private.
func OpenStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errs.Wrap(errs.Unavailable, err, "state directory")
	}
	return CheckPrivate(dir, "state directory")
}

// Lock takes the state directory for one cycle, so that two agents (a
// daemon and a --once run by hand) never renew the same certificate at
// once; unlock releases it.
func Lock(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "locking the state directory")
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, errs.New(errs.Conflict, "another signet agent is renewing with the state directory %s; try again when it is done", dir)
	}
	return func() { f.Close() }, nil
}

// LoadState reads dir's state; a missing file is an empty state.
func LoadState(dir string) (*State, error) {
	s := &State{Certificates: map[string]*CertState{}}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "reading the agent's state")
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, errs.New(errs.Malformed, "%s is not the agent's state (%v); move it away and run again", filepath.Join(dir, stateFile), err)
	}
	if s.Certificates == nil {
		s.Certificates = map[string]*CertState{}
	}
	return s, nil
}

// Save writes the state, 0600.
func (s *State) Save(dir string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return errs.Wrap(errs.Internal, err, "encoding the agent's state")
	}
	return client.WriteFile(filepath.Join(dir, stateFile), 0o600, append(data, '\n'))
}

// get returns the state of name, made if missing.
func (s *State) get(name string) *CertState {
	cs := s.Certificates[name]
	if cs == nil {
		cs = &CertState{}
		s.Certificates[name] = cs
	}
	return cs
}
