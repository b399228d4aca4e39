package lazymap

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestGetLoadsOnceAndForgets(t *testing.T) {
	var m Map[int]
	var loads atomic.Int64
	load := func() (int, error) { return int(loads.Add(1)), nil }
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := m.Get("a", load); err != nil || v != 1 {
				t.Errorf("Get = %d, %v; want the first load's 1", v, err)
			}
		}()
	}
	wg.Wait()
	if loads.Load() != 1 {
		t.Fatalf("%d loads for one key, want 1", loads.Load())
	}
	if _, err := m.Get("b", func() (int, error) { return 0, errors.New("token absent") }); err == nil {
		t.Fatal("a failed load returned no error")
	}
	if v, _ := m.Get("b", func() (int, error) { return 7, nil }); v != 7 {
		t.Fatalf("a failed load was remembered: got %d", v)
	}
	m.Forget("a")
	if v, _ := m.Get("a", load); v != 2 {
		t.Fatalf("after Forget got %d, want a fresh load (2)", v)
	}
	if v, _ := m.Get("b", load); v != 7 {
		t.Fatalf("Forget of a dropped b: got %d", v)
	}
}
