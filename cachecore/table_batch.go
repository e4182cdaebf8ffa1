package cachecore

// Batched table access for the items of one embeddings request. A batch
// reads a bucket's index at most once per lookup pass, whatever the number
// of its items in that bucket, and keeps what it read (the slots and their
// CAS) for the stores at the end of the request: the first attempt of a
// store writes the index with that CAS, without reading it again. The CAS
// makes this exactly as safe as a fresh read: if any writer changed the
// index in between, the write fails and the store reads the index again
// and retries, as Insert does.

// indexView is one read of a bucket's index.
type indexView struct {
	b      uint64
	cas    uint32
	exists bool
	listed bool // a well-formed index (Table.idxListed)
	pass   int  // the lookup pass that read it
	slots  []slot
}

// indexViews are a request's reads of bucket indexes, by bucket.
type indexViews struct {
	at    map[uint64]int // bucket → index in views
	views []indexView
	slab  []slot // the views' slots
	pass  int
	hint  int // the buckets a request may read: the first allocations' size
	// ahead, when set, has its slot of aheadFP read (ReadAhead) just
	// before the pass's first index read, and is then cleared; aheadSeq
	// is that read's number.
	ahead    *LeaseTable
	aheadFP  uint64
	aheadSeq uint64
}

// view returns the view of bucket b read in the current pass, reading it
// now if there is none.
func (t *Table) view(vs *indexViews, b uint64) (*indexView, error) {
	if vs.at == nil {
		vs.at = make(map[uint64]int, max(vs.hint, 8))
		vs.views = make([]indexView, 0, max(vs.hint, 8))
	}
	i, ok := vs.at[b]
	if ok && vs.views[i].pass == vs.pass {
		return &vs.views[i], nil
	}
	if vs.ahead != nil {
		vs.aheadSeq = vs.ahead.ReadAhead(vs.aheadFP)
		vs.ahead = nil
	}
	cas, exists, err := t.readIndex(b)
	if err != nil {
		return nil, err
	}
	if !ok {
		i = len(vs.views)
		vs.views = append(vs.views, indexView{})
		vs.at[b] = i
	}
	v := &vs.views[i]
	v.b, v.cas, v.exists, v.listed, v.pass = b, cas, exists, t.idxListed, vs.pass
	if cap(v.slots) < len(t.idx) {
		if cap(vs.slab)-len(vs.slab) < len(t.idx) {
			vs.slab = make([]slot, 0, max(vs.hint, 32)*len(t.idx))
		}
		at := len(vs.slab)
		vs.slab = append(vs.slab, t.idx...)
		v.slots = vs.slab[at:len(vs.slab):len(vs.slab)]
	} else {
		v.slots = append(v.slots[:0], t.idx...)
	}
	return v, nil
}

// lookupBatch is lookupInto for an item of a batch. With indexFirst (an
// item not found in an earlier pass of the same request — a new leader's
// or a woken follower's second look —, or a batch that has mostly missed
// so far) it is looked for through its bucket's index first: for an item
// still missing that is one read instead of two. The preferred way is then
// read only if the index names it, or if there is no well-formed index to
// trust (absent, garbled, or written with other ways). Otherwise it reads its
// preferred way first, as lookupInto does, and the index only if the
// entry is not there.
func (t *Table) lookupBatch(vs *indexViews, fp uint64, key []byte, now int64, indexFirst bool, dst *Entry) (bool, error) {
	b := t.bucketOf(fp)
	if !indexFirst {
		if ok, err := t.readEntry(b, t.preferredWay(fp), key, now, dst); err != nil || ok && dst.FreshUntil > now {
			return ok, err
		} else if ok {
			return t.batchPastStale(vs, b, fp, key, now, dst)
		}
	}
	v, err := t.view(vs, b)
	if err != nil {
		return false, err
	}
	if indexFirst && !v.listed {
		return t.readEntry(b, t.preferredWay(fp), key, now, dst)
	}
	for w, s := range v.slots {
		if s.fp != fp || s.staleUntil <= now || s.tag == purgedTag { // a tombstone names no answer (review Z214)
			continue
		}
		// The preferred way too, if the index has the item there: the
		// index may have been read after the entry was (the lease slot's
		// read ahead comes between: leaderLookup), and an item stored in
		// between must be found. Otherwise this costs nothing: the index
		// names the preferred way only after a write raced the read, or
		// during a store (the index is written before the entries).
		if ok, err := t.readEntry(b, w, key, now, dst); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// batchPastStale is listedPastStale for a batch item: a stale copy in the
// preferred way, read into dst, gives way to a copy the bucket's index
// (its view) lists in another way. Out of line, as listedPastStale.
//
//go:noinline
func (t *Table) batchPastStale(vs *indexViews, b, fp uint64, key []byte, now int64, dst *Entry) (bool, error) {
	v, err := t.view(vs, b)
	if err != nil || !v.listed {
		return true, nil // dst still holds the stale copy
	}
	return t.listedElsewhere(v.slots, b, t.preferredWay(fp), fp, key, now, dst)
}

// batchInsert is one encoded entry of a batch to store, and the outcome.
type batchInsert struct {
	fp         uint64
	bucket     uint64
	tag        uint32
	staleUntil int64
	encoded    []byte
	way        int
	res        InsertResult
	err        error
}

// insertBucket stores entries that all belong to bucket b with one index
// write: the ways are chosen one after the other as consecutive Inserts
// would choose them, the index is written once (compare-and-swap), then
// the entries. The first attempt uses the request's view of the index if
// it has one (v, may be nil); a CAS mismatch reads it again. Each item's
// err tells whether it was stored.
// batchStillListed is stillListed for the entries of one bucket written
// by a batch: one index read; every entry whose way holds its key but not
// its slot is blanked, and refused (errPurgedDuring) where that is a
// purge's tombstone. It reports how many it refused. A batch runs it only when a purge was marked during its
// store (entryPurges): one read of the mark, not one index read a bucket.
func (t *Table) batchStillListed(b uint64, items []batchInsert, since, now int64) int {
	if _, _, err := t.readIndex(b); err != nil {
		return 0
	}
	n := 0
	for i := range items {
		if it := &items[i]; it.err == nil && (t.dropLate(b, it.way, slot{it.fp, it.staleUntil, it.tag}) ||
			t.dropForeignLate(b, it.way, it.fp, it.encoded, since, now)) {
			it.err = errPurgedDuring
			n++
		}
	}
	return n
}

func (t *Table) insertBucket(b uint64, v *indexView, items []batchInsert, now, since int64) {
	err := ErrContention
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		var cas uint32
		var exists bool
		// A view of an index in another shape is read again: the other
		// layout's tombstones are in it (foreignIdx).
		if attempt == 0 && v != nil && v.pass >= 0 && (v.listed || !v.exists) {
			cas, exists = v.cas, v.exists
			t.idx = append(t.idx[:0], v.slots...)
			t.foreignIdx = nil
			v.pass = -1 // used once: a write (ours or another's) makes it stale
		} else if cas, exists, err = t.readIndex(b); err != nil {
			break
		}
		replaced := t.foreignListed()
		for i := range items {
			it := &items[i]
			it.err = nil
			if t.foreignIdx != nil && foreignPurgedAfter(t.foreignIdx, it.fp, since, now) {
				it.way, it.err = -1, ErrPurgedSince // the other layout's tombstone (review Z34)
				continue
			}
			if t.tombstoneAfter(it.fp, since, now) {
				it.way, it.err = -1, ErrPurgedSince // as InsertSince: not stored
				continue
			}
			it.way, it.res = t.chooseWay(it.fp, it.tag, now)
			if t.idx[it.way].tag == purgedTag {
				it.res = InsertResult{Filled: true}
			}
			t.idx[it.way] = slot{it.fp, it.staleUntil, it.tag}
			it.res.Replaced, replaced = replaced, 0 // counted once, with the first item stored
		}
		if replaced > 0 {
			// No item to store: another layout's index is left as it is
			// (written, it would drop listings no item counts).
			return
		}
		err = t.writeIndex(b, cas, exists)
		if errIs(err, ErrCasMismatch) {
			err = ErrContention
			continue
		}
		if err != nil {
			break
		}
		for i := range items {
			if items[i].way >= 0 {
				if err := t.store.Set(t.entryKey(b, items[i].way), items[i].encoded, 0); err != nil {
					items[i].err = entryUnwritten{err}
				}
			}
		}
		return
	}
	for i := range items {
		items[i].err = err
	}
}
