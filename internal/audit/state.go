package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"

	"signet/internal/errs"
)

// # Row states
//
// An event that changes a row of the CA's state (a certificate, an
// authority, an SSH CA key, an ACME account, an EAB key) carries a Row for
// each row it changed: the row's table and key and the hash of the row as
// it is after the change, computed by the store in the transaction that
// writes it. Verify recomputes the hash of every current row and compares
// it with the newest event that names the row, so a row edited behind the
// CA's back (a certificate un-revoked, its DER swapped) is caught even
// though no event was touched.
//
// A row's canonical encoding, hashed with SHA-256, is
//
//	"signet-row-v1\n"
//	for Table, Key: uint32 length, then the bytes
//	for each column, in the order the store lists them:
//	    uint32 length, name; then one byte of type and the value:
//	    0 NULL; 1 integer, int64 big-endian; 2 text or 3 bytes, uint32 length then the bytes
//
// A boolean is the integer 0 or 1, so the same row hashes the same in every
// database. Fields holds, for each column, the CRC-32C (Castagnoli,
// big-endian) of that column's part of the encoding: not a security
// property (Hash is), only what lets Verify name the column that differs,
// and cheap next to the hash.

// FieldDigestSize is the length of one column's digest in Row.Fields.
const FieldDigestSize = 4

// A Row is one row of the CA's state as an event left it.
type Row struct {
	Table  string   `json:"table"`
	Key    string   `json:"key"`
	Hash   []byte   `json:"hash"`
	Fields []byte   `json:"fields,omitempty"` // FieldDigestSize bytes per column
	Names  []string `json:"-"`                // the columns, when the row was hashed here
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// HashRow returns the Row of table's row key with these columns, names[i]
// holding values[i]. A value of a type Normalize does not know is an error.
func HashRow(table, key string, names []string, values []any) (Row, error) {
	var a [1024]byte
	b := append(a[:0], "signet-row-v1\n"...)
	b = appendField(b, table)
	b = appendField(b, key)
	r := Row{Table: table, Key: key, Fields: make([]byte, 0, FieldDigestSize*len(names)), Names: names}
	for i, name := range names {
		start := len(b)
		var err error
		if b, err = appendColumn(b, name, values[i]); err != nil {
			return Row{}, errs.Wrap(errs.Internal, err, "hash %s row %s", table, key)
		}
		r.Fields = binary.BigEndian.AppendUint32(r.Fields, crc32.Checksum(b[start:], castagnoli))
	}
	sum := sha256.Sum256(b)
	r.Hash = sum[:]
	return r, nil
}

func appendColumn(b []byte, name string, value any) ([]byte, error) {
	b = appendField(b, name)
	v, err := Normalize(value)
	if err != nil {
		return nil, fmt.Errorf("column %s: %w", name, err)
	}
	switch v := v.(type) {
	case nil:
		return append(b, 0), nil
	case int64:
		return binary.BigEndian.AppendUint64(append(b, 1), uint64(v)), nil
	case string:
		return appendField(append(b, 2), v), nil
	default:
		return appendField(append(b, 3), v.([]byte)), nil
	}
}

// Normalize turns a column value as a database driver reads or writes it
// into one of nil, int64, string or []byte: every integer type to int64, a
// boolean to 0 or 1, a pointer to what it points at.
func Normalize(v any) (any, error) {
	switch v := v.(type) {
	case nil, int64, string:
		return v, nil
	case []byte:
		if v == nil {
			return nil, nil
		}
		return v, nil
	case int:
		return int64(v), nil
	case int32:
		return int64(v), nil
	case int16:
		return int64(v), nil
	case bool:
		if v {
			return int64(1), nil
		}
		return int64(0), nil
	case *any:
		return Normalize(*v)
	}
	return nil, fmt.Errorf("value of type %T has no canonical encoding", v)
}

// DiffFields names the columns whose digests differ between r (the current
// row, hashed here) and want (as an event recorded it). It returns nil when
// it cannot tell (the column lists differ in length).
func (r Row) DiffFields(want Row) []string {
	if len(r.Fields) != len(want.Fields) || len(r.Names)*FieldDigestSize != len(r.Fields) {
		return nil
	}
	var out []string
	for i, name := range r.Names {
		a, b := r.Fields[i*FieldDigestSize:(i+1)*FieldDigestSize], want.Fields[i*FieldDigestSize:(i+1)*FieldDigestSize]
		if !bytes.Equal(a, b) {
			out = append(out, name)
		}
	}
	return out
}

// EncodeState is the events.state column of an event's rows (nil for
// none); the event's hash covers these bytes. Per row: uint32 lengths and
// bytes of Table, Key, Hash and Fields.
func EncodeState(rows []Row) []byte {
	if len(rows) == 0 {
		return nil
	}
	n := 4
	for _, r := range rows {
		n += 16 + len(r.Table) + len(r.Key) + len(r.Hash) + len(r.Fields)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, n), uint32(len(rows)))
	for _, r := range rows {
		b = appendField(b, r.Table)
		b = appendField(b, r.Key)
		b = appendField(b, r.Hash)
		b = appendField(b, r.Fields)
	}
	return b
}

// DecodeState reads what EncodeState wrote.
func DecodeState(b []byte) ([]Row, error) {
	if len(b) == 0 {
		return nil, nil
	}
	bad := errs.New(errs.Rejected, "event state is malformed")
	if len(b) < 4 {
		return nil, bad
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b))/16 {
		return nil, bad
	}
	rows := make([]Row, n)
	field := func() ([]byte, bool) {
		if len(b) < 4 {
			return nil, false
		}
		l := binary.BigEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return nil, false
		}
		f := b[4 : 4+l : 4+l]
		b = b[4+l:]
		return f, true
	}
	for i := range rows {
		table, ok1 := field()
		key, ok2 := field()
		hash, ok3 := field()
		fields, ok4 := field()
		if !ok1 || !ok2 || !ok3 || !ok4 || len(hash) != sha256.Size || len(fields)%FieldDigestSize != 0 {
			return nil, bad
		}
		rows[i] = Row{Table: string(table), Key: string(key), Hash: hash, Fields: fields}
	}
	if len(b) != 0 {
		return nil, bad
	}
	return rows, nil
}

// FormatKey is a key column's value as it appears in Row.Key.
func FormatKey(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return fmt.Sprint(v)
}
