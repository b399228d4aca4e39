package orders

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"signet/internal/acme"
	"signet/internal/acme/va"
	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// Validation is one validation running on this node.
type Validation struct {
	b     *Book
	id    string // the order's
	typ   string
	done  chan struct{}
	order store.ACMEOrder // after done: the order as recorded with the outcome
	ok    bool            // whether this validation recorded it
}

// Done is closed when the validation's outcome is recorded, or when it
// could not be (another writer decided the authorization first).
func (v *Validation) Done() <-chan struct{} { return v.done }

// Order waits for the validation and returns the order with its outcome:
// as this validation recorded it, or as the store has it now.
func (v *Validation) Order(ctx context.Context) (store.ACMEOrder, error) {
	<-v.done
	if v.ok {
		return v.order, nil
	}
	return v.b.store.ACMEOrder(ctx, v.id)
}

func validationKey(order string, n int) string { return order + "/" + strconv.Itoa(n) }

// Validating reports whether this node is validating challenge typ of
// authorization n of order id: the store records outcomes only, so a
// challenge is processing (§7.1.6) only on the node that runs it.
func (b *Book) Validating(id string, n int, typ string) bool {
	running, ok := b.inflight.Load(validationKey(id, n))
	return ok && running.(*Validation).typ == typ
}

// Validate starts validating challenge typ of authorization n of o (§7.5.1)
// for the account whose key has thumbprint keyID, in the background, and
// returns it; or the validation of that authorization already running on
// this node. It returns nil when there is nothing to validate: the
// authorization or the challenge is no longer pending. An account that
// failed too many validations of the name lately is refused (rateLimited).
func (b *Book) Validate(o store.ACMEOrder, n int, typ, keyID string) (*Validation, error) {
	az := &o.Authzs[n]
	i := slices.IndexFunc(az.Challenges, func(c store.ACMEChallenge) bool { return c.Type == typ })
	if i < 0 || b.AuthzStatus(&o, n) != store.StatusPending || az.Challenges[i].Status != store.StatusPending {
		return nil, nil
	}
	key := validationKey(o.ID, n)
	if running, busy := b.inflight.Load(key); busy {
		return running.(*Validation), nil
	}
	if err := b.o.Limits.CanValidate(o.AccountID, az.Identifier.Value); err != nil {
		return nil, err
	}
	v := &Validation{b: b, id: o.ID, typ: typ, done: make(chan struct{})}
	if running, busy := b.inflight.LoadOrStore(key, v); busy {
		return running.(*Validation), nil
	}
	token := az.Challenges[i].Token
	b.bg.Add(1)
	go b.validate(clone(o), n, typ, token, acme.Identifier(az.Identifier), token+"."+keyID, key, v)
	return v, nil
}

// validate runs one validation and records its outcome in the order, read
// again only if it changed meanwhile (a compare-and-swap on its version).
func (b *Book) validate(o store.ACMEOrder, n int, typ, token string, id acme.Identifier, keyAuth, key string, v *Validation) {
	defer b.bg.Done()
	defer close(v.done)
	defer b.inflight.Delete(key)
	verr := b.o.VA.Validate(b.bgCtx, typ, id, token, keyAuth)
	for try := range 5 {
		if try > 0 {
			var err error
			if o, err = b.store.ACMEOrder(b.bgCtx, o.ID); err != nil {
				return
			}
		}
		ev, ok := outcome(&o, n, typ, verr, b.now(), b.o.AuthzReuse)
		if !ok {
			return
		}
		settle(&o)
		err := b.store.UpdateACMEOrder(b.bgCtx, o, ev)
		if err == nil {
			c := o.Authzs[n].Challenges[slices.IndexFunc(o.Authzs[n].Challenges, func(c store.ACMEChallenge) bool { return c.Type == typ })]
			b.log.Info("acme validation", "account", o.AccountID, "authority", o.Authority, "identifier", id.Type+":"+id.Value,
				"challenge", typ, "outcome", c.Status, "problem", c.ErrorType)
			if verr == nil {
				b.o.Metrics.Validation(typ, true, "")
			} else {
				b.o.Metrics.Validation(typ, false, acme.ErrorNS+c.ErrorType)
			}
			if verr != nil {
				b.o.Limits.ValidationFailed(o.AccountID, id.Value)
			}
			o.Version++
			v.order, v.ok = o, true
			return
		}
		if errs.KindOf(err) != errs.Conflict {
			if b.bgCtx.Err() == nil {
				b.log.Warn("acme: recording a validation", "order", o.ID, "err", err)
			}
			return
		}
	}
}

// outcome moves challenge typ of authorization n, and the authorization,
// to valid (verr nil) or invalid with verr's problem, and returns the
// acme.authz.validate event that says so. A valid authorization that later
// orders may reuse (reuse > 0) expires reuse from now, when it can be
// reused no longer. It refuses, false, when the authorization is no longer
// pending: another validation or a deactivation decided it first.
func outcome(o *store.ACMEOrder, n int, typ string, verr error, now time.Time, reuse time.Duration) (audit.Event, bool) {
	az := &o.Authzs[n]
	i := slices.IndexFunc(az.Challenges, func(c store.ACMEChallenge) bool { return c.Type == typ })
	if az.Status != store.StatusPending || i < 0 {
		return audit.Event{}, false
	}
	c := &az.Challenges[i]
	if verr == nil {
		c.Status, c.Validated, az.Status = store.StatusValid, now.UTC().Truncate(time.Second), store.StatusValid
		if reuse > 0 {
			az.Expires = c.Validated.Add(reuse)
		}
	} else {
		c.Status, az.Status = store.StatusInvalid, store.StatusInvalid
		c.ErrorType, c.ErrorDetail = string(acme.Connection), verr.Error()
		var f *va.Failure
		if errors.As(verr, &f) {
			c.ErrorType = string(f.Type)
		}
	}
	data := map[string]any{"authz": n, "identifier": az.Identifier, "challenge": typ, "status": az.Status}
	if az.Wildcard {
		data["wildcard"] = true
	}
	if c.ErrorType != "" {
		data["error"] = c.ErrorType + ": " + c.ErrorDetail
	}
	return event(audit.KindACMEAuthzValidate, o, data), true
}
