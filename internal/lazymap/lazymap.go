// Package lazymap holds values that are loaded on first use and then read
// without a lock: a copy-on-write map for things that rarely change, such
// as authorities with their opened keys, read on every issuance.
package lazymap

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Map is safe for concurrent use; its zero value is empty and ready.
type Map[V any] struct {
	mu sync.Mutex                   // serialises loads and changes; reads take no lock
	m  atomic.Pointer[map[string]V] // replaced whole on every change
}

// Get returns the value for key, calling load once to make it when absent.
// Loads are serialised, so two callers never open the same key twice; a
// failed load is not remembered.
func (l *Map[V]) Get(key string, load func() (V, error)) (V, error) {
	if v, ok := l.lookup(key); ok {
		return v, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.lookup(key); ok {
		return v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	l.replace(func(m map[string]V) { m[key] = v })
	return v, nil
}

// Forget drops key, so that the next Get loads it again.
func (l *Map[V]) Forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.replace(func(m map[string]V) { delete(m, key) })
}

// Keys lists the keys loaded now.
func (l *Map[V]) Keys() []string {
	m := l.m.Load()
	if m == nil {
		return nil
	}
	return slices.Collect(maps.Keys(*m))
}

func (l *Map[V]) lookup(key string) (V, bool) {
	var zero V
	m := l.m.Load()
	if m == nil {
		return zero, false
	}
	v, ok := (*m)[key]
	return v, ok
}

// replace publishes a changed copy; called with mu held.
func (l *Map[V]) replace(change func(map[string]V)) {
	m := map[string]V{}
	if old := l.m.Load(); old != nil {
		m = maps.Clone(*old)
	}
	change(m)
	l.m.Store(&m)
}
