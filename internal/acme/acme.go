// Package acme owns the wire format of signet's ACME server (RFC 8555, RFC
// 8738 IP identifiers, RFC 8737 tls-alpn-01, RFC 9773 renewal information,
// draft-ietf-acme-profiles): the JSON objects and the problem types. The
// HTTP front end is acme/wfe, validation is acme/va, renewal windows acme/ari.
package acme

import (
	"encoding/json"
	"time"
)

// ProblemType is an RFC 8555 §6.7 error type without its URN prefix.
type ProblemType string

// ErrorNS prefixes every ProblemType on the wire.
const ErrorNS = "urn:ietf:params:acme:error:"

// The problem types signet answers with.
const (
	AccountDoesNotExist     ProblemType = "accountDoesNotExist"
	AlreadyReplaced         ProblemType = "alreadyReplaced"
	AlreadyRevoked          ProblemType = "alreadyRevoked"
	BadCSR                  ProblemType = "badCSR"
	BadNonce                ProblemType = "badNonce"
	BadPublicKey            ProblemType = "badPublicKey"
	BadRevocationReason     ProblemType = "badRevocationReason"
	BadSignatureAlgorithm   ProblemType = "badSignatureAlgorithm"
	Connection              ProblemType = "connection"
	DNS                     ProblemType = "dns"
	ExternalAccountRequired ProblemType = "externalAccountRequired"
	IncorrectResponse       ProblemType = "incorrectResponse"
	InvalidContact          ProblemType = "invalidContact"
	InvalidProfile          ProblemType = "invalidProfile"
	Malformed               ProblemType = "malformed"
	OrderNotReady           ProblemType = "orderNotReady"
	RateLimited             ProblemType = "rateLimited"
	RejectedIdentifier      ProblemType = "rejectedIdentifier"
	ServerInternal          ProblemType = "serverInternal"
	TLS                     ProblemType = "tls"
	Unauthorized            ProblemType = "unauthorized"
	UnsupportedContact      ProblemType = "unsupportedContact"
	UnsupportedIdentifier   ProblemType = "unsupportedIdentifier"
)

// Problem is an RFC 7807 problem document with RFC 8555 subproblems.
type Problem struct {
	Type        string      `json:"type"`
	Detail      string      `json:"detail,omitempty"`
	Status      int         `json:"status,omitempty"`
	Identifier  *Identifier `json:"identifier,omitempty"`
	Subproblems []Problem   `json:"subproblems,omitempty"`
	// Algorithms lists the JWS algorithms accepted, with badSignatureAlgorithm
	// (RFC 8555 §6.2).
	Algorithms []string `json:"algorithms,omitempty"`
}

// Identifier names what a certificate is for: type "dns" or "ip".
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Directory is the resource clients start from (RFC 8555 §7.1.1).
type Directory struct {
	NewNonce    string `json:"newNonce"`
	NewAccount  string `json:"newAccount"`
	NewOrder    string `json:"newOrder"`
	RevokeCert  string `json:"revokeCert"`
	KeyChange   string `json:"keyChange"`
	RenewalInfo string `json:"renewalInfo,omitempty"`
	Meta        Meta   `json:"meta"`
}

// Meta describes the server; Profiles maps profile names to descriptions.
type Meta struct {
	Website                 string            `json:"website,omitempty"`
	CAAIdentities           []string          `json:"caaIdentities,omitempty"`
	ExternalAccountRequired bool              `json:"externalAccountRequired"`
	Profiles                map[string]string `json:"profiles,omitempty"`
}

// Account is an account object (§7.1.2).
type Account struct {
	Status  string   `json:"status"`
	Contact []string `json:"contact,omitempty"`
	Orders  string   `json:"orders"`
	// ExternalAccountBinding echoes the binding's key ID, not the JWS.
	ExternalAccountBinding json.RawMessage `json:"externalAccountBinding,omitempty"`
}

// Order is an order object (§7.1.3).
type Order struct {
	Status         string       `json:"status"`
	Expires        time.Time    `json:"expires"`
	Identifiers    []Identifier `json:"identifiers"`
	Authorizations []string     `json:"authorizations"`
	Finalize       string       `json:"finalize"`
	Certificate    string       `json:"certificate,omitempty"`
	Error          *Problem     `json:"error,omitempty"`
	Profile        string       `json:"profile,omitempty"`
	Replaces       string       `json:"replaces,omitempty"`
}

// Authorization is an authorization object (§7.1.4).
type Authorization struct {
	Identifier Identifier  `json:"identifier"`
	Status     string      `json:"status"`
	Expires    time.Time   `json:"expires"`
	Challenges []Challenge `json:"challenges"`
	Wildcard   bool        `json:"wildcard,omitempty"`
}

// Challenge is a challenge object (§8).
type Challenge struct {
	Type      string     `json:"type"`
	URL       string     `json:"url"`
	Status    string     `json:"status"`
	Token     string     `json:"token"`
	Validated *time.Time `json:"validated,omitempty"`
	Error     *Problem   `json:"error,omitempty"`
}

// Challenge types.
const (
	HTTP01    = "http-01"
	DNS01     = "dns-01"
	TLSALPN01 = "tls-alpn-01"
)

// NewAccountRequest is the payload of newAccount and of account updates.
type NewAccountRequest struct {
	Contact                []string        `json:"contact"`
	TermsOfServiceAgreed   bool            `json:"termsOfServiceAgreed"`
	OnlyReturnExisting     bool            `json:"onlyReturnExisting"`
	ExternalAccountBinding json.RawMessage `json:"externalAccountBinding"`
	Status                 string          `json:"status"`
}

// NewOrderRequest is the payload of newOrder.
type NewOrderRequest struct {
	Identifiers []Identifier `json:"identifiers"`
	NotBefore   string       `json:"notBefore"`
	NotAfter    string       `json:"notAfter"`
	Profile     string       `json:"profile"`
	Replaces    string       `json:"replaces"`
}

// FinalizeRequest carries the CSR, base64url DER.
type FinalizeRequest struct {
	CSR string `json:"csr"`
}

// RevokeRequest is the payload of revokeCert.
type RevokeRequest struct {
	Certificate string `json:"certificate"`
	Reason      *int   `json:"reason"`
}

// KeyChangeRequest is the payload of keyChange's inner JWS.
type KeyChangeRequest struct {
	Account string          `json:"account"`
	OldKey  json.RawMessage `json:"oldKey"`
}

// StatusUpdate is the payload that deactivates an account or authorization.
type StatusUpdate struct {
	Status string `json:"status"`
}

// RenewalInfo is the answer of the renewalInfo endpoint (RFC 9773).
type RenewalInfo struct {
	SuggestedWindow Window `json:"suggestedWindow"`
	ExplanationURL  string `json:"explanationURL,omitempty"`
}

// Window is a time span in which to renew.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}
