package cachecore

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcache/modelcache/internal/hammer"
)

const leaseTestConfig = `{"store":{"lease_slots":64},"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions",
  "coalesce":{"max_wait":"10s","max_retries":2,"hit_for_miss":"30s"}}]}`

// missed returns a request that looked up and missed.
func (e *testEnv) missed(headers [][2]string, prompt string) *Request {
	e.t.Helper()
	req, d := e.lookup("chat", headers, chatRequest(prompt))
	if d != Forward || req.Status != StatusMiss {
		e.t.Fatalf("%q: decision %v status %v, want a miss", prompt, d, req.Status)
	}
	return req
}

// One tenant's rejected requests (each a 4xx: a hit-for-miss mark) for three
// times as many distinct keys as there are lease slots must not switch off
// single flight for another tenant: its identical concurrent requests still
// get exactly one leader, and the rest follow.
func TestLeaseFillByHitForMissMarks(t *testing.T) {
	env := newEnv(t, leaseTestConfig)
	slots := env.cache.cfg.Store.LeaseSlots
	for i := 0; i < 3*slots; i++ {
		req := env.missed(bob, fmt.Sprintf("rejected %d", i))
		if role := env.cache.Join(req, 1, uint32(i+1)); role != RoleLeader {
			// Once the table is full, the attacker's own keys may collide;
			// that costs only the attacker.
			continue
		}
		env.cache.Finish(req, 1, uint32(i+1), OutcomeOf(ReasonStatus, 400))
	}
	roles := map[Role]int{}
	for i := 0; i < 20; i++ {
		req := env.missed(alice, "the victim's question")
		roles[env.cache.Join(req, uint64(2+i%2), uint32(100+i))]++
	}
	if roles[RoleLeader] != 1 || roles[RoleFollower] != 19 {
		t.Fatalf("roles after the fill: %v, want 1 leader and 19 followers", roles)
	}
}

// oneSlot returns lease tables of one slot over one store, one per "VM".
func oneSlot(vms int) ([]*LeaseTable, *MemStore) {
	store := NewMemStore()
	var ts []*LeaseTable
	for i := 0; i < vms; i++ {
		ts = append(ts, NewLeaseTable(store, 1))
	}
	return ts, store
}

func mustRole(t *testing.T, want Role, got Role, err error) {
	t.Helper()
	if err != nil || got != want {
		t.Fatalf("role %v (%v), want %v", got, err, want)
	}
}

// A full slot of hit-for-miss marks: a new key's leader displaces the
// soonest-expiring mark, and only that one.
func TestLeaseMarksAreDisplaceable(t *testing.T) {
	ts, _ := oneSlot(1)
	lt := ts[0]
	const now = 1_000_000
	for i := 0; i < LeaseWays; i++ {
		fp := uint64(100 + i)
		role, err := lt.Acquire(fp, uint64(10+i), 1, uint32(i+1), now, now+10_000, true)
		mustRole(t, RoleLeader, role, err)
		// Marks expire at now+30 s, +31 s, …: fp 100 expires first.
		if _, err := lt.Release(fp, 1, uint32(i+1), now, now+30_000+int64(i)*1000); err != nil {
			t.Fatal(err)
		}
	}
	role, err := lt.Acquire(100, 0, 2, 1, now, now+10_000, true)
	mustRole(t, RoleHitForMiss, role, err)
	role, err = lt.Acquire(999, 77, 2, 1, now, now+10_000, true)
	mustRole(t, RoleLeader, role, err)
	if l, _ := lt.Peek(100); l.State != LeaseFree {
		t.Fatalf("the soonest-expiring mark survived: %+v", l)
	}
	for fp := uint64(101); fp < 100+LeaseWays; fp++ {
		if l, _ := lt.Peek(fp); l.State != LeaseHitForMiss {
			t.Fatalf("mark of %d displaced though an earlier one was there: %+v", fp, l)
		}
	}
	role, err = lt.Acquire(999, 77, 3, 9, now, now+10_000, true)
	mustRole(t, RoleFollower, role, err)
}

// Live held leases are never displaced; once expired they are.
func TestLeaseHeldLeasesAreNotDisplaced(t *testing.T) {
	ts, _ := oneSlot(2)
	const now = 1_000_000
	for i := 0; i < LeaseWays; i++ {
		role, err := ts[0].Acquire(uint64(100+i), uint64(10+i), 1, uint32(i+1), now, now+10_000, true)
		mustRole(t, RoleLeader, role, err)
	}
	role, err := ts[1].Acquire(999, 77, 2, 1, now, now+10_000, true)
	mustRole(t, RoleCollision, role, err)
	for i := 0; i < LeaseWays; i++ {
		if led, _ := ts[1].Leading(uint64(100+i), now); !led {
			t.Fatalf("lease of %d lost", 100+i)
		}
	}
	role, err = ts[1].Acquire(999, 77, 2, 1, now+10_000, now+20_000, true)
	mustRole(t, RoleLeader, role, err)
}

// One tenant takes at most its share of a slot's ways: past it, its new
// leader may only displace its own marks, never another tenant's.
func TestLeaseTenantShare(t *testing.T) {
	ts, _ := oneSlot(1)
	lt := ts[0]
	const now, x, y = 1_000_000, 5, 6
	for i := 0; i < tenantShare; i++ {
		role, err := lt.Acquire(uint64(100+i), x, 1, uint32(i+1), now, now+10_000, true)
		mustRole(t, RoleLeader, role, err)
	}
	role, err := lt.Acquire(200, x, 1, 50, now, now+10_000, true)
	mustRole(t, RoleCollision, role, err) // x's share is all held leases
	role, err = lt.Acquire(300, y, 1, 60, now, now+10_000, true)
	mustRole(t, RoleLeader, role, err) // another tenant still leads
	if _, err := lt.Release(300, 1, 60, now, now+5_000); err != nil {
		t.Fatal(err)
	}
	// x's leases become marks; x's next key displaces x's own mark, not y's
	// (which expires sooner).
	for i := 0; i < tenantShare; i++ {
		if _, err := lt.Release(uint64(100+i), 1, uint32(i+1), now, now+30_000+int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	role, err = lt.Acquire(200, x, 1, 50, now, now+10_000, true)
	mustRole(t, RoleLeader, role, err)
	if l, _ := lt.Peek(300); l.State != LeaseHitForMiss {
		t.Fatalf("tenant y's mark was displaced by tenant x: %+v", l)
	}
	if l, _ := lt.Peek(100); l.State != LeaseFree {
		t.Fatalf("x's soonest mark should have made room: %+v", l)
	}
	// Routes without tenants (tag 0) are not bounded.
	ts, _ = oneSlot(1)
	for i := 0; i < LeaseWays; i++ {
		role, err := ts[0].Acquire(uint64(400+i), 0, 1, uint32(i+1), now, now+10_000, true)
		mustRole(t, RoleLeader, role, err)
	}
}

// Malformed slot records read as empty; records round-trip.
func TestLeaseSlotRecord(t *testing.T) {
	ways := []Lease{
		{FP: 1, State: LeaseHeld, Owner: 2, Stream: 3, Deadline: 4, Tenant: 5, Waiters: []uint64{6, 7}},
		{FP: 8, State: LeaseHitForMiss, Deadline: 9, Tenant: 10},
	}
	b := encodeSlot(ways)
	got, ok := decodeSlot(b)
	if !ok || fmt.Sprint(got) != fmt.Sprint(ways) {
		t.Fatalf("round trip: %v %v", got, ok)
	}
	for i := 0; i < len(b); i++ {
		if _, ok := decodeSlot(b[:i]); ok {
			t.Fatalf("truncated record of %d bytes decoded", i)
		}
	}
	bad := append([]byte(nil), b...)
	bad[3] = LeaseWays + 1
	if _, ok := decodeSlot(bad); ok {
		t.Fatal("too many ways decoded")
	}
	if _, ok := decodeSlot(append(b, 0)); ok {
		t.Fatal("trailing bytes decoded")
	}
}

// TestLeaseHammer: many VMs (goroutines, each with its own table) race for
// more keys than one slot has ways, from several tenants, while marks are
// set, expire and are displaced. A key never has two leaders at once.
func TestLeaseHammer(t *testing.T) {
	const (
		vms     = 8
		rounds  = 3000
		keys    = 12
		tenants = 3
	)
	if testing.Short() {
		t.Skip("hammer")
	}
	store := NewMemStore()
	var clock atomic.Int64
	clock.Store(1_000_000)
	var leaders [keys]atomic.Int32
	var led, collided, marked atomic.Int64
	hammer.Run(t, vms, func(v int) error {
		lt := NewLeaseTable(store, 1)
		r := rand.New(rand.NewPCG(uint64(v), 42))
		for i := 0; i < rounds; i++ {
			k := r.IntN(keys)
			fp, tenant := uint64(1000+k), uint64(1+k%tenants)
			now := clock.Add(int64(r.IntN(3)))
			// Held leases never expire during the test: a second
			// leader could only come from a broken acquire.
			role, err := lt.Acquire(fp, tenant, uint64(v+1), uint32(i+1), now, now+1<<40, r.IntN(2) == 0)
			if err != nil && !errors.Is(err, ErrContention) {
				return err
			}
			switch role {
			case RoleCollision:
				collided.Add(1)
				continue
			case RoleLeader:
			default:
				continue
			}
			led.Add(1)
			if n := leaders[k].Add(1); n != 1 {
				return fmt.Errorf("key %d has %d leaders", k, n)
			}
			runtime.Gosched()
			if l, err := lt.Peek(fp); err == nil && (l.State != LeaseHeld || l.Owner != uint64(v+1) || l.Stream != uint32(i+1)) {
				return fmt.Errorf("key %d: the lease was taken from its live leader: %+v", k, l)
			}
			leaders[k].Add(-1)
			var hfm int64
			if r.IntN(3) == 0 {
				hfm = now + int64(1+r.IntN(200))
				marked.Add(1)
			}
			if _, err := lt.Release(fp, uint64(v+1), uint32(i+1), now, hfm); err != nil && !errors.Is(err, ErrContention) {
				return err
			}
		}
		return nil
	})
	t.Logf("%d leads, %d marks, %d collisions", led.Load(), marked.Load(), collided.Load())
	if led.Load() == 0 || marked.Load() == 0 || collided.Load() == 0 {
		t.Fatal("the hammer did not exercise leading, marking and full slots")
	}
}

// A follower sits through max_retries leader failures; then it fails with
// the leader's status (default) or goes upstream ("forward").
func TestAfterLeaderFailure(t *testing.T) {
	env := newEnv(t, leaseTestConfig)
	req := env.missed(alice, "q")
	for f, want := range []followerStep{stepRetry, stepRetry, stepRetry, stepFail, stepFail} {
		if got := env.cache.afterLeaderFailure(req, f); got != want {
			t.Fatalf("after %d failures: %v, want %v", f, got, want)
		}
	}
	for _, tc := range []struct {
		leader, status int
		cs             string
	}{
		{503, 503, "modelcache; fwd=miss; collapsed; fwd-status=503; detail=leader-failed"},
		{429, 429, "modelcache; fwd=miss; collapsed; fwd-status=429; detail=leader-failed"},
		{200, 502, "modelcache; fwd=miss; collapsed; detail=leader-failed"}, // truncated
		{0, 502, "modelcache; fwd=miss; collapsed; detail=leader-failed"},   // reset, abort, lost wake-up
	} {
		status, headers, body := env.cache.leaderFailedResponse(req, tc.leader)
		if status != tc.status || headerValue(headers, "cache-status") != tc.cs || !json.Valid(body) {
			t.Errorf("leader %d: %d %q %s", tc.leader, status, headerValue(headers, "cache-status"), body)
		}
	}
	fwd := newEnv(t, strings.Replace(leaseTestConfig, `"hit_for_miss":"30s"`, `"hit_for_miss":"30s","on_retries_exhausted":"forward"`, 1))
	req = fwd.missed(alice, "q")
	if got := fwd.cache.afterLeaderFailure(req, 3); got != stepForward {
		t.Fatalf("forward: %v", got)
	}
}

// A lease table reuses its read memory: what Release and Peek hand out
// must not change when the table reads its slots again.
func TestLeaseResultsOutliveTheNextRead(t *testing.T) {
	lt := NewLeaseTable(NewMemStore(), 1) // one slot: every key shares it
	if r, err := lt.Acquire(1, 0, 100, 1, 0, 1000, true); r != RoleLeader || err != nil {
		t.Fatalf("leader: %v %v", r, err)
	}
	for vm := uint64(200); vm < 203; vm++ {
		if r, err := lt.Acquire(1, 0, vm, 1, 0, 1000, true); r != RoleFollower || err != nil {
			t.Fatalf("follower %d: %v %v", vm, r, err)
		}
	}
	peeked, err := lt.Peek(1)
	if err != nil {
		t.Fatal(err)
	}
	// Another key's leader, with followers, in the same slot.
	lt.Acquire(2, 0, 300, 1, 0, 1000, true)
	lt.Acquire(2, 0, 301, 1, 0, 1000, true)
	waiters, err := lt.Release(1, 100, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	lt.Acquire(3, 0, 400, 1, 0, 1000, true)
	lt.Acquire(3, 0, 401, 1, 0, 1000, true)
	lt.Peek(2)
	if fmt.Sprint(waiters) != "[200 201 202]" || fmt.Sprint(peeked.Waiters) != "[200 201 202]" {
		t.Fatalf("after more reads: released waiters %v, peeked %v; want [200 201 202]", waiters, peeked.Waiters)
	}
}

// encodeSlot and decodeSlot are the slot codec without reused memory.
func encodeSlot(ways []Lease) []byte { return appendSlot(nil, ways) }

func decodeSlot(b []byte) ([]Lease, bool) {
	ways, _, ok := decodeSlotInto(nil, nil, b)
	return ways, ok
}

// The slot layout is shared by every VM of a process, whatever module
// version each runs: its bytes are pinned, not only its round trip.
func TestLeaseSlotEncodingIsPinned(t *testing.T) {
	ways := []Lease{
		{FP: 0x0102030405060708, State: LeaseHeld, Owner: 0x1112131415161718, Stream: 0x21222324, Deadline: 0x3132333435363738, Tenant: 0x4142434445464748, Waiters: []uint64{0x5152535455565758, 0x6162636465666768}},
		{FP: 9, State: LeaseHitForMiss, Owner: 10, Stream: 11, Deadline: 12, Tenant: 13},
	}
	const want = "4d4c0202" +
		"0807060504030201" + "%02x" + "1817161514131211" + "24232221" + "3837363534333231" + "4847464544434241" + "02" +
		"5857565554535251" + "6867666564636261" +
		"0900000000000000" + "%02x" + "0a00000000000000" + "0b000000" + "0c00000000000000" + "0d00000000000000" + "00"
	w := fmt.Sprintf(want, byte(LeaseHeld), byte(LeaseHitForMiss))
	pre := []byte{0xee}
	got := appendSlot(pre, ways)
	if fmt.Sprintf("%x", got[1:]) != w || got[0] != 0xee {
		t.Fatalf("slot bytes:\n got %x\nwant ee%s", got, w)
	}
	back, ok := decodeSlot(got[1:])
	if !ok || fmt.Sprint(back) != fmt.Sprint(ways) {
		t.Fatalf("decoded %v, %v; want %v", back, ok, ways)
	}
}

func TestLiveOnlyKeepsTheLiveLeasesInOrder(t *testing.T) {
	const now = 100
	mk := func(spec string) []Lease {
		var ways []Lease
		for i, c := range spec {
			l := Lease{FP: uint64(i + 1), State: LeaseHeld, Deadline: now + 1, Waiters: []uint64{uint64(10 * (i + 1))}}
			switch c {
			case 'x': // expired
				l.Deadline = now
			case 'f': // free
				l.State = LeaseFree
			case 'm':
				l.State = LeaseHitForMiss
			}
			ways = append(ways, l)
		}
		return ways
	}
	for _, tc := range []struct{ spec, want string }{
		{"", "[]"},
		{"ll", "[1:[10] 2:[20]]"},
		{"xx", "[]"},
		{"xlm", "[2:[20] 3:[30]]"},
		{"lxl", "[1:[10] 3:[30]]"},
		{"lmf", "[1:[10] 2:[20]]"},
		{"fxlxm", "[3:[30] 5:[50]]"},
	} {
		var got []string
		for _, l := range liveOnly(mk(tc.spec), now) {
			got = append(got, fmt.Sprintf("%d:%v", l.FP, l.Waiters))
		}
		if s := "[" + strings.Join(got, " ") + "]"; s != tc.want {
			t.Errorf("liveOnly(%q) = %s, want %s", tc.spec, s, tc.want)
		}
	}
}

// Extend moves its own live lease only, keeping its waiters and the
// slot's other leases.
func TestLeaseExtend(t *testing.T) {
	ts, _ := oneSlot(1)
	lt := ts[0]
	const now = 1_000_000
	role, err := lt.Acquire(7, 1, 1, 1, now, now+10_000, true)
	mustRole(t, RoleLeader, role, err)
	role, err = lt.Acquire(8, 2, 1, 2, now, now+10_000, true)
	mustRole(t, RoleLeader, role, err)
	role, err = lt.Acquire(7, 3, 2, 5, now, now+10_000, true)
	mustRole(t, RoleFollower, role, err)
	if ok, err := lt.Extend(7, 2, 5, now, now+50_000); ok || err != nil {
		t.Fatalf("a follower's worker extended the lease: %v %v", ok, err)
	}
	if ok, err := lt.Extend(7, 1, 1, now, now+50_000); !ok || err != nil {
		t.Fatalf("its leader could not extend it: %v %v", ok, err)
	}
	l, _ := lt.Peek(7)
	if l.Deadline != now+50_000 || l.Owner != 1 || l.Stream != 1 || len(l.Waiters) != 1 || l.Waiters[0] != 2 {
		t.Fatalf("extended lease: %+v", l)
	}
	if o, _ := lt.Peek(8); o.Deadline != now+10_000 || o.State != LeaseHeld {
		t.Fatalf("the slot's other lease changed: %+v", o)
	}
	if ok, _ := lt.Extend(7, 1, 1, now, now+20_000); !ok {
		t.Fatal("an earlier deadline is no failure")
	}
	if l, _ := lt.Peek(7); l.Deadline != now+50_000 {
		t.Fatalf("an earlier deadline moved the lease back: %+v", l)
	}
	if ok, _ := lt.Extend(8, 1, 2, now+10_000, now+60_000); ok {
		t.Fatal("an expired lease was extended")
	}
}
