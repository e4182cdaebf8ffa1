package cachecore

import (
	"strings"
	"testing"
	"time"
)

// A leader that holds the cross-proxy lease fails (503), and the release
// of its lease (DEL) meets one transport failure — the very failure every
// other write to L2 is tried again for (l2WriteTries: a kept-alive
// connection webdis has closed fails at once). README: the lease is
// released when the leader's call fails, "and then another waiting proxy
// leads". The waiting proxy must take over within a poll or two, not sit
// out coalesce.max_wait and then go upstream without a lease.
func TestL2LeaseReleaseSurvivesOneTransportFailure(t *testing.T) {
	m := newL2Mesh(t, "")
	a, b := m.leadAndWait(t)
	m.wd.failNext = 1 // the release's first try meets a closed connection
	m.answer(a, 503, "overloaded")
	var polls []string
	for i := 0; i < 50; i++ {
		m.clock.Advance(100 * time.Millisecond)
		got, _ := m.step(b.Tick())
		if got == "" {
			continue
		}
		polls = append(polls, got)
		if strings.Contains(got, "forward") {
			break
		}
	}
	last := polls[len(polls)-1]
	if last != "l2.lease_won forward" {
		t.Fatalf("B after A failed (its lease release hit one transport failure): %q; lease still in Redis: %v",
			strings.Join(polls, " | "), leaseInRedis(m))
	}
}

func leaseInRedis(m *l2Mesh) bool {
	for k := range m.wd.kv {
		if strings.Contains(k, ":l:") {
			return true
		}
	}
	return false
}
