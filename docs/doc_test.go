// Package docs holds signet's documents; its test keeps ARCHITECTURE.md
// pointing at code that exists.
package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var (
	// A repository path in backquotes: a file or directory under one of these.
	pathRef = regexp.MustCompile("`((?:cmd|internal|scripts|docs)/[A-Za-z0-9_./-]*)`")
	// A Go name followed by the file that declares it: "`CA.Issue`
	// (`internal/ca/issue.go`" or "`Load` in `internal/config/config.go`".
	nameRef = regexp.MustCompile("`([A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)?)`,?\\s+(?:\\(|in\\s+)`([A-Za-z0-9_./-]+\\.go)`")
)

// TestArchitectureNamesExist fails when ARCHITECTURE.md names a file that
// is gone, or a function, method, type, field, constant or variable that
// the file it names no longer declares: a rename must update the document.
func TestArchitectureNamesExist(t *testing.T) {
	doc, err := os.ReadFile("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	root := ".."
	paths := pathRef.FindAllStringSubmatch(text, -1)
	for _, m := range paths {
		if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
			t.Errorf("ARCHITECTURE.md names %s, which does not exist", m[1])
		}
	}
	names := nameRef.FindAllStringSubmatch(text, -1)
	declared := map[string]map[string]bool{}
	for _, m := range names {
		name, file := m[1], m[2]
		if declared[file] == nil {
			d, err := declarations(filepath.Join(root, file))
			if err != nil {
				t.Errorf("ARCHITECTURE.md names %s: %v", file, err)
				continue
			}
			declared[file] = d
		}
		if !declared[file][name] {
			t.Errorf("ARCHITECTURE.md says %s declares %s; it does not", file, name)
		}
	}
	if len(paths) < 50 || len(names) < 50 {
		t.Fatalf("found only %d paths and %d names in ARCHITECTURE.md: has its notation changed?", len(paths), len(names))
	}
}

// declarations lists what a Go file declares at top level: funcs as Name,
// methods as Recv.Name, types, constants and variables, and the fields and
// interface methods of its types as Type.Field.
func declarations(path string) (map[string]bool, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			name := d.Name.Name
			if d.Recv != nil && len(d.Recv.List) == 1 {
				name = receiver(d.Recv.List[0].Type) + "." + name
			}
			out[name] = true
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					out[s.Name.Name] = true
					for _, field := range members(s.Type) {
						out[s.Name.Name+"."+field] = true
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						out[n.Name] = true
					}
				}
			}
		}
	}
	return out, nil
}

// receiver is the type name of a method receiver: T, *T, T[P] or *T[P].
func receiver(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return "?"
		}
	}
}

// members names the fields of a struct type or the methods of an interface.
func members(e ast.Expr) []string {
	var list *ast.FieldList
	switch x := e.(type) {
	case *ast.StructType:
		list = x.Fields
	case *ast.InterfaceType:
		list = x.Methods
	default:
		return nil
	}
	var out []string
	for _, f := range list.List {
		for _, n := range f.Names {
			out = append(out, n.Name)
		}
	}
	return out
}
