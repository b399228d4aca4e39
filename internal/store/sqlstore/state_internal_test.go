package sqlstore

import (
	"bytes"
	"testing"

	"signet/internal/audit"
)

// TestAddedColumnKeepsOldHashes: a column added to a hashed table hashes
// only when it differs from the value existing rows got, so a row written
// before the column existed still matches the event that recorded it.
func TestAddedColumnKeepsOldHashes(t *testing.T) {
	before := stateTable{name: "authorities", key: []string{"name"}, cols: []string{"key_uri"}}
	after := stateTable{name: "authorities", key: []string{"name"}, cols: []string{"key_uri", "enabled"},
		added: map[string]any{"enabled": int64(1)}}
	old, err := before.row([]any{"web", "pkcs11:object=web"})
	if err != nil {
		t.Fatal(err)
	}
	same, err := after.row([]any{"web", "pkcs11:object=web", true})
	if err != nil || !bytes.Equal(same.Hash, old.Hash) {
		t.Errorf("the row with the added column at its default: %x, %v; want the old hash %x", same.Hash, err, old.Hash)
	}
	off, err := after.row([]any{"web", "pkcs11:object=web", false})
	if err != nil || bytes.Equal(off.Hash, old.Hash) {
		t.Errorf("the row with the added column changed hashes as before it existed: %x, %v", off.Hash, err)
	}
	if d := off.DiffFields(audit.Row{Fields: append(bytes.Clone(old.Fields), 0, 0, 0, 0)}); len(d) != 1 || d[0] != "enabled" {
		t.Errorf("DiffFields: %v; want enabled", d)
	}
}
