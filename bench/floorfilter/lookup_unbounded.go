//go:build floorkeyed && floorunbounded

package main

// miss-served-unbounded: miss-served with its lookup under a key of the
// request's own, which a new key's miss finds absent: S4's reading of what
// a lookup in a bounded table costs beyond it (lookup_bounded.go). Built
// with -tags floorkeyed,floorunbounded (bench/cmd/bench).

// missLookup looks fp up under a key of its own.
func missLookup(fp uint64) bool {
	_, _, err := getShared("fl:s:", fp)
	return err == nil
}

// missStored stores nothing: this lookup reads no key a store writes.
func missStored(uint64, int64) {}
