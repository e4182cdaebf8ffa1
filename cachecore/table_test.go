package cachecore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modelcache/modelcache/internal/hammer"
)

// Fingerprint is a test fingerprint of a key (the cache's own is keyed by
// the process secret: Cache.fingerprint).
func Fingerprint(key []byte) uint64 {
	fp := Hash64(key, 0x6d6f64656c636163)
	if fp == 0 {
		fp = 1
	}
	return fp
}

// tableEntry encodes an entry for key stored at `at`, fresh for ttl ms and
// dead at staleUntil.
func tableEntry(key, body string, at, freshUntil, staleUntil int64) []byte {
	e := Entry{Key: []byte(key), StoredAt: at, FreshUntil: freshUntil, StaleUntil: staleUntil, Status: 200, Body: []byte(body)}
	return e.AppendEncode(nil)
}

// put inserts key with fingerprint fp (tests pick fingerprints to place keys
// in buckets and to force collisions).
func put(t *testing.T, tb *Table, fp uint64, key, body string, staleUntil, now int64) InsertResult {
	t.Helper()
	res, err := tb.Insert(fp, 0, staleUntil, tableEntry(key, body, now, staleUntil, staleUntil), now)
	if err != nil {
		t.Fatalf("Insert(%s): %v", key, err)
	}
	return res
}

// get returns the body stored under key, or "" for a miss.
func get(t *testing.T, tb *Table, fp uint64, key string, now int64) string {
	t.Helper()
	e, err := tb.Lookup(fp, []byte(key), now)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", key, err)
	}
	if e == nil {
		return ""
	}
	if string(e.Key) != key {
		t.Fatalf("Lookup(%s) returned the entry of %q", key, e.Key)
	}
	return string(e.Body)
}

func occupied(t *testing.T, tb *Table) int {
	t.Helper()
	n, err := tb.Occupied()
	if err != nil {
		t.Fatalf("Occupied: %v", err)
	}
	return n
}

// fpIn returns the i-th fingerprint that lands in bucket b of tb.
func fpIn(tb *Table, b uint64, i int) uint64 {
	return (uint64(i)*tb.buckets+b)<<16 | 0xabc
}

func TestTableBasics(t *testing.T) {
	tb := NewTable(NewMemStore(), 4, 2)
	const now = 1000
	if got := get(t, tb, 7, "k", now); got != "" {
		t.Fatalf("empty table hit: %q", got)
	}
	if n := occupied(t, tb); n != 0 {
		t.Fatalf("empty table occupied %d", n)
	}
	res := put(t, tb, Fingerprint([]byte("k")), "k", "body", now+100, now)
	if res != (InsertResult{Filled: true}) {
		t.Fatalf("first insert: %+v", res)
	}
	if got := get(t, tb, Fingerprint([]byte("k")), "k", now); got != "body" {
		t.Fatalf("Lookup = %q", got)
	}
	if n := occupied(t, tb); n != 1 {
		t.Fatalf("occupied %d", n)
	}

	t.Run("dead at staleUntil", func(t *testing.T) {
		fp := Fingerprint([]byte("k"))
		if got := get(t, tb, fp, "k", now+99); got != "body" {
			t.Fatalf("1 ms before staleUntil: %q", got)
		}
		if got := get(t, tb, fp, "k", now+100); got != "" {
			t.Fatalf("at staleUntil: %q", got)
		}
		if got := get(t, tb, fp, "k", now+5000); got != "" {
			t.Fatalf("after staleUntil: %q", got)
		}
	})

	t.Run("entry's own staleUntil is checked too", func(t *testing.T) {
		// The index says live until 10_000, the entry says dead at 1500.
		fp := fpIn(tb, 1, 0)
		e := Entry{Key: []byte("short"), StoredAt: now, FreshUntil: 1200, StaleUntil: 1500, Body: []byte("x")}
		if _, err := tb.Insert(fp, 0, 10_000, e.AppendEncode(nil), now); err != nil {
			t.Fatal(err)
		}
		if got := get(t, tb, fp, "short", 1499); got != "x" {
			t.Fatalf("before: %q", got)
		}
		if got := get(t, tb, fp, "short", 1500); got != "" {
			t.Fatalf("after the entry's staleUntil: %q", got)
		}
	})

	t.Run("remove", func(t *testing.T) {
		fp := Fingerprint([]byte("k"))
		if ok, err := tb.Remove(fp, []byte("other key")); ok || err != nil {
			t.Fatalf("Remove of another key with the same fp: %v %v", ok, err)
		}
		if ok, err := tb.Remove(Fingerprint([]byte("nope")), []byte("nope")); ok || err != nil {
			t.Fatalf("Remove of a missing key: %v %v", ok, err)
		}
		before := occupied(t, tb)
		if ok, err := tb.Remove(fp, []byte("k")); !ok || err != nil {
			t.Fatalf("Remove: %v %v", ok, err)
		}
		if got := get(t, tb, fp, "k", now); got != "" {
			t.Fatalf("removed entry still found: %q", got)
		}
		if n := occupied(t, tb); n != before-1 {
			t.Fatalf("occupied %d after removing one of %d", n, before)
		}
		if ok, err := tb.Remove(fp, []byte("k")); ok || err != nil {
			t.Fatalf("second Remove: %v %v", ok, err)
		}
		if ok, err := NewTable(NewMemStore(), 4, 2).Remove(fp, []byte("k")); ok || err != nil {
			t.Fatalf("Remove on an empty store: %v %v", ok, err)
		}
	})

	t.Run("clear", func(t *testing.T) {
		tb := NewTable(NewMemStore(), 4, 2)
		if n, err := tb.Clear(); n != 0 || err != nil {
			t.Fatalf("Clear of an empty table: %d %v", n, err)
		}
		keys := []string{"a", "b", "c", "d", "e"}
		for _, k := range keys {
			put(t, tb, Fingerprint([]byte(k)), k, "v-"+k, now+100, now)
		}
		want := occupied(t, tb)
		if n, err := tb.Clear(); n != want || err != nil {
			t.Fatalf("Clear freed %d (%v), occupied was %d", n, err, want)
		}
		for _, k := range keys {
			if got := get(t, tb, Fingerprint([]byte(k)), k, now); got != "" {
				t.Fatalf("%s survived Clear: %q", k, got)
			}
		}
		if n := occupied(t, tb); n != 0 {
			t.Fatalf("occupied %d after Clear", n)
		}
		if n, err := tb.Clear(); n != 0 || err != nil {
			t.Fatalf("second Clear: %d %v", n, err)
		}
		put(t, tb, Fingerprint([]byte("a")), "a", "again", now+100, now)
		if got := get(t, tb, Fingerprint([]byte("a")), "a", now); got != "again" {
			t.Fatalf("insert after Clear: %q", got)
		}
	})
}

// TestTableEvictionOrder: the way for a new entry is, in order, the one
// already holding its fingerprint, an empty one, a dead one, else the live
// one that goes dead first.
func TestTableEvictionOrder(t *testing.T) {
	type slotSpec struct {
		key        string // "" = empty way
		staleUntil int64
	}
	const now = 1000
	tests := []struct {
		name     string
		ways     []slotSpec
		insert   string // key to insert; "a" reuses a's fingerprint
		want     InsertResult
		wantWay  int
		survive  []string // keys still found afterwards
		replaced string   // key no longer found
	}{
		{
			name:     "same fingerprint replaced in place",
			ways:     []slotSpec{{"a", 2000}, {"b", 1500}, {"", 0}},
			insert:   "a",
			want:     InsertResult{},
			wantWay:  0,
			survive:  []string{"b"},
			replaced: "",
		},
		{
			name:     "same fingerprint of a dead entry",
			ways:     []slotSpec{{"b", 2000}, {"a", 900}, {"c", 3000}},
			insert:   "a",
			want:     InsertResult{Expired: true},
			wantWay:  1,
			survive:  []string{"b", "c"},
			replaced: "",
		},
		{
			// "n" prefers way 0; here it is live, so the order goes on.
			name:    "empty way before a dead one",
			ways:    []slotSpec{{"b", 2000}, {"a", 500}, {"", 0}},
			insert:  "n",
			want:    InsertResult{Filled: true},
			wantWay: 2,
			survive: []string{"b"},
		},
		{
			// A dead entry in the preferred way is replaced before an empty
			// way is used, so the new entry can be read without the index.
			name:     "preferred way when dead",
			ways:     []slotSpec{{"a", 500}, {"b", 2000}, {"", 0}},
			insert:   "n",
			want:     InsertResult{Expired: true},
			wantWay:  0,
			survive:  []string{"b"},
			replaced: "a",
		},
		{
			name:     "dead way before a live one",
			ways:     []slotSpec{{"a", 1200}, {"b", 1000}, {"c", 5000}},
			insert:   "n",
			want:     InsertResult{Expired: true},
			wantWay:  1,
			survive:  []string{"a", "c"},
			replaced: "b",
		},
		{
			name:     "earliest staleUntil when all are live",
			ways:     []slotSpec{{"a", 3000}, {"b", 1200}, {"c", 1100}},
			insert:   "n",
			want:     InsertResult{Evicted: true},
			wantWay:  2,
			survive:  []string{"a", "b"},
			replaced: "c",
		},
		{
			name:     "first of equally early ways",
			ways:     []slotSpec{{"a", 3000}, {"b", 1200}, {"c", 1200}},
			insert:   "n",
			want:     InsertResult{Evicted: true},
			wantWay:  1,
			survive:  []string{"a", "c"},
			replaced: "b",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := NewMemStore()
			tb := NewTable(store, 1, len(tc.ways))
			fps := map[string]uint64{"n": 999 << 16}
			// Lay the ways out exactly as specified.
			tb.resetIdx()
			for w, s := range tc.ways {
				if s.key == "" {
					continue
				}
				fps[s.key] = uint64(w+1) << 16
				tb.idx[w] = slot{fp: fps[s.key], staleUntil: s.staleUntil}
				if err := store.Set(tb.entryKey(0, w), tableEntry(s.key, "old-"+s.key, 0, s.staleUntil, s.staleUntil), 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := store.Set(tb.indexKey(0), tb.encodeIndex(), 0); err != nil {
				t.Fatal(err)
			}

			res := put(t, tb, fps[tc.insert], tc.insert, "new", now+10_000, now)
			if res != tc.want {
				t.Errorf("InsertResult = %+v, want %+v", res, tc.want)
			}
			raw, _, err := store.Get(tb.entryKey(0, tc.wantWay))
			if err != nil {
				t.Fatal(err)
			}
			if e, err := DecodeEntry(raw); err != nil || string(e.Key) != tc.insert || string(e.Body) != "new" {
				t.Fatalf("way %d does not hold the new entry (%v)", tc.wantWay, err)
			}
			if got := get(t, tb, fps[tc.insert], tc.insert, now); got != "new" {
				t.Errorf("new entry not found: %q", got)
			}
			for _, k := range tc.survive {
				if got := get(t, tb, fps[k], k, now); got != "old-"+k {
					t.Errorf("%s did not survive: %q", k, got)
				}
			}
			if tc.replaced != "" {
				if got := get(t, tb, fps[tc.replaced], tc.replaced, 0); got != "" {
					t.Errorf("%s was not replaced: %q", tc.replaced, got)
				}
			}
		})
	}
}

// TestTableForeignGeometry: an index written by a table of another shape
// reads as empty, and the new shape takes the bucket over.
func TestTableForeignGeometry(t *testing.T) {
	store := NewMemStore()
	small := NewTable(store, 4, 2)
	fp := Fingerprint([]byte("k"))
	put(t, small, fp, "k", "small", 5000, 1000)

	// A table of another geometry may find the entry by a direct read of
	// its preferred way — it is still k's own answer — or miss; nothing else.
	big := NewTable(store, 4, 4)
	if got := get(t, big, fp, "k", 1000); got != "" && got != "small" {
		t.Fatalf("other geometry read %q", got)
	}
	if n := occupied(t, big); n != 0 {
		t.Fatalf("other geometry sees %d occupied", n)
	}
	if res := put(t, big, fp, "k", "big", 5000, 1000); !res.Filled {
		t.Fatalf("insert over a foreign index: %+v", res)
	}
	if got := get(t, big, fp, "k", 1000); got != "big" {
		t.Fatalf("after insert: %q", got)
	}
	if got := get(t, small, fp, "k", 1000); got != "" && got != "small" && got != "big" {
		t.Fatalf("the old geometry read %q", got)
	}
}

func TestTableCorruption(t *testing.T) {
	const now = 1000
	e := Entry{Key: []byte("k"), StoredAt: now, FreshUntil: 2000, StaleUntil: 2000, Body: []byte("body")}
	valid := e.AppendEncode(nil)
	tests := []struct {
		name  string
		value []byte
	}{
		{"garbage", []byte("garbage")},
		{"empty (purged)", []byte{}},
		{"truncated", valid[:len(valid)-1]},
		{"another format version", append([]byte{'M', 'C', 9}, valid[3:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := NewMemStore()
			tb := NewTable(store, 1, 2)
			put(t, tb, 1<<16, "k", "body", 2000, now)
			if err := store.Set(tb.entryKey(0, 0), tc.value, 0); err != nil {
				t.Fatal(err)
			}
			if got := get(t, tb, 1<<16, "k", now); got != "" {
				t.Fatalf("corrupted entry served: %q", got)
			}
			// The slot is still usable.
			put(t, tb, 1<<16, "k", "fixed", 2000, now)
			if got := get(t, tb, 1<<16, "k", now); got != "fixed" {
				t.Fatalf("after rewrite: %q", got)
			}
		})
	}
	t.Run("corrupted index", func(t *testing.T) {
		store := NewMemStore()
		tb := NewTable(store, 1, 2)
		put(t, tb, 1<<16, "k", "body", 2000, now)
		if err := store.Set(tb.indexKey(0), []byte("MI\x01\x02 but short"), 0); err != nil {
			t.Fatal(err)
		}
		// The entry itself is intact and carries its key: a direct read of
		// its preferred way may still serve it. Never anything else.
		if got := get(t, tb, 1<<16, "k", now); got != "" && got != "body" {
			t.Fatalf("read through a corrupted index: %q", got)
		}
		if n := occupied(t, tb); n != 0 {
			t.Fatalf("corrupted index counts %d", n)
		}
		put(t, tb, 1<<16, "k", "again", 2000, now)
		if got := get(t, tb, 1<<16, "k", now); got != "again" {
			t.Fatalf("after rewrite: %q", got)
		}
	})
}

// TestTableFingerprintCollision: two keys with one fingerprint never get
// each other's entry; the later insert takes the way over.
func TestTableFingerprintCollision(t *testing.T) {
	tb := NewTable(NewMemStore(), 2, 2)
	const fp, now = 42 << 16, 1000
	put(t, tb, fp, "key-one", "one", 5000, now)
	if got := get(t, tb, fp, "key-two", now); got != "" {
		t.Fatalf("colliding key got %q", got)
	}
	if ok, _ := tb.Remove(fp, []byte("key-two")); ok {
		t.Fatalf("colliding key removed the entry")
	}
	put(t, tb, fp, "key-two", "two", 5000, now)
	if got := get(t, tb, fp, "key-two", now); got != "two" {
		t.Fatalf("key-two: %q", got)
	}
	if got := get(t, tb, fp, "key-one", now); got != "" {
		t.Fatalf("key-one after being displaced: %q", got)
	}
	if n := occupied(t, tb); n != 1 {
		t.Fatalf("occupied %d, want 1 (one fingerprint, one way)", n)
	}
}

// TestTableBoundedKeySpace: whatever is inserted, the store holds at most
// buckets index keys, buckets × ways entry keys and the anchor.
func TestTableBoundedKeySpace(t *testing.T) {
	store := NewMemStore()
	tb := NewTable(store, 3, 2)
	for i := 0; i < 2000; i++ {
		k := "key-" + strconv.Itoa(i)
		put(t, tb, Fingerprint([]byte(k)), k, k, int64(2000+i%50), 1000+int64(i%100))
	}
	if n, limit := store.Keys(), 3+3*2+1; n > limit {
		t.Fatalf("store holds %d keys, bound is %d", n, limit)
	}
	if n := occupied(t, tb); n > 6 {
		t.Fatalf("occupied %d > 6", n)
	}
}

func TestTableStoreErrors(t *testing.T) {
	const now = 1000
	t.Run("index read fails", func(t *testing.T) {
		s := &flakyStore{Store: NewMemStore(), getErr: func(string) error { return errStoreDown }}
		tb := NewTable(s, 2, 2)
		if _, err := tb.Lookup(1, []byte("k"), now); !errors.Is(err, errStoreDown) {
			t.Errorf("Lookup: %v", err)
		}
		if _, err := tb.Insert(1, 0, 2000, nil, now); !errors.Is(err, errStoreDown) {
			t.Errorf("Insert: %v", err)
		}
		if _, err := tb.Remove(1, []byte("k")); !errors.Is(err, errStoreDown) {
			t.Errorf("Remove: %v", err)
		}
		if _, err := tb.Clear(); !errors.Is(err, errStoreDown) {
			t.Errorf("Clear: %v", err)
		}
		if _, err := tb.Occupied(); !errors.Is(err, errStoreDown) {
			t.Errorf("Occupied: %v", err)
		}
	})
	t.Run("entry read fails", func(t *testing.T) {
		mem := NewMemStore()
		tb := NewTable(mem, 1, 2)
		put(t, tb, 1<<16, "k", "v", 2000, now)
		s := &flakyStore{Store: mem, getErr: func(k string) error {
			if k == "mc:e:0:0" {
				return errStoreDown
			}
			return nil
		}}
		if _, err := NewTable(s, 1, 2).Lookup(1<<16, []byte("k"), now); !errors.Is(err, errStoreDown) {
			t.Errorf("Lookup: %v", err)
		}
	})
	t.Run("index CAS never wins", func(t *testing.T) {
		mem := NewMemStore()
		tb := NewTable(mem, 1, 2)
		put(t, tb, 1<<16, "k", "v", 2000, now)
		writes := 0
		s := &flakyStore{Store: mem, setErr: func(k string) error {
			if k == "mc:i:0" {
				writes++
				return ErrCasMismatch
			}
			return nil
		}}
		tb = NewTable(s, 1, 2)
		if _, err := tb.Insert(2<<16, 0, 2000, tableEntry("n", "v", now, 2000, 2000), now); !errors.Is(err, ErrContention) {
			t.Errorf("Insert: %v, want ErrContention", err)
		}
		if writes != maxCASAttempts {
			t.Errorf("Insert tried %d index writes, want %d", writes, maxCASAttempts)
		}
		if _, err := tb.Remove(1<<16, []byte("k")); !errors.Is(err, ErrContention) {
			t.Errorf("Remove: %v, want ErrContention", err)
		}
	})
	t.Run("entry write fails", func(t *testing.T) {
		s := &flakyStore{Store: NewMemStore(), setErr: func(k string) error {
			if k == "mc:e:0:0" {
				return errStoreDown
			}
			return nil
		}}
		tb := NewTable(s, 1, 2)
		if _, err := tb.Insert(1<<16, 0, 2000, tableEntry("k", "v", now, 2000, 2000), now); !errors.Is(err, errStoreDown) {
			t.Errorf("Insert: %v", err)
		}
		if got := get(t, tb, 1<<16, "k", now); got != "" {
			t.Errorf("claimed but unwritten way served %q", got)
		}
	})
}

// TestTableHammer: 8 goroutines, each with its own Table over one shared
// store (8 Envoy worker VMs over one shared-data map), insert, look up and
// remove keys from a small key space in a tiny table, and now and then
// clear it. Every hit must be the key
// asked for with a body written for that key, and the table never holds
// more than buckets × ways entries.
func TestTableHammer(t *testing.T) {
	const (
		workers = 8
		rounds  = 3000
		buckets = 2
		ways    = 2
		keys    = 12
	)
	if testing.Short() {
		t.Skip("hammer")
	}
	mem := NewMemStore()
	store := &countingStore{Store: mem}
	var mu sync.Mutex
	var failures []string
	var hits, misses, contention int
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	hammer.Run(t, workers, func(w int) error {
		tb := NewTable(store, buckets, ways)
		r := rand.New(rand.NewPCG(uint64(w), 99))
		var h, m, c int
		for i := 0; i < rounds; i++ {
			now := int64(10_000 + i)
			key := "key-" + strconv.Itoa(r.IntN(keys))
			fp := Fingerprint([]byte(key))
			switch op := r.IntN(100); {
			case op == 0: // an administrator's purge-all
				if _, err := tb.Clear(); err != nil && !errors.Is(err, ErrCasMismatch) {
					fail("worker %d: Clear: %v", w, err)
					return nil
				}
				continue
			case op < 10: // a purge of one entry
				if _, err := tb.Remove(fp, []byte(key)); err != nil && !errors.Is(err, ErrContention) {
					fail("worker %d: Remove: %v", w, err)
					return nil
				}
				continue
			case op < 55:
				body := key + "|w" + strconv.Itoa(w) + "|r" + strconv.Itoa(i)
				stale := now + int64(r.IntN(40)) // some entries die quickly
				_, err := tb.Insert(fp, 0, stale, tableEntry(key, body, now, stale, stale), now)
				if errors.Is(err, ErrContention) {
					c++
				} else if err != nil {
					fail("worker %d: Insert: %v", w, err)
					return nil
				}
				continue
			}
			e, err := tb.Lookup(fp, []byte(key), now)
			switch {
			case err != nil:
				fail("worker %d: Lookup: %v", w, err)
				return nil
			case e == nil:
				m++
			case string(e.Key) != key:
				fail("worker %d: asked for %s, got the entry of %s", w, key, e.Key)
			case !bytes.HasPrefix(e.Body, []byte(key+"|")):
				fail("worker %d: %s served the body %q", w, key, e.Body)
			case e.StaleUntil <= now:
				fail("worker %d: dead entry served (staleUntil %d, now %d)", w, e.StaleUntil, now)
			default:
				h++
			}
			if i%100 == 0 {
				if n, err := tb.Occupied(); err != nil || n > buckets*ways {
					fail("worker %d: Occupied = %d, %v", w, n, err)
				}
			}
		}
		mu.Lock()
		hits, misses, contention = hits+h, misses+m, contention+c
		mu.Unlock()
		return nil
	})
	for _, f := range failures {
		t.Error(f)
	}
	if n, limit := mem.Keys(), buckets+buckets*ways+1; n > limit {
		t.Errorf("store holds %d keys, bound %d", n, limit)
	}
	if hits == 0 {
		t.Errorf("no hits in %d lookups: the hammer tested nothing", misses)
	}
	t.Logf("hits %d, misses %d, CAS mismatches %d, inserts given up %d",
		hits, misses, store.mismatches.Load(), contention)
}

// countingStore counts CAS mismatches, to show a hammer raced.
type countingStore struct {
	Store
	mismatches atomic.Int64
}

func (s *countingStore) Set(key string, value []byte, cas uint32) error {
	err := s.Store.Set(key, value, cas)
	if errors.Is(err, ErrCasMismatch) {
		s.mismatches.Add(1)
	}
	return err
}
