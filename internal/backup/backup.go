// Package backup writes a home into one archive encrypted with age and
// restores it: a consistent snapshot of the SQLite database (VACUUM INTO,
// so a serving home is copied between two transactions, never half), the
// home's configuration, its encrypted key files and sealed secrets. Keys on
// tokens are not in it: they are the HSM's to back up.
//
// The archive is a tar stream inside age: first manifest.json, then the
// home's files, last the database as signet.db. Everything read from an
// archive is untrusted until age has authenticated it, and names, types
// and counts are checked even then.
package backup

import (
	"archive/tar"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"signet/internal/errs"
)

const (
	// ManifestName and DatabaseName are the archive's fixed members.
	ManifestName = "manifest.json"
	DatabaseName = "signet.db"

	maxMembers  = 10000
	maxManifest = 1 << 20
)

// Manifest describes a backup.
type Manifest struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// HeadSeq and Head are the newest audit event in the snapshot: a
	// restore records them (audit.RestoreData).
	HeadSeq int64    `json:"head_seq"`
	Head    string   `json:"head"` // hex
	Files   []string `json:"files"`
	// TokenKeys are the keys the archive does not hold: on tokens.
	TokenKeys []string `json:"token_keys,omitempty"`
}

// skipped are the home's files a backup leaves out: the live database (its
// snapshot goes in instead), and serve's node TLS key and certificate, which
// a restored node makes anew.
var skipped = []string{"server-tls.key", "server-tls.pem"}

// HomeFiles lists the files of home dir a backup holds, relative and
// slash-separated: regular files only, hidden ones, the database db (with
// its -wal, -shm and -journal) and the files named in also (as the
// archives written into the home) left out.
func HomeFiles(dir, db string, also ...string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "." {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		name := filepath.ToSlash(rel)
		if slices.Contains(skipped, name) || slices.Contains(also, name) || name == db || strings.HasPrefix(name, db+"-") {
			return nil
		}
		out = append(out, name)
		return nil
	})
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "list the home %s", dir)
	}
	return out, nil
}

// Write encrypts to r an archive of manifest m, the files m.Files of home
// dir and the database snapshot at dbPath.
func Write(w io.Writer, r age.Recipient, m Manifest, dir, dbPath string) error {
	enc, err := age.Encrypt(w, r)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "encrypt the backup")
	}
	tw := tar.NewWriter(enc)
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return errs.Wrap(errs.Internal, err, "manifest")
	}
	if err := addBytes(tw, ManifestName, mb, m.Created); err != nil {
		return err
	}
	for _, name := range m.Files {
		if err := addFile(tw, name, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			return err
		}
	}
	if err := addFile(tw, DatabaseName, dbPath); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return errs.Wrap(errs.Unavailable, err, "write the backup")
	}
	if err := enc.Close(); err != nil {
		return errs.Wrap(errs.Unavailable, err, "write the backup")
	}
	return nil
}

func addBytes(tw *tar.Writer, name string, b []byte, t time.Time) error {
	err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: t, Typeflag: tar.TypeReg})
	if err == nil {
		_, err = tw.Write(b)
	}
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "write %s into the backup", name)
	}
	return nil
}

func addFile(tw *tar.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "read %s for the backup", path)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "read %s for the backup", path)
	}
	err = tw.WriteHeader(&tar.Header{Name: name, Mode: int64(st.Mode().Perm()), Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg})
	if err == nil {
		_, err = io.CopyN(tw, f, st.Size())
	}
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "write %s into the backup", name)
	}
	return nil
}

// Extract decrypts the archive r with id into the empty directory dir,
// which it fills with the home's files and the database (DatabaseName),
// and returns the manifest. On an error dir may hold part of the archive:
// the caller removes it.
func Extract(r io.Reader, id age.Identity, dir string) (Manifest, error) {
	dec, err := age.Decrypt(r, id)
	if err != nil {
		return Manifest{}, errs.Wrap(errs.Rejected, err, "cannot decrypt the backup (wrong passphrase or identity, or not a signet backup)")
	}
	m, err := extract(dec, dir)
	if err != nil {
		return m, err
	}
	return m, syncTree(dir)
}

// syncTree makes the files under dir durable: once the whole archive is
// read and checked, not file by file as a damaged one is written.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return errs.Wrap(errs.Unavailable, err, "restore %s", path)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return errs.Wrap(errs.Unavailable, err, "restore %s", path)
		}
		return nil
	})
}

// extract reads the decrypted tar stream of an archive into dir.
func extract(r io.Reader, dir string) (Manifest, error) {
	var m Manifest
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, errs.Wrap(errs.Rejected, err, "the backup is damaged or was altered")
		}
		if n >= maxMembers {
			return m, errs.New(errs.Rejected, "the backup has more than %d files: not a signet backup", maxMembers)
		}
		if err := checkMember(h, n, seen); err != nil {
			return m, err
		}
		seen[h.Name] = true
		if h.Name == ManifestName {
			b, err := io.ReadAll(io.LimitReader(tr, maxManifest))
			if err != nil {
				return m, errs.Wrap(errs.Rejected, err, "the backup is damaged or was altered")
			}
			if err := json.Unmarshal(b, &m); err != nil || m.Version != 1 {
				return m, errs.New(errs.Rejected, "the backup's manifest is not one this signet reads (version %d)", m.Version)
			}
			if _, err := hex.DecodeString(m.Head); err != nil {
				return m, errs.New(errs.Rejected, "the backup's manifest names no audit head")
			}
			continue
		}
		if err := extractFile(tr, h, dir); err != nil {
			return m, err
		}
	}
	if !seen[ManifestName] || !seen[DatabaseName] {
		return m, errs.New(errs.Rejected, "the backup is incomplete: it lacks its %s", map[bool]string{true: DatabaseName, false: ManifestName}[seen[ManifestName]])
	}
	return m, nil
}

// checkMember refuses what a signet backup never holds: anything but
// regular files, names that leave the directory or repeat, and a first
// member other than the manifest.
func checkMember(h *tar.Header, n int, seen map[string]bool) error {
	if h.Typeflag != tar.TypeReg {
		return errs.New(errs.Rejected, "the backup holds %q, which is not a regular file: not a signet backup", h.Name)
	}
	if !fs.ValidPath(h.Name) || strings.Contains(h.Name, `\`) || strings.HasPrefix(h.Name, ".") || strings.Contains(h.Name, "/.") {
		return errs.New(errs.Rejected, "the backup holds a file named %q, which a restore never writes", h.Name)
	}
	if seen[h.Name] {
		return errs.New(errs.Rejected, "the backup holds %q twice", h.Name)
	}
	if (n == 0) != (h.Name == ManifestName) {
		return errs.New(errs.Rejected, "the backup does not begin with its manifest: not a signet backup")
	}
	return nil
}

// extractFile writes one member under dir: 0600 unless the archive says
// others could read it (certificates, the audit verifier key), then 0644;
// the database always 0600.
func extractFile(tr *tar.Reader, h *tar.Header, dir string) error {
	path := filepath.Join(dir, filepath.FromSlash(h.Name))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return errs.Wrap(errs.Unavailable, err, "restore %s", h.Name)
	}
	mode := os.FileMode(0o600)
	if h.Mode&0o044 != 0 && h.Name != DatabaseName {
		mode = 0o644
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "restore %s", h.Name)
	}
	_, err = io.Copy(f, tr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errs.Wrap(errs.Rejected, err, "the backup is damaged or was altered (at %s)", h.Name)
	}
	return nil
}
