package ca_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnlyCASigns keeps the one issuance path the only one: outside ca (and
// kms, which implements signers, and sshca, which signs SSH certificates),
// no production code creates certificates or asks a key to sign.
func TestOnlyCASigns(t *testing.T) {
	allowed := map[string]bool{"internal/ca": true, "internal/kms": true, "internal/sshca": true}
	forbidden := map[string]bool{
		"CreateCertificate": true, "CreateRevocationList": true, "CreateResponse": true,
		"Sign": true, "SignMessage": true, "SignCert": true, "SignWithAlgorithm": true,
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			for a := range allowed {
				if rel == a || strings.HasPrefix(rel, a+"/") {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			// A signer's Sign takes (rand, digest, opts); big.Int's Sign() takes nothing.
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && forbidden[sel.Sel.Name] && len(call.Args) >= 2 {
				found = append(found, fset.Position(call.Pos()).String()+": "+sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Fatalf("only %d files checked; is the walk rooted right (%s)?", checked, root)
	}
	if len(found) > 0 {
		t.Errorf("signing outside the issuance path:\n%s", strings.Join(found, "\n"))
	}
}

// TestEventsNamed: in ca and sshca, every audit event is built by an event
// helper from an audit.Event literal whose fields are named, with its Kind
// one of audit's constants: no helper takes kind, actor, authority and
// subject as positional strings that a call could swap unseen.
func TestEventsNamed(t *testing.T) {
	calls := 0
	for _, dir := range []string{".", "../sshca"} {
		fset := token.NewFileSet()
		pkgs, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range pkgs {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "event" {
					return true
				}
				calls++
				where := fset.Position(call.Pos()).String()
				lit, ok := call.Args[0].(*ast.CompositeLit)
				if !ok || len(call.Args) != 2 {
					t.Errorf("%s: event's first argument is not an audit.Event literal", where)
					return true
				}
				kind := false
				for _, e := range lit.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						t.Errorf("%s: an audit.Event field is not named", where)
						continue
					}
					if k, _ := kv.Key.(*ast.Ident); k != nil && k.Name == "Kind" {
						sel, _ := kv.Value.(*ast.SelectorExpr)
						kind = sel != nil && strings.HasPrefix(sel.Sel.Name, "Kind")
						if kind {
							pkg, ok := sel.X.(*ast.Ident)
							kind = ok && pkg.Name == "audit"
						}
					}
				}
				if !kind {
					t.Errorf("%s: the event's Kind is not one of audit's Kind constants", where)
				}
				return true
			})
		}
	}
	if calls < 10 {
		t.Fatalf("only %d event calls found in ca and sshca", calls)
	}
}
