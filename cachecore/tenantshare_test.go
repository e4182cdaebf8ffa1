package cachecore

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// One tenant flooding the store (issue 13, doubt): with
// store.max_tenant_share, a tenant's inserts into a bucket displace only
// its own entries once it holds its share of the bucket's ways.
func TestTenantShare(t *testing.T) {
	shared := func(share string) string {
		return strings.Replace(testConfig, `"store": {"buckets": 16, "ways": 4, "max_entry_bytes": 65536}`,
			`"store": {"buckets": 1, "ways": 4, "max_entry_bytes": 65536`+share+`}`, 1)
	}
	flood := func(t *testing.T, env *testEnv) (aliceServed bool, bobServed int) {
		victim := chatRequest("alice's question")
		req, _ := env.lookup("chat", alice, victim)
		env.fill(req, jsonCT, chatResponse("alice's answer"), 10)
		for i := 0; i < 20; i++ {
			env.clock.Advance(time.Second) // later entries expire later
			req, _ := env.lookup("chat", bob, chatRequest("bob "+strconv.Itoa(i)))
			env.fill(req, jsonCT, chatResponse("b"), 10)
		}
		_, d := env.lookup("chat", alice, victim)
		for i := 0; i < 20; i++ {
			if _, d := env.lookup("chat", bob, chatRequest("bob "+strconv.Itoa(i))); d == Serve {
				bobServed++
			}
		}
		return d == Serve, bobServed
	}

	t.Run("off: a flood evicts everyone", func(t *testing.T) {
		a, b := flood(t, newEnv(t, shared("")))
		if a || b != 4 {
			t.Fatalf("alice served %v, bob holds %d of 4 ways", a, b)
		}
	})
	t.Run("half: the flood displaces only its own entries", func(t *testing.T) {
		a, b := flood(t, newEnv(t, shared(`, "max_tenant_share": 0.5`)))
		if !a || b != 2 {
			t.Fatalf("alice served %v, bob holds %d ways, share 2", a, b)
		}
	})
	t.Run("shared routes are not limited", func(t *testing.T) {
		env := newEnv(t, shared(`, "max_tenant_share": 0.25`))
		for i := 0; i < 4; i++ {
			req, _ := env.lookup("json", nil, `{"q":`+strconv.Itoa(i)+`}`)
			env.fill(req, jsonCT, `{"a":1}`, 1)
		}
		for i := 0; i < 4; i++ {
			if _, d := env.lookup("json", nil, `{"q":`+strconv.Itoa(i)+`}`); d != Serve {
				t.Fatalf("shared entry %d not served", i)
			}
		}
	})
}

// TestTableTenantWays: the way choice under a share of 2 of 4 ways.
func TestTableTenantWays(t *testing.T) {
	const now = 1000
	lay := func(ways ...slot) *Table {
		tb := NewTable(NewMemStore(), 1, 4)
		tb.SetTenantShare(0.5)
		tb.resetIdx()
		copy(tb.idx, ways)
		return tb
	}
	for _, tc := range []struct {
		name string
		tb   *Table
		fp   uint64
		tag  uint32
		way  int
		want InsertResult
	}{
		{"at its share: its own soonest-dying entry, not the empty way",
			lay(slot{1, 5000, 7}, slot{2, 3000, 7}, slot{3, 2000, 9}, slot{}), 10, 7, 1, InsertResult{Evicted: true, OwnShare: true}},
		{"a dead own entry does not count",
			lay(slot{1, 5000, 7}, slot{2, 500, 7}, slot{3, 2000, 9}, slot{}), 10, 7, 3, InsertResult{Filled: true}},
		{"below its share: the usual choice",
			lay(slot{1, 5000, 7}, slot{2, 3000, 9}, slot{3, 2000, 9}, slot{}), 10, 7, 3, InsertResult{Filled: true}},
		{"its own key is replaced in place",
			lay(slot{1, 5000, 7}, slot{2, 3000, 7}, slot{3, 2000, 9}, slot{}), 1, 7, 0, InsertResult{}},
		{"untagged (shared route): no limit",
			lay(slot{1, 5000, 0}, slot{2, 3000, 0}, slot{3, 2000, 9}, slot{}), 10, 0, 3, InsertResult{Filled: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fp = tc.fp<<8 | 3 // preferred way 3 of 4
			for i := range tc.tb.idx {
				if tc.tb.idx[i].fp != 0 {
					tc.tb.idx[i].fp = tc.tb.idx[i].fp<<8 | 3
				}
			}
			w, res := tc.tb.chooseWay(tc.fp, tc.tag, now)
			if w != tc.way || res != tc.want {
				t.Fatalf("way %d %+v, want way %d %+v", w, res, tc.way, tc.want)
			}
		})
	}
}

func TestTenantShareConfig(t *testing.T) {
	for _, tc := range []struct {
		share   string
		ok      bool
		perWays int // of 4 ways
	}{
		{"", true, 0}, {"0", true, 0}, {"0.25", true, 1}, {"0.3", true, 2}, {"0.5", true, 2}, {"1", true, 0},
		{"1.5", false, 0}, {"-0.1", false, 0}, {`"half"`, false, 0},
	} {
		field := ""
		if tc.share != "" {
			field = `,"max_tenant_share":` + tc.share
		}
		cfg, err := ParseConfig([]byte(`{"store":{"ways":4` + field + `},"routes":[{"name":"c","kind":"chat","path_prefix":"/"}]}`))
		if (err == nil) != tc.ok {
			t.Fatalf("share %s: err %v", tc.share, err)
		}
		if err != nil {
			continue
		}
		tb := NewTable(NewMemStore(), 1, cfg.Store.Ways)
		tb.SetTenantShare(cfg.Store.MaxTenantShare)
		if tb.tenantWays != tc.perWays {
			t.Errorf("share %s: %d ways per tenant, want %d", tc.share, tb.tenantWays, tc.perWays)
		}
	}
}
