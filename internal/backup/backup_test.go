package backup

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

var testID = func() *age.X25519Identity {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		panic(err)
	}
	return id
}()

// home makes a home-like directory: files a backup takes and files it
// leaves out.
func home(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"signet.toml": "store = 'signet.db'\n", "admin-token": "token", "keys/root.key": "encrypted",
		"audit-key.pub": "vkey", "signet.db": "live", "signet.db-wal": "wal", "server-tls.key": "node key",
		".init.db": "hidden", ".backup-x.db": "snapshot in progress",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o600)
		if name == "audit-key.pub" {
			mode = 0o644
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRoundTrip(t *testing.T) {
	dir := home(t)
	files, err := HomeFiles(dir, "signet.db")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"admin-token", "audit-key.pub", "keys/root.key", "signet.toml"}; !slices.Equal(files, want) {
		t.Fatalf("HomeFiles: %v, want %v", files, want)
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	os.WriteFile(snap, []byte("snapshot"), 0o644)
	m := Manifest{Version: 1, Created: time.Unix(1e9, 0).UTC(), HeadSeq: 7, Head: "ab", Files: files}
	var buf bytes.Buffer
	if err := Write(&buf, testID.Recipient(), m, dir, snap); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("token")) {
		t.Fatal("the archive holds a secret in the clear")
	}
	out := t.TempDir()
	got, err := Extract(bytes.NewReader(buf.Bytes()), testID, out)
	if err != nil {
		t.Fatal(err)
	}
	if mj, _ := json.Marshal(m); !bytes.Equal(mj, must(json.Marshal(got))) {
		t.Errorf("manifest %+v, want %+v", got, m)
	}
	for name, want := range map[string]string{"admin-token": "token", "keys/root.key": "encrypted", DatabaseName: "snapshot"} {
		p := filepath.Join(out, filepath.FromSlash(name))
		b, err := os.ReadFile(p)
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(filepath.Join(out, "audit-key.pub")); st.Mode().Perm() != 0o644 {
		t.Errorf("audit-key.pub: mode %v, want 0644", st.Mode().Perm())
	}
	other, _ := age.GenerateX25519Identity()
	if _, err := Extract(bytes.NewReader(buf.Bytes()), other, t.TempDir()); err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
		t.Errorf("another identity: %v", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// member is one tar entry of a hand-made archive.
type member struct {
	name string
	typ  byte
	body string
}

func archive(t testing.TB, members ...member) []byte {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: 0o600, Size: int64(len(m.body))}
		if m.typ == tar.TypeSymlink {
			h.Linkname, h.Size = "/etc/passwd", 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(m.body))
	}
	tw.Close()
	return tb.Bytes()
}

func seal(t testing.TB, plain []byte) []byte {
	var out bytes.Buffer
	w, err := age.Encrypt(&out, testID.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	return out.Bytes()
}

const manifest = `{"version":1,"head_seq":1,"head":"00"}`

func TestExtractRefuses(t *testing.T) {
	man := member{ManifestName, tar.TypeReg, manifest}
	db := member{DatabaseName, tar.TypeReg, "db"}
	for name, members := range map[string][]member{
		"traversal":        {man, {"../escape", tar.TypeReg, "x"}, db},
		"absolute":         {man, {"/tmp/escape", tar.TypeReg, "x"}, db},
		"symlink":          {man, {"keys/root.key", tar.TypeSymlink, ""}, db},
		"directory":        {man, {"keys", tar.TypeDir, ""}, db},
		"hidden":           {man, {".ssh/authorized_keys", tar.TypeReg, "x"}, db},
		"twice":            {man, {"admin-token", tar.TypeReg, "a"}, {"admin-token", tar.TypeReg, "b"}, db},
		"manifest later":   {db, man},
		"no database":      {man, {"signet.toml", tar.TypeReg, "x"}},
		"manifest version": {{ManifestName, tar.TypeReg, `{"version":2,"head":"00"}`}, db},
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "home")
			os.Mkdir(out, 0o700)
			if _, err := Extract(bytes.NewReader(seal(t, archive(t, members...))), testID, out); err == nil {
				t.Fatal("extracted")
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 1 {
				t.Errorf("wrote beside the home: %v", entries)
			}
		})
	}
}

// FuzzExtract feeds the archive reader tar streams as they come out of
// age (which authenticates them, but anyone who knows a recipient can make
// one): it never panics, and never writes outside its directory. age's own
// decryption is fuzzed upstream, and instrumented it would slow this to a
// few executions a second.
func FuzzExtract(f *testing.F) {
	f.Add(archive(f, member{ManifestName, tar.TypeReg, manifest}, member{"keys/root.key", tar.TypeReg, "k"}, member{DatabaseName, tar.TypeReg, "db"}))
	f.Add(archive(f, member{ManifestName, tar.TypeReg, manifest}, member{"../x", tar.TypeReg, "k"}))
	f.Add(archive(f, member{ManifestName, tar.TypeReg, manifest}, member{"a", tar.TypeSymlink, ""}))
	f.Add([]byte("not a tar stream"))
	parent := f.TempDir()
	f.Fuzz(func(t *testing.T, plain []byte) {
		out := filepath.Join(parent, "home")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(out)
		extract(bytes.NewReader(plain), out)
		if entries, _ := os.ReadDir(parent); len(entries) != 1 {
			t.Errorf("wrote beside the home: %v", entries)
		}
	})
}
