package proxywasm

// contextTable holds per-context state by context ID. Envoy numbers a
// VM's contexts in order, so the live ones almost always fall in distinct
// places of a small direct-mapped array, which answers every callback's
// lookup without a map; an ID whose place is taken by another live
// context goes to an overflow map. A map's code, run on every request, is
// what this spares (RATIONALE.md, "The code a request runs").
type contextTable[T any] struct {
	slots    [contextSlots]contextSlot[T]
	overflow map[uint32]*T
}

type contextSlot[T any] struct {
	id uint32
	v  *T // nil: free
}

// contextSlots is a power of two: IDs 256 apart share a place.
const contextSlots = 256

func (t *contextTable[T]) get(id uint32) *T {
	if s := &t.slots[id%contextSlots]; s.v != nil && s.id == id {
		return s.v
	}
	if len(t.overflow) == 0 {
		return nil
	}
	return t.overflow[id]
}

// put sets id's state, replacing any it had.
func (t *contextTable[T]) put(id uint32, v *T) {
	if len(t.overflow) > 0 {
		delete(t.overflow, id)
	}
	if s := &t.slots[id%contextSlots]; s.v == nil || s.id == id {
		s.id, s.v = id, v
		return
	}
	if t.overflow == nil {
		t.overflow = map[uint32]*T{}
	}
	t.overflow[id] = v
}

func (t *contextTable[T]) del(id uint32) {
	if s := &t.slots[id%contextSlots]; s.v != nil && s.id == id {
		*s = contextSlot[T]{}
		return
	}
	if len(t.overflow) > 0 {
		delete(t.overflow, id)
	}
}
