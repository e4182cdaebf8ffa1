// Package storetest is the conformance suite for cachecore.Store: the
// semantics of Envoy's shared data (proxy-wasm-cpp-host src/shared_data.cc)
// that the slot table, the model table and the leases are built on. Any
// Store — the in-memory one, shared data through the wazero host — must
// pass it:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func() cachecore.Store { return cachecore.NewMemStore() })
//	}
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/modelcache/modelcache/cachecore"
)

// Run runs every conformance test as a subtest. newStore must return an
// empty store each time it is called; stores from separate calls must not
// share keys.
func Run(t *testing.T, newStore func() cachecore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s cachecore.Store)
	}{
		{"GetMissingKey", testGetMissing},
		{"SetCasZeroIsUnconditional", testSetUnconditional},
		{"SetWithCurrentCas", testSetCurrentCas},
		{"SetWithStaleCasFails", testSetStaleCas},
		{"SetOnMissingKeyIgnoresCas", testSetMissingAnyCas},
		{"CasOfAnotherKeyNeverMatches", testForeignCas},
		{"EverySetGetsNewCas", testNewCasEverySet},
		{"EmptyValueKeepsKey", testEmptyValue},
		{"GetReturnsCopy", testGetCopy},
		{"SetCopiesValue", testSetCopy},
		{"BinaryValuesAndKeys", testBinary},
		{"KeysAreIndependent", testIndependentKeys},
		{"ConcurrentCasIncrements", testConcurrentIncrements},
		{"ConcurrentCreateOnlyHasOneWinner", testConcurrentCreateOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			tc.fn(t, s)
		})
	}
}

func mustSet(t *testing.T, s cachecore.Store, key string, value []byte, cas uint32) {
	t.Helper()
	if err := s.Set(key, value, cas); err != nil {
		t.Fatalf("Set(%q, %q, cas %d): %v", key, value, cas, err)
	}
}

func mustGet(t *testing.T, s cachecore.Store, key string) ([]byte, uint32) {
	t.Helper()
	v, cas, err := s.Get(key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if cas == 0 {
		t.Fatalf("Get(%q): cas 0 for an existing key", key)
	}
	return v, cas
}

func wantValue(t *testing.T, s cachecore.Store, key, want string) uint32 {
	t.Helper()
	v, cas := mustGet(t, s, key)
	if string(v) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, v, want)
	}
	return cas
}

func testGetMissing(t *testing.T, s cachecore.Store) {
	for _, key := range []string{"missing", "", "mc:i:0"} {
		if v, _, err := s.Get(key); !errors.Is(err, cachecore.ErrNotFound) || len(v) != 0 {
			t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
		}
	}
	// Setting another key does not create this one.
	mustSet(t, s, "other", []byte("x"), 0)
	if _, _, err := s.Get("missing"); !errors.Is(err, cachecore.ErrNotFound) {
		t.Fatalf("Get after setting another key: %v", err)
	}
}

func testSetUnconditional(t *testing.T, s cachecore.Store) {
	mustSet(t, s, "k", []byte("one"), 0)
	wantValue(t, s, "k", "one")
	mustSet(t, s, "k", []byte("two"), 0)
	wantValue(t, s, "k", "two")
	// cas 0 wins even after others have written.
	_, cas := mustGet(t, s, "k")
	mustSet(t, s, "k", []byte("three"), cas)
	mustSet(t, s, "k", []byte("four"), 0)
	wantValue(t, s, "k", "four")
}

func testSetCurrentCas(t *testing.T, s cachecore.Store) {
	mustSet(t, s, "k", []byte("v1"), 0)
	_, cas1 := mustGet(t, s, "k")
	mustSet(t, s, "k", []byte("v2"), cas1)
	cas2 := wantValue(t, s, "k", "v2")
	if cas2 == cas1 {
		t.Fatalf("a successful Set kept cas %d", cas1)
	}
	mustSet(t, s, "k", []byte("v3"), cas2)
	wantValue(t, s, "k", "v3")
}

func testSetStaleCas(t *testing.T, s cachecore.Store) {
	mustSet(t, s, "k", []byte("v1"), 0)
	_, cas1 := mustGet(t, s, "k")
	mustSet(t, s, "k", []byte("v2"), cas1)
	_, cas2 := mustGet(t, s, "k")
	if err := s.Set("k", []byte("stale"), cas1); !errors.Is(err, cachecore.ErrCasMismatch) {
		t.Fatalf("Set with stale cas: %v, want ErrCasMismatch", err)
	}
	// A failed Set changes nothing: neither the value nor the cas.
	if cas := wantValue(t, s, "k", "v2"); cas != cas2 {
		t.Fatalf("failed Set moved cas %d -> %d", cas2, cas)
	}
	// Also after an unconditional overwrite the old cas is stale.
	mustSet(t, s, "k", []byte("v3"), 0)
	if err := s.Set("k", []byte("stale"), cas2); !errors.Is(err, cachecore.ErrCasMismatch) {
		t.Fatalf("Set with cas from before an unconditional Set: %v", err)
	}
	wantValue(t, s, "k", "v3")
}

func testSetMissingAnyCas(t *testing.T, s cachecore.Store) {
	r := rand.New(rand.NewPCG(uint64(len(t.Name())), 7))
	cases := []uint32{1, 12345, 1<<32 - 1, r.Uint32() | 1, r.Uint32() | 1}
	for i, cas := range cases {
		key := "new-" + strconv.Itoa(i)
		if err := s.Set(key, []byte("v"), cas); err != nil {
			t.Fatalf("Set on missing key %q with cas %d: %v", key, cas, err)
		}
		// Now the key exists: the same cas must fail unless it happens to be
		// the key's current one.
		if cur := wantValue(t, s, key, "v"); cur != cas {
			if err := s.Set(key, []byte("again"), cas); !errors.Is(err, cachecore.ErrCasMismatch) {
				t.Fatalf("second Set with cas %d on existing key: %v", cas, err)
			}
		}
	}
}

// testForeignCas is what "create only if missing" rests on: the cas read
// from one key is never the current cas of another, so a Set with it fails
// on any existing key and succeeds on a missing one.
func testForeignCas(t *testing.T, s cachecore.Store) {
	mustSet(t, s, "anchor", []byte("a"), 0)
	_, anchor := mustGet(t, s, "anchor")
	for i := 0; i < 20; i++ {
		key := "k" + strconv.Itoa(i)
		if err := s.Set(key, []byte("created"), anchor); err != nil {
			t.Fatalf("create %q with foreign cas: %v", key, err)
		}
		if err := s.Set(key, []byte("again"), anchor); !errors.Is(err, cachecore.ErrCasMismatch) {
			t.Fatalf("second create of %q with foreign cas: %v, want ErrCasMismatch", key, err)
		}
		wantValue(t, s, key, "created")
	}
}

func testNewCasEverySet(t *testing.T, s cachecore.Store) {
	seen := map[uint32]string{}
	record := func(op, key string) {
		t.Helper()
		_, cas := mustGet(t, s, key)
		if prev, dup := seen[cas]; dup {
			t.Fatalf("%s: cas %d already handed out by %s", op, cas, prev)
		}
		seen[cas] = op
	}
	keys := []string{"a", "b", "c"}
	for i := 0; i < 50; i++ {
		key := keys[i%len(keys)]
		op := fmt.Sprintf("set #%d of %q", i, key)
		switch i % 4 {
		case 0: // unconditional, same value every time
			mustSet(t, s, key, []byte("same"), 0)
		case 1: // conditional on the current cas
			_, cas, err := s.Get(key)
			if err != nil {
				cas = 0
			}
			mustSet(t, s, key, []byte(op), cas)
		case 2: // empty value
			mustSet(t, s, key, nil, 0)
		case 3: // a fresh key
			key = "fresh-" + strconv.Itoa(i)
			mustSet(t, s, key, []byte("v"), 0)
		}
		record(op, key)
	}
}

func testEmptyValue(t *testing.T, s cachecore.Store) {
	mustSet(t, s, "k", []byte("value"), 0)
	mustSet(t, s, "k", nil, 0)
	v, cas, err := s.Get("k")
	if err != nil || len(v) != 0 || cas == 0 {
		t.Fatalf("Get after setting empty: %q, cas %d, %v; want empty value, non-zero cas, no error", v, cas, err)
	}
	// The emptied key still exists, so cas is enforced on it.
	if err := s.Set("k", []byte("x"), cas+1); !errors.Is(err, cachecore.ErrCasMismatch) {
		t.Fatalf("Set with wrong cas on an emptied key: %v, want ErrCasMismatch", err)
	}
	mustSet(t, s, "k", []byte("back"), cas)
	wantValue(t, s, "k", "back")
	// An empty value creates a key too.
	mustSet(t, s, "new", []byte{}, 0)
	if v, _, err := s.Get("new"); err != nil || len(v) != 0 {
		t.Fatalf("Get of a key created empty: %q, %v", v, err)
	}
}

func testGetCopy(t *testing.T, s cachecore.Store) {
	mustSet(t, s, "k", []byte("original"), 0)
	v, _ := mustGet(t, s, "k")
	for i := range v {
		v[i] = 'X'
	}
	_ = append(v[:0], "appended past the end"...)
	wantValue(t, s, "k", "original")
	// Two Gets do not share memory either.
	a, _ := mustGet(t, s, "k")
	b, _ := mustGet(t, s, "k")
	a[0] = 'Y'
	if b[0] != 'o' {
		t.Fatalf("two Gets share a buffer")
	}
}

func testSetCopy(t *testing.T, s cachecore.Store) {
	buf := []byte("original")
	mustSet(t, s, "k", buf, 0)
	copy(buf, "XXXXXXXX")
	wantValue(t, s, "k", "original")
}

func testBinary(t *testing.T, s cachecore.Store) {
	val := make([]byte, 256)
	for i := range val {
		val[i] = byte(i)
	}
	key := "mc:e:1:2\x00\xff"
	mustSet(t, s, key, val, 0)
	v, _ := mustGet(t, s, key)
	if !bytes.Equal(v, val) {
		t.Fatalf("binary value changed")
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	mustSet(t, s, "big", big, 0)
	if v, _ := mustGet(t, s, "big"); !bytes.Equal(v, big) {
		t.Fatalf("64 KiB value changed")
	}
}

func testIndependentKeys(t *testing.T, s cachecore.Store) {
	mustSet(t, s, "a", []byte("1"), 0)
	_, casA := mustGet(t, s, "a")
	mustSet(t, s, "b", []byte("2"), 0)
	// Writing b does not move a's cas.
	if _, cas := mustGet(t, s, "a"); cas != casA {
		t.Fatalf("Set of b moved a's cas %d -> %d", casA, cas)
	}
	mustSet(t, s, "a", []byte("3"), casA)
	wantValue(t, s, "a", "3")
	wantValue(t, s, "b", "2")
}

const (
	workers    = 8
	increments = 300
)

// testConcurrentIncrements: 8 goroutines (Envoy workers) increment one
// counter with get → modify → set(cas), retrying on mismatch. No increment
// may be lost or applied twice.
func testConcurrentIncrements(t *testing.T, s cachecore.Store) {
	mustSet(t, s, "counter", []byte("0"), 0)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < increments; i++ {
				for {
					v, cas, err := s.Get("counter")
					if err != nil {
						errs <- fmt.Errorf("Get: %w", err)
						return
					}
					n, err := strconv.Atoi(string(v))
					if err != nil {
						errs <- fmt.Errorf("counter holds %q", v)
						return
					}
					err = s.Set("counter", []byte(strconv.Itoa(n+1)), cas)
					if err == nil {
						break
					}
					if !errors.Is(err, cachecore.ErrCasMismatch) {
						errs <- fmt.Errorf("Set: %w", err)
						return
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantValue(t, s, "counter", strconv.Itoa(workers*increments))
}

// testConcurrentCreateOnly: racing creators of one key, each
// using a cas read from another key, produce exactly one winner, and the
// value is the winner's.
func testConcurrentCreateOnly(t *testing.T, s cachecore.Store) {
	mustSet(t, s, "anchor", []byte("a"), 0)
	_, anchor := mustGet(t, s, "anchor")
	const rounds = 50
	for round := 0; round < rounds; round++ {
		key := "lease-" + strconv.Itoa(round)
		start := make(chan struct{})
		var wg sync.WaitGroup
		won := make(chan int, workers)
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := s.Set(key, []byte(strconv.Itoa(w)), anchor)
				switch {
				case err == nil:
					won <- w
				case !errors.Is(err, cachecore.ErrCasMismatch):
					errs <- err
				}
			}()
		}
		close(start)
		wg.Wait()
		close(won)
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		var winners []int
		for w := range won {
			winners = append(winners, w)
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d creators won: %v", round, len(winners), winners)
		}
		wantValue(t, s, key, strconv.Itoa(winners[0]))
	}
}
