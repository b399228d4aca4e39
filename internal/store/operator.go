package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
)

// Operator roles, each allowing what the one before allows and more.
const (
	RoleViewer   = "viewer"   // reads everything
	RoleOperator = "operator" // also issues, revokes and unlocks
	RoleAdmin    = "admin"    // also manages authorities, operators and EAB keys
)

// Operator is a named person or program with a role and a personal API
// token, of which only the SHA-256 is kept.
type Operator struct {
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	TokenHash []byte     `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	RemovedAt *time.Time `json:"removed_at,omitempty"`
}

// Operators are the named operators: operator add and remove record their
// audit events; a removed operator's token authenticates no more.
type Operators interface {
	// AddOperator records op with its operator.add event; errs.Conflict if
	// an operator of that name exists (a removed one is added again).
	AddOperator(ctx context.Context, op Operator, ev audit.Event) error
	// RemoveOperator marks the operator removed with its operator.remove
	// event; errs.NotFound if no such operator is in service.
	RemoveOperator(ctx context.Context, name string, ev audit.Event) error
	// Operators lists every operator, removed ones included, by name.
	Operators(ctx context.Context) ([]Operator, error)
	// Operator is the operator in service of that name; errs.NotFound if
	// none.
	Operator(ctx context.Context, name string) (Operator, error)
	// OperatorByToken is the operator in service whose token hashes to
	// sum; errs.NotFound if none.
	OperatorByToken(ctx context.Context, sum [sha256.Size]byte) (Operator, error)
}

var operatorName = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// RoleAllows reports whether role has at least the rights of need.
func RoleAllows(role, need string) bool {
	rank := map[string]int{RoleViewer: 1, RoleOperator: 2, RoleAdmin: 3}
	return rank[role] > 0 && rank[role] >= rank[need]
}

// CheckOperator refuses an operator that cannot be stored.
func CheckOperator(op Operator) error {
	if !operatorName.MatchString(op.Name) {
		return errs.New(errs.Malformed, "operator name %q is not valid; use 1-64 lower-case letters, digits, '.', '_', '@' or '-'", op.Name)
	}
	if !RoleAllows(op.Role, RoleViewer) {
		return errs.New(errs.Malformed, "operator role %q is not one of viewer, operator, admin", op.Role)
	}
	if len(op.TokenHash) != sha256.Size {
		return errs.New(errs.Malformed, "operator %q has no token hash", op.Name)
	}
	return nil
}

// NewOperatorToken returns a fresh personal API token (32 random bytes,
// base64url) and the SHA-256 under which it is stored.
func NewOperatorToken() (token string, sum [sha256.Size]byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", sum, errs.Wrap(errs.Internal, err, "generate an operator token")
	}
	token = "signet-op-" + base64.RawURLEncoding.EncodeToString(b)
	return token, sha256.Sum256([]byte(token)), nil
}

// NewOperator is operator name with role and a fresh personal token,
// checked as the store checks it, with its operator.add audit event in
// actor's name: the CLI and the console add operators through it and
// AddOperator. The token is for showing once; only its hash is kept.
func NewOperator(name, role, actor string) (op Operator, token string, ev audit.Event, err error) {
	op = Operator{Name: name, Role: role, TokenHash: make([]byte, sha256.Size)}
	if err := CheckOperator(op); err != nil {
		return Operator{}, "", ev, err
	}
	token, sum, err := NewOperatorToken()
	if err != nil {
		return Operator{}, "", ev, err
	}
	op.TokenHash = sum[:]
	data, _ := json.Marshal(map[string]string{"role": role})
	return op, token, audit.Event{Actor: actor, Data: data}, nil
}
