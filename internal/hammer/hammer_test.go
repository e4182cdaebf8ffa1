package hammer

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Every worker is running before any returns: each waits until all p have
// arrived, which would deadlock (and time the test out) were the workers
// run one after another.
func TestGoReleasesAllAtOnce(t *testing.T) {
	const p = 16
	var arrived atomic.Int32
	var mu sync.Mutex
	all := sync.NewCond(&mu)
	errs := Go(p, func(w int) error {
		mu.Lock()
		defer mu.Unlock()
		if arrived.Add(1) == p {
			all.Broadcast()
		}
		for arrived.Load() < p {
			all.Wait()
		}
		return nil
	})
	if len(errs) != p {
		t.Fatalf("%d results, want %d", len(errs), p)
	}
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}
}

func TestGoReportsErrorsAndPanics(t *testing.T) {
	boom := errors.New("boom")
	errs := Go(4, func(w int) error {
		switch w {
		case 1:
			return boom
		case 2:
			var m map[string]int
			m["x"] = 1 // panics
		}
		return nil
	})
	if errs[0] != nil || errs[3] != nil {
		t.Fatalf("healthy workers failed: %v", errs)
	}
	if !errors.Is(errs[1], boom) {
		t.Fatalf("worker 1: %v, want boom", errs[1])
	}
	if errs[2] == nil || !strings.Contains(errs[2].Error(), "panic") {
		t.Fatalf("worker 2's panic not reported: %v", errs[2])
	}
}

// fakeT records what Run and Loop report without failing this test.
type fakeT struct {
	testing.TB
	errors []string
	failed bool
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, format)
}
func (f *fakeT) FailNow() { f.failed = true }

func TestLoopStopsAWorkerAtItsFirstError(t *testing.T) {
	var calls [3]atomic.Int32
	ft := &fakeT{}
	Loop(ft, 3, 10, func(w, i int) error {
		calls[w].Add(1)
		if w == 1 && i == 4 {
			return errors.New("bad")
		}
		return nil
	})
	if !ft.failed || len(ft.errors) != 1 {
		t.Fatalf("failed=%v errors=%v, want one error and a failure", ft.failed, ft.errors)
	}
	if calls[0].Load() != 10 || calls[1].Load() != 5 || calls[2].Load() != 10 {
		t.Fatalf("calls %d %d %d, want 10 5 10", calls[0].Load(), calls[1].Load(), calls[2].Load())
	}
	ok := &fakeT{}
	Loop(ok, 2, 3, func(w, i int) error { return nil })
	if ok.failed || len(ok.errors) != 0 {
		t.Fatalf("a clean run failed: %v", ok.errors)
	}
}
