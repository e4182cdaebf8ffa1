package cachecore

import (
	"bytes"
	"strings"
	"testing"
)

// Review Z49 (mend 6e63692). README (Invalidation): "A VM that finds the
// log empty appends a start record of its own ... so that its position
// names a record too"; the log "may be trimmed (LTRIM) or deleted at any
// time". The start record is sent once, and when that one RPUSH fails (a
// kept-alive connection webdis closed fails at once — why README tries a
// purge record 3 times — or an error reply), l2MarkStart takes position 0
// anyway, unnamed, and saves it: the hole Z46 closed is open again. A purge
// logged at index 0, then the log deleted and another purge logged at
// index 0, is taken for the next record and the first is never applied.
func TestL2FailedStartRecordLeavesNoUnnamedPosition(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fail  CallResult
		setup func(m *l2Mesh, tick func())
	}{
		{"first read, RPUSH transport failure", CallResult{Failed: true}, func(m *l2Mesh, tick func()) {
			tick() // B: LLEN=0, its start record fails
		}},
		{"first read, RPUSH error reply", CallResult{Status: 200, Body: []byte("-LOADING Redis is loading the dataset in memory\r\n")}, func(m *l2Mesh, tick func()) {
			tick()
		}},
		{"log found deleted, RPUSH transport failure", CallResult{Failed: true}, func(m *l2Mesh, tick func()) {
			m.step(m.p[1].L2Tick()) // B: a start record, position 1
			m.purgeOnA(`{"route":"chat","model":"other"}`)
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick()) // B read it: position 2
			delete(m.wd.lists, DefaultL2Prefix+"purges")
			m.clock.Advance(DefaultL2SyncInterval)
			tick() // B finds it gone: LLEN=0, its start record fails, L1 dropped
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newL2Mesh(t, "")
			failed := 0
			// tick runs one L2Tick of B whose start-record RPUSH fails once.
			tick := func() {
				acts := m.p[1].L2Tick()
				for len(acts) > 0 {
					a := acts[0]
					acts = acts[1:]
					switch a.Kind {
					case ActDispatch:
						res := tc.fail
						if p := headerValue(a.Call.Headers, ":path"); !strings.HasPrefix(p, "/RPUSH/") || failed > 0 {
							res = m.wd.do(a.Call)
						} else {
							failed++
						}
						acts = append(acts, a.Call.Done(res)...)
					case ActFreed:
						m.freed += a.N
					}
				}
			}
			tc.setup(m, tick)
			if failed != 1 {
				t.Fatalf("setup: %d start records failed, want 1", failed)
			}
			m.copyToBsL1() // B caches "hello" after its position was taken
			m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
			delete(m.wd.lists, DefaultL2Prefix+"purges") // the operator deletes the log
			m.purgeOnA(`{"route":"chat","model":"another-model"}`)
			for range 3 {
				m.clock.Advance(DefaultL2SyncInterval)
				m.step(m.p[1].L2Tick())
			}
			if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
				t.Fatalf("B serves the purged answer from its L1 after 3 sync intervals (its start record failed, position 0 unnamed; the purge logged at index 0 before the delete was never read): %q %s", cs, body)
			}
		})
	}
}

// Review Z49 (mends 0c67c1b, fe4fb7c). README: a VM that no longer finds
// the last record it read "cannot know which purges it missed, so it takes
// where the log ends at once, then drops its whole L1 once". Since
// fe4fb7c, a read sent after LLEN that finds nothing resets the VM (L1 not
// dropped) until the next interval: while webdis' LLEN and LRANGE disagree
// (the lagging replica or garbage the chain bound was made for), a VM that
// knows it missed purges keeps serving its whole L1, purged entries
// included, every interval, for as long as it lasts.
func TestL2LostLogDropsL1EvenWhileLLENAndLRANGEDisagree(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // B: its start record, position 1
	m.copyToBsL1()          // B caches "hello"
	m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	key := DefaultL2Prefix + "purges"
	m.wd.lists[key] = m.wd.lists[key][1:] // LTRIM purges 1 -1: B's record goes, the purge stays
	// B's next read finds its record gone (the trim); from then on webdis
	// disagrees with itself: LLEN sees the log, LRANGE does not.
	first := true
	disagree := func(c *Call) CallResult {
		p := headerValue(c.Headers, ":path")
		switch {
		case first && strings.HasPrefix(p, "/LRANGE/"):
			first = false
			return m.wd.do(c)
		case strings.HasPrefix(p, "/LLEN/"):
			return CallResult{Status: 200, Body: []byte(`{"LLEN":1}`)}
		case strings.HasPrefix(p, "/LRANGE/"):
			return CallResult{Status: 200, Body: []byte(`{"LRANGE":[]}`)}
		}
		return m.wd.do(c)
	}
	reads := 0
	for range 5 {
		m.clock.Advance(DefaultL2SyncInterval)
		acts := m.p[1].L2Tick()
		for len(acts) > 0 {
			a := acts[0]
			acts = acts[1:]
			if a.Kind == ActDispatch {
				reads++
				acts = append(acts, a.Call.Done(disagree(a.Call))...)
			}
		}
	}
	if reads == 0 {
		t.Fatal("setup: B never read the log")
	}
	if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("B found its log record gone 5 intervals ago (purges missed) and still serves its L1: the purged answer: %q %s", cs, body)
	}
}
