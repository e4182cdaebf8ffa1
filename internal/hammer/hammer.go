// Package hammer runs the concurrency tests' workers: P goroutines released
// at once, each reporting an error instead of calling t.Fatal off the test
// goroutine (which would not stop the test), with a worker's panic turned
// into its error so one bad worker fails the test rather than the binary.
package hammer

import (
	"fmt"
	"runtime/debug"
	"sync"
	"testing"
)

// Go runs fn(w) for w in [0, p) on p goroutines that all start only once
// every one of them exists, waits for all of them, and returns each
// worker's error (nil for a worker that succeeded). A panic in a worker is
// recovered and becomes its error, with the stack.
func Go(p int, fn func(w int) error) []error {
	errs := make([]error, p)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < p; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[w] = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
				}
			}()
			<-start
			errs[w] = fn(w)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// Run is Go, then fails t (on the test goroutine) with every worker's
// error, if any.
func Run(t testing.TB, p int, fn func(w int) error) {
	t.Helper()
	failed := false
	for w, err := range Go(p, fn) {
		if err != nil {
			t.Errorf("worker %d: %v", w, err)
			failed = true
		}
	}
	if failed {
		t.FailNow()
	}
}

// Loop is Run with each worker calling fn(w, i) for i in [0, n), stopping
// at its first error.
func Loop(t testing.TB, p, n int, fn func(w, i int) error) {
	t.Helper()
	Run(t, p, func(w int) error {
		for i := 0; i < n; i++ {
			if err := fn(w, i); err != nil {
				return fmt.Errorf("iteration %d: %w", i, err)
			}
		}
		return nil
	})
}
