package proxywasm

import (
	"math/rand/v2"
	"testing"
)

// contextTable behaves as the map it replaces, IDs that share a place
// included: random puts, replacements, lookups and deletes, on IDs drawn
// from a few places so that most collide, are checked against a map.
func TestContextTableActsAsAMap(t *testing.T) {
	var tab contextTable[int]
	ref := map[uint32]*int{}
	rng := rand.New(rand.NewPCG(5, 6))
	for step := 0; step < 200000; step++ {
		id := uint32(rng.IntN(4))*contextSlots + uint32(rng.IntN(3)) // 12 IDs in 3 places
		switch rng.IntN(3) {
		case 0:
			v := new(int)
			*v = step
			tab.put(id, v)
			ref[id] = v
		case 1:
			tab.del(id)
			delete(ref, id)
		}
		for probe := uint32(0); probe < 4*contextSlots; probe += contextSlots {
			for off := uint32(0); off < 3; off++ {
				if got, want := tab.get(probe+off), ref[probe+off]; got != want {
					t.Fatalf("step %d: get(%d) = %v, want %v", step, probe+off, got, want)
				}
			}
		}
	}
	if len(tab.overflow) == 0 {
		t.Fatal("no ID ever overflowed: the test did not exercise collisions")
	}
}
