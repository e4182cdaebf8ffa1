package cachecore

import (
	"strings"
	"testing"
)

// The host copies a webdis answer into the VM up to its call's MaxBody
// (and one byte more) before the filter looks at it: each call asks for
// no more than it may parse. A lookup's answer is parsed within
// 3 × l2.max_entry_bytes + 4 KiB (README, L2); only a purge-log read may
// bring a batch of records (l2SyncCap, ≈ 8.8 MB).
func TestL2CallsReadNoMoreThanTheyMayParse(t *testing.T) {
	m := newL2Mesh(t, "")
	c := m.p[0]
	got := map[string]int{}
	m.wd.seen = func(call *Call) {
		for _, h := range call.Headers {
			if h[0] == ":path" {
				cmd, _, _ := strings.Cut(strings.TrimPrefix(h[1], "/"), "/")
				got[cmd] = max(got[cmd], call.MaxBody)
			}
		}
	}
	m.ask(0, "hello", "world")
	res, err := c.Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), "")
	if err != nil {
		t.Fatal(err)
	}
	m.step(res.L2.Done(m.wd.do(res.L2)))
	m.step(c.L2Tick())
	m.clock.Advance(DefaultL2SyncInterval)
	m.step(c.L2Tick())
	for _, cmd := range []string{"MGET", "SET", "SETEX", "INCR", "RPUSH", "LLEN", "LRANGE"} {
		want := c.l2AnswerCap()
		if cmd == "LRANGE" {
			want = c.l2SyncCap()
		}
		if n, ok := got[cmd]; !ok || n != want {
			t.Errorf("%s: MaxBody %d (sent: %v), want %d", cmd, n, ok, want)
		}
	}
}
