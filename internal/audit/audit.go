// Package audit owns signet's tamper-evident event log: every issuance,
// revocation and key or authority change is an Event, sealed into a SHA-256
// hash chain by the store that appends it, and checked offline by Verify.
//
// # Canonical encoding
//
// Hash is SHA-256 over this byte string, all integers big-endian:
//
//	"signet-audit-v1\n"              domain separation and format version
//	int64  Seq
//	int64  Time as Unix nanoseconds (so the time zone is not hashed)
//	for Kind, Actor, Authority, Subject, Data, Prev in that order:
//	    uint32 length, then the bytes
//
// An event that carries row states (see Row) starts with "signet-audit-v2\n"
// instead and ends with one more field, EncodeState(State); an event
// without them hashes as in v1, so events written before rows were hashed
// keep their hashes.
//
// Every variable-length field carries its length, so no two different events
// share an encoding ("ab"+"c" and "a"+"bc" differ). Data is hashed exactly
// as stored, so a store must keep it byte for byte (PostgreSQL: bytea or
// text, never jsonb, which reorders keys).
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"time"
)

// Event kinds written by signet. Kind is an open set; these are the ones the
// store and the verifier give meaning to.
const (
	KindAuthorityCreate   = "authority.create"
	KindCertificateIssue  = "certificate.issue"
	KindCertificateRevoke = "certificate.revoke"
	KindKeyGenerate       = "key.generate"
	// A stored key URI rewritten: the PKCS#11 module and PIN source it
	// named moved to the node's configuration.
	KindKeyURIRewrite = "key.uri.rewrite"
	// A certificate the CA key signed but the store refused to record: it
	// was never issued, and the log accounts for the signature.
	KindCertificateDiscard = "certificate.discard"
	// A change of an authority's settings (ACME, EAB); Data holds the
	// settings changed and their new values.
	KindAuthorityUpdate = "authority.update"
	// A CRL the CA key signed: Subject is its URL, Data its shard, number,
	// entries, validity and SHA-256.
	KindCRLSign = "crl.sign"
	// An operator gave (authority.unlock) or took back (authority.lock)
	// the PIN or passphrase of a token or the software keys on a running
	// server; Data names the token and, for unlock, whether it worked.
	// The secret is never in it.
	KindAuthorityUnlock = "authority.unlock"
	KindAuthorityLock   = "authority.lock"

	// ACME orders; the subject is the order's ID. An order created (Data:
	// its identifiers and profile), one of its authorizations validated
	// (Data: the identifier, the challenge, the outcome) or deactivated by
	// its account. The certificate that finalizes an order has its own
	// certificate.issue event, written with the order's move to valid.
	KindACMEOrderCreate     = "acme.order.create"
	KindACMEAuthzValidate   = "acme.authz.validate"
	KindACMEAuthzDeactivate = "acme.authz.deactivate"

	// SSH certificates and CA keys. The subject of an SSH certificate's
	// events is "ssh:" and its decimal serial.
	KindSSHCertificateIssue   = "ssh.certificate.issue"
	KindSSHCertificateRevoke  = "ssh.certificate.revoke"
	KindSSHCertificateDiscard = "ssh.certificate.discard"
	KindSSHKeyAdd             = "ssh.key.add"
	KindSSHKeyState           = "ssh.key.state"

	// The state of every row as found when a home made before rows were
	// hashed was first opened: Verify checks the rows from this event on.
	KindStateBaseline = "state.baseline"
	// A restore from a backup: Data names the backup's head
	// ({"seq": N, "head": "<hex>"}); Verify accepts a chain whose events
	// after that seq were dropped by the restore.
	KindRestore = "state.restore"
)

// HashSize is the length of Prev and Hash.
const HashSize = sha256.Size

// Genesis is the Prev of the first event: 32 zero bytes.
var Genesis = make([]byte, HashSize)

// Event is one entry of the log.
type Event struct {
	Seq       int64           `json:"seq"`  // 1, 2, 3... assigned by the store
	Time      time.Time       `json:"time"` // UTC, nanosecond precision
	Kind      string          `json:"kind"`
	Actor     string          `json:"actor"` // who asked: "cli", "api:token", "acme:<account>"...
	Authority string          `json:"authority,omitempty"`
	Subject   string          `json:"subject,omitempty"` // a certificate serial, a key URI, an authority name
	Data      json.RawMessage `json:"data,omitempty"`    // compact JSON
	State     []Row           `json:"state,omitempty"`   // the rows the event changed, as it left them
	Prev      []byte          `json:"prev"`              // Hash of the previous event, Genesis for the first
	Hash      []byte          `json:"hash"`
}

// Stamp returns e at time t, in UTC, with data encoded as its Data
// (compact JSON). data is a plain map or struct of strings, numbers, times
// and slices, which always encodes. The caller names Kind, Actor,
// Authority and Subject in e, so no two of them can be swapped unseen.
func (e Event) Stamp(t time.Time, data any) Event {
	e.Time = t.UTC()
	e.Data, _ = json.Marshal(data)
	return e
}

// Seal links e after the event whose hash is prev and sets e.Hash. Seq and
// every other field must be final: any later change breaks the chain.
func (e *Event) Seal(prev []byte) {
	e.Prev = bytes.Clone(prev)
	e.Hash = e.digest()
}

// Sealed reports whether e.Hash matches its other fields.
func (e *Event) Sealed() bool {
	return bytes.Equal(e.Hash, e.digest())
}

func (e *Event) digest() []byte {
	// The encoding lives only until it is hashed: on the stack, unless the
	// event is larger than the array.
	var a [512]byte
	sum := sha256.Sum256(e.appendCanonical(a[:0]))
	return sum[:]
}

// appendCanonical appends the encoding documented in the package comment.
func (e *Event) appendCanonical(b []byte) []byte {
	if len(e.State) == 0 {
		b = append(b, "signet-audit-v1\n"...)
	} else {
		b = append(b, "signet-audit-v2\n"...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = appendField(b, e.Kind)
	b = appendField(b, e.Actor)
	b = appendField(b, e.Authority)
	b = appendField(b, e.Subject)
	b = appendField(b, e.Data)
	b = appendField(b, e.Prev)
	if len(e.State) > 0 {
		b = appendField(b, EncodeState(e.State))
	}
	return b
}

// appendField appends one length-prefixed field of the canonical encoding.
func appendField[F string | []byte | json.RawMessage](b []byte, f F) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
	return append(b, f...)
}
