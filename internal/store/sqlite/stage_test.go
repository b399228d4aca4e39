package sqlite

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// holdWriter makes the writer wait inside a request of its own, in a
// batch of that request alone, until release is called: writes sent
// meanwhile queue up and are taken together when it is.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	taken, free := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.w.do(ctx, func(*tx) error { close(taken); <-free; return nil }, func(*tx) error { return nil })
	}()
	<-taken // the writer collected its batch before running this check
	return func() {
		t.Helper()
		close(free)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
	}
}

// inOneBatch runs each write concurrently while the writer is held, so
// that they all share the next transaction, and returns their outcomes and
// whether the batch had to be run again with savepoints.
func inOneBatch(t *testing.T, s *Store, writes []func() error) ([]error, bool) {
	t.Helper()
	release := holdWriter(t, s)
	out := make([]error, len(writes))
	done := make(chan int, len(writes))
	for i, w := range writes {
		go func() { out[i] = w(); done <- i }()
		for deadline := time.Now().Add(5 * time.Second); len(s.w.reqs) != i+1; {
			if time.Now().After(deadline) {
				t.Fatalf("write %d was not queued", i)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	b0, r0 := s.w.batches.Load(), s.w.reruns.Load()
	release()
	for range writes {
		<-done
	}
	// The holding request's transaction, then theirs.
	if n := s.w.batches.Load() - b0; n != 2 {
		t.Errorf("the writes took %d transactions, want 1", n-1)
	}
	return out, s.w.reruns.Load() != r0
}

// succeeds stands in checkBatch's want for a write that returns no error.
const succeeds = errs.Kind(-1)

// checkBatch compares the outcomes of inOneBatch with the error kinds
// wanted of each write and whether the batch was to be run again.
func checkBatch(t *testing.T, got []error, reran bool, want []errs.Kind, rerun bool) {
	t.Helper()
	for i, err := range got {
		if (err == nil) != (want[i] == succeeds) || err != nil && errs.KindOf(err) != want[i] {
			t.Errorf("write %d: %v, want %d", i, err, want[i])
		}
	}
	if reran != rerun {
		t.Errorf("batch run again with savepoints: %v, want %v", reran, rerun)
	}
}

// TestStagedBatchIsolatesFailures puts staged SSH certificate inserts, a
// duplicate serial (staged: found only at the flush), a certificate of a key
// retired earlier in the same batch, and a revocation of a certificate
// staged earlier in the batch into one transaction: each failure must be
// its caller's alone, and the rest must be durable with a whole audit chain.
func TestStagedBatchIsolatesFailures(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signet.db")
	s := open(t, path)
	a := store.Authority{Name: "users", Purpose: "ssh-user", KeyURI: "file:one.key",
		Policy: json.RawMessage(`{}`), DefaultValidity: time.Hour, MaxValidity: 24 * time.Hour}
	key := func(fp string) store.SSHKey {
		return store.SSHKey{Authority: "users", Fingerprint: "SHA256:" + fp, KeyURI: "file:" + fp + ".key", PublicKey: "ssh-ed25519 AAAA" + fp}
	}
	if err := s.CreateSSHAuthority(ctx, a, key("one"), audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSSHKey(ctx, store.SSHKey{Authority: "users", Fingerprint: "SHA256:two", KeyURI: "file:two.key",
		PublicKey: "ssh-ed25519 AAAAtwo", State: store.SSHKeyActive}, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	cert := func(serial uint64, fp string) func() error {
		return func() error {
			c := store.SSHCertificate{Serial: serial, Authority: "users", CAFingerprint: "SHA256:" + fp, KeyID: "k",
				Type: store.SSHUserCert, Principals: []string{"alice"}, ValidAfter: time.Unix(1, 0), ValidBefore: time.Unix(2, 0),
				Requester: "t", Cert: []byte{1, 2, 3}}
			return s.RecordSSHCertificate(ctx, c, audit.Event{Actor: "t"})
		}
	}
	if err := cert(1, "two")(); err != nil {
		t.Fatal(err)
	}
	batch := func(want []errs.Kind, rerun bool, writes ...func() error) {
		t.Helper()
		got, reran := inOneBatch(t, s, writes)
		checkBatch(t, got, reran, want, rerun)
	}
	// Failures found by checks leave the fast path alone.
	batch([]errs.Kind{succeeds, succeeds, errs.Conflict, succeeds, succeeds, errs.Conflict, errs.NotFound}, false,
		cert(2, "two"),
		cert(3, "two"),
		cert(5, "one"), // not the active key
		func() error { return s.RevokeSSHCertificate(ctx, 3, time.Unix(3, 0), audit.Event{Actor: "t"}) },
		func() error {
			return s.SetSSHKeyState(ctx, "users", "SHA256:two", store.SSHKeyTrusted, audit.Event{Actor: "cli"})
		},
		cert(6, "two"), // its key was demoted just before
		cert(7, "nine"),
	)
	if err := s.SetSSHKeyState(ctx, "users", "SHA256:two", store.SSHKeyActive, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	// Taken serials are found when the staged rows are inserted.
	batch([]errs.Kind{errs.Conflict, succeeds, errs.Conflict, succeeds}, true,
		cert(1, "two"), // taken before this batch
		cert(4, "two"),
		cert(4, "two"), // taken earlier in this batch
		cert(8, "two"),
	)
	s.Close()
	s = open(t, path)
	for serial, status := range map[uint64]store.Status{1: store.Valid, 2: store.Valid, 3: store.Revoked, 4: store.Valid, 8: store.Valid} {
		c, err := s.SSHCertificate(ctx, serial)
		if err != nil || c.Status != status {
			t.Errorf("certificate %d: %v, %v; want %s", serial, c.Status, err, status)
		}
	}
	for _, serial := range []uint64{5, 6, 7} {
		if _, err := s.SSHCertificate(ctx, serial); errs.KindOf(err) != errs.NotFound {
			t.Errorf("certificate %d: %v, want not found", serial, err)
		}
	}
	if _, err := audit.Verify(ctx, s); err != nil {
		t.Fatal(err)
	}
}

// TestStagedX509Batch does the same for X.509 certificates: a revocation
// and a new authority see the rows staged before them; a duplicate serial
// and a missing authority fail only their callers.
func TestStagedX509Batch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signet.db")
	s := open(t, path)
	if err := s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "pkcs11:object=ca"}, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	cert := func(serial, authority string) func() error {
		return func() error {
			c := store.Certificate{Serial: serial, Authority: authority, DNSNames: []string{"a.example.org", "b.example.org"},
				NotBefore: time.Unix(1, 0), NotAfter: time.Unix(2, 0), DER: []byte{0x30, 0x00}}
			return s.RecordCertificate(ctx, c, audit.Event{Actor: "t"})
		}
	}
	got, reran := inOneBatch(t, s, []func() error{
		cert("01", "ca"),
		cert("02", "nobody"),
		func() error { return s.Revoke(ctx, "01", time.Unix(3, 0), 1, audit.Event{Actor: "t"}) },
		func() error {
			return s.CreateAuthority(ctx, store.Authority{Name: "new", KeyURI: "pkcs11:object=new"}, audit.Event{Actor: "cli"})
		},
		cert("03", "new"),
	})
	checkBatch(t, got, reran, []errs.Kind{succeeds, errs.NotFound, succeeds, succeeds, succeeds}, false)
	got, reran = inOneBatch(t, s, []func() error{cert("04", "ca"), cert("01", "ca"), cert("04", "new"), cert("05", "new")})
	checkBatch(t, got, reran, []errs.Kind{succeeds, errs.Conflict, errs.Conflict, succeeds}, true)

	s.Close()
	s = open(t, path)
	all, err := s.Certificates(ctx, store.Filter{})
	if err != nil || len(all) != 4 {
		t.Fatalf("%d certificates, want 4 (%v)", len(all), err)
	}
	for _, c := range all {
		if c.Serial == "01" && c.Status != store.Revoked || len(c.DNSNames) != 2 {
			t.Errorf("certificate %s: %s, names %v", c.Serial, c.Status, c.DNSNames)
		}
	}
	if named, err := s.Certificates(ctx, store.Filter{Name: "b.example.org"}); err != nil || len(named) != 4 {
		t.Errorf("%d certificates named b.example.org, want 4 (%v)", len(named), err)
	}
	if _, err := audit.Verify(ctx, s); err != nil {
		t.Fatal(err)
	}
}
