package console

import (
	"net/http"
	"net/url"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// roles are the roles an operator can have, least first.
var roles = []string{store.RoleViewer, store.RoleOperator, store.RoleAdmin}

// operators: GET /ui/operators, every operator (removed ones too) and the
// form to add one. Admins only.
func (c *Console) operators(w http.ResponseWriter, r *http.Request, s *session) {
	ops, err := c.o.Store.Operators(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	// After a removal, say so; but only of an operator that is removed, so
	// that a link cannot make the page claim what did not happen.
	removed := ""
	for _, op := range ops {
		if op.Name == r.URL.Query().Get("removed") && op.RemovedAt != nil {
			removed = op.Name
		}
	}
	c.render(w, http.StatusOK, "operators", c.page(s, "Operators", "operators", map[string]any{"Operators": ops, "Roles": roles, "Removed": removed}))
}

// addOperator: POST /ui/operators with a name and a role, checked and
// stored as signet operator add does (store.NewOperator); the new token
// is shown on this answer only.
func (c *Console) addOperator(w http.ResponseWriter, r *http.Request, s *session) {
	op, token, ev, err := store.NewOperator(r.PostFormValue("name"), r.PostFormValue("role"), s.Actor())
	if err == nil {
		err = c.o.Store.AddOperator(r.Context(), op, ev)
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.o.Log.Info("operator added", "operator", op.Name, "role", op.Role, "actor", s.Actor())
	c.render(w, http.StatusOK, "operator", c.page(s, "New operator "+op.Name, "operators", map[string]any{"Operator": op, "Token": token}))
}

// removeOperatorForm: GET /ui/operators/{name}/remove, the confirmation
// step.
func (c *Console) removeOperatorForm(w http.ResponseWriter, r *http.Request, s *session) {
	op, err := c.o.Store.Operator(r.Context(), r.PathValue("name"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, http.StatusOK, "unoperator", c.page(s, "Remove operator "+op.Name, "operators", op))
}

// removeOperator: POST /ui/operators/{name}/remove with the name typed as
// confirmation, as signet operator remove: the token stops working and
// the operator's sessions end at their next request.
func (c *Console) removeOperator(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	if r.PostFormValue("confirm") != name {
		c.fail(w, r, s, errs.New(errs.Malformed, "to remove operator %q, type its name into the confirmation field", limitText(name)))
		return
	}
	if err := c.o.Store.RemoveOperator(r.Context(), name, audit.Event{Actor: s.Actor()}); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.o.Log.Info("operator removed", "operator", name, "actor", s.Actor())
	http.Redirect(w, r, "/ui/operators?removed="+url.QueryEscape(name), http.StatusSeeOther)
}
