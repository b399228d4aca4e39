package sqlstore

import "context"

// Source is a store whose rows can be copied into another, table by table:
// the columns asked for, in order, as the database holds them.
type Source interface {
	Export(ctx context.Context, table string, columns []string, fn func(row []any) error) error
}

// CopiedTables are what a copy of a store carries ('signet store migrate',
// backup and restore in either direction), in an order that satisfies the
// foreign keys. Every other table is in NotCopied.
var CopiedTables = []string{
	"events", "authorities", "certificates", "certificate_names",
	"ssh_authority_keys", "ssh_certificates", "crl_numbers",
	"acme_accounts", "acme_eab_keys", "acme_orders", "acme_reusable_authzs", "secrets", "operators",
	"endpoint_checks",
}

// NotCopied are the tables a copy leaves out, each rebuilt where it lands:
// the CRLs and OCSP responses last published (signed anew at start) and
// the counter numbering them, the flag a migration raises for the audit
// baseline, the schema's own version table, and the console's sessions (a
// copy signs everyone out).
var NotCopied = []string{"published_crls", "ocsp_responses", "revocation_version", "audit_baseline", "schema_migrations", "console_sessions"}
