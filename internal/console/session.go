package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// Cookies. The __Host- prefix makes browsers keep them to this host, over
// HTTPS, for every path: no other site or subdomain can plant one.
const (
	sessionCookie = "__Host-signet-session"
	signinCookie  = "__Host-signet-signin" // ties the sign-in form's CSRF token to this browser
)

// Audit event kinds of the console.
const (
	KindSignIn  = "console.signin"
	KindSignOut = "console.signout"
)

// session is a signed-in request's session.
type session struct {
	Operator
	hash []byte // SHA-256 of the ID, the store's key
	csrf string // the token every form of the session carries
}

// newID is a fresh random session (or sign-in) ID.
func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// csrfToken derives a form token from a secret only this browser holds
// (its session or sign-in cookie): a page elsewhere can neither read nor
// compute it.
func csrfToken(id, purpose string) string {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte("signet console csrf: " + purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validCSRF says whether the form's csrf field is want.
func validCSRF(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// current reads the request's session from the store: nil when there is
// none or it has expired (then it is deleted).
func (c *Console) current(r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	hash := hashID(ck.Value)
	stored, err := c.o.Store.ConsoleSession(r.Context(), hash)
	if errs.KindOf(err) == errs.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := c.o.Now()
	if now.Sub(stored.SeenAt) > IdleTimeout || now.Sub(stored.CreatedAt) > AbsoluteTimeout {
		return nil, c.o.Store.DeleteConsoleSession(r.Context(), hash)
	}
	op, err := c.o.Recheck(r.Context(), stored.Operator, stored.Certificate)
	if errs.KindOf(err) == errs.NotFound {
		c.o.Log.Info("console session ended", "operator", stored.Operator, "reason", err)
		return nil, c.o.Store.DeleteConsoleSession(r.Context(), hash)
	}
	if err != nil {
		return nil, err
	}
	if err := c.o.Store.TouchConsoleSession(r.Context(), hash, now); err != nil {
		return nil, err
	}
	return &session{Operator: op, hash: hash, csrf: csrfToken(ck.Value, "session")}, nil
}

// need admits requests of a session whose role can do what needs role:
// others go to the sign-in page (GET) or are refused. Every POST must
// carry the session's CSRF token.
func (c *Console) need(role string, h func(w http.ResponseWriter, r *http.Request, s *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.current(r)
		switch {
		case err != nil:
			c.fail(w, r, nil, err)
		case s == nil && r.Method == http.MethodGet:
			http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
		case s == nil:
			c.fail(w, r, nil, errs.New(errs.Unauthorized, "you are not signed in (or your session expired): sign in again at /ui/signin"))
		case r.Method == http.MethodPost && !validCSRF(r, s.csrf):
			c.fail(w, r, s, errs.New(errs.Rejected, "the form's CSRF token is missing or wrong: reload the page and send the form again"))
		case !s.Can(role):
			c.fail(w, r, s, errs.New(errs.Rejected, "your role %s may not do this; it needs the role %s or above", s.Role, role))
		default:
			h(w, r, s)
		}
	})
}

// signinForm: GET /ui/signin, with a CSRF token tied to a cookie of this
// browser's (made here if it has none).
func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	c.showSignin(w, r, http.StatusOK, "")
}

func (c *Console) showSignin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	id := ""
	if ck, err := r.Cookie(signinCookie); err == nil && len(ck.Value) >= 43 {
		id = ck.Value
	} else {
		id = newID()
		setCookie(w, signinCookie, id, 3600)
	}
	certificate := r.TLS != nil && len(r.TLS.PeerCertificates) > 0
	c.render(w, status, "signin", page{Title: "Sign in", Now: c.o.Now(), CSRF: csrfToken(id, "signin"),
		Data: map[string]any{"Problem": problem, "Certificate": certificate}})
}

// signin: POST /ui/signin with a token (or none, for the client
// certificate). Attempts count against the sign-in limits of the API; a new
// session ID is made every time, and the old session, if any, ends.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(signinCookie)
	if err != nil || !validCSRF(r, csrfToken(ck.Value, "signin")) {
		c.fail(w, r, nil, errs.New(errs.Rejected, "the sign-in form's CSRF token is missing or wrong: reload the sign-in page and try again"))
		return
	}
	if err := c.o.Limits.CanAuthenticate(r); err != nil {
		c.showSignin(w, r, c.status(err), err.Error())
		return
	}
	token := r.PostFormValue("token")
	op, err := c.o.Authenticate(r, token)
	if err != nil {
		c.o.Limits.AuthenticationFailed(r)
		c.o.Log.Warn("console sign-in refused", "remote", r.RemoteAddr, "err", err)
		c.showSignin(w, r, c.status(err), "Sign-in refused: "+err.Error())
		return
	}
	if old, err := r.Cookie(sessionCookie); err == nil {
		c.o.Store.DeleteConsoleSession(r.Context(), hashID(old.Value))
	}
	now := c.o.Now()
	c.o.Store.DeleteStaleConsoleSessions(r.Context(), now.Add(-IdleTimeout), now.Add(-AbsoluteTimeout))
	id := newID()
	err = c.o.Store.CreateConsoleSession(r.Context(), store.ConsoleSession{IDHash: hashID(id), Operator: op.ID, Role: op.Role,
		Certificate: op.Certificate, CreatedAt: now, SeenAt: now})
	if err == nil {
		data, _ := json.Marshal(map[string]any{"role": op.Role})
		err = c.o.Store.AppendEvent(r.Context(), audit.Event{Kind: KindSignIn, Actor: op.Actor(), Data: data})
	}
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	setCookie(w, sessionCookie, id, int(AbsoluteTimeout.Seconds()))
	setCookie(w, signinCookie, "", -1)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// signout: POST /ui/signout deletes the session from the store.
func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *session) {
	err := c.o.Store.DeleteConsoleSession(r.Context(), s.hash)
	if err == nil {
		err = c.o.Store.AppendEvent(r.Context(), audit.Event{Kind: KindSignOut, Actor: s.Actor()})
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	setCookie(w, sessionCookie, "", -1)
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

func (c *Console) status(err error) int {
	if c.o.StatusOf == nil {
		return http.StatusInternalServerError
	}
	return c.o.StatusOf(err)
}
