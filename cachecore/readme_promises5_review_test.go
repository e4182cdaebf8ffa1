package cachecore

import (
	"os"
	"strings"
	"testing"
)

// Review Z244: README's configuration tables and Stats table against the
// code.

// README, Configuration: "A value a route inherits from defaults is named
// where it is written (defaults.ttl: 5s is not above l2.ttl_slack …)", and
// defaults' shadow applies "member by member: a route's own object changes
// only the members it names". A shadow.compare of "numeric" written in
// defaults, on a chat route whose own shadow names only its sample, is
// refused as "routes[0].shadow.compare" — a member the route does not
// hold; the operator looks for it there and finds nothing. Expected: the
// error names defaults.shadow.compare, where the value is written (as it
// does when the route has no shadow object of its own).
func TestReadmePromises5InheritedShadowCompareIsNamedWhereWritten(t *testing.T) {
	cfg := `{"upstream_cluster":"model","defaults":{"shadow":{"compare":"numeric"}},
	  "routes":[{"name":"c","kind":"chat","path_prefix":"/v1/chat","shared":true,"shadow":{"sample":0.5}}]}`
	_, err := ParseConfig([]byte(cfg))
	if err == nil {
		t.Fatal("accepted: a numeric comparator on a chat route's default text paths (README: a config error)")
	}
	if !strings.Contains(err.Error(), "defaults.shadow.compare") {
		t.Fatalf("the error does not name defaults.shadow.compare, where compare is written:\n%v", err)
	}
}

// README, Stats: the table names every route stat (bypass and refused
// reasons, events, statuses); a dashboard or alert built from it must be
// able to find each counter /stats holds. Every name StatNames defines for
// a route must be named in that table. Today the bypass row lacks
// no_body, number_range, hit_for_miss, internal and store_contention, and
// the refused row lacks internal, store_contention and encoded — counters
// every route has in /stats from start.
func TestReadmePromises5StatsTableNamesEveryRouteStat(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "\n## Stats\n")
	end := strings.Index(readme, "\n## Purge API\n")
	if start < 0 || end < start {
		t.Fatal("README has no Stats section")
	}
	rows := map[string]string{} // group ("bypass", "coalesce", …) → its row
	var single []string
	for _, line := range strings.Split(readme[start:end], "\n") {
		if !strings.HasPrefix(line, "| `modelcache_route.<route>.") {
			continue
		}
		name := strings.TrimPrefix(line, "| `modelcache_route.<route>.")
		name = name[:strings.IndexByte(name, '`')]
		if g, ok := strings.CutSuffix(name, ".<status>"); ok {
			rows[g] = line
		} else if g, ok := strings.CutSuffix(name, ".<reason>"); ok {
			rows[g] = line
		} else if g, ok := strings.CutSuffix(name, ".<event>"); ok {
			rows[g] = line
		} else if g, ok := strings.CutSuffix(name, ".<outcome>"); ok {
			rows[g] = line
		} else if g, ok := strings.CutSuffix(name, ".<stat>"); ok {
			rows[g] = line
		} else {
			single = append(single, line)
		}
	}
	cfg := `{"upstream_cluster":"model","l2":{"cluster":"webdis"},"routes":[
	  {"name":"c","kind":"chat","path_prefix":"/v1/chat","shared":true,
	   "freshness_slo":{"max_age":"1h"},"shadow":{"sample":0.1},
	   "semantic":{"embedding":{"cluster":"emb"}}},
	  {"name":"e","kind":"embeddings","path_prefix":"/v1/embeddings","shared":true}]}`
	c, err := ParseConfig([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	seen := map[string]bool{}
	for _, r := range c.Routes {
		n := StatNames(r)
		var names []string
		names = append(names, n.Requests...)
		names = append(names, n.Bypass...)
		names = append(names, n.Refused...)
		names = append(names, n.Events[:]...)
		names = append(names, n.Stored, n.AgeMs, n.StaleRatePPM, n.SLOBreached)
		for _, full := range names {
			if full == "" {
				continue
			}
			stat := strings.TrimPrefix(full, n.Prefix)
			if seen[stat] {
				continue
			}
			seen[stat] = true
			found := false
			if g, leaf, ok := strings.Cut(stat, "."); ok && rows[g] != "" {
				found = strings.Contains(rows[g], "`"+leaf+"`")
			}
			if !found {
				for _, line := range single {
					if strings.Contains(line, "`modelcache_route.<route>."+stat+"`") {
						found = true
					}
				}
				found = found || strings.Contains(readme[start:end], "`modelcache_route.<route>."+stat+"`")
			}
			if !found {
				missing = append(missing, "modelcache_route.<route>."+stat)
			}
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d stats every such route has in /stats are not named in README's Stats table:\n  %s",
			len(missing), strings.Join(missing, "\n  "))
	}
}

// README, Stats: "Every counter exists from start", and Event.Applies
// "keeps /stats free of counters a route can never move". Yet every
// route defines bypass.hit_for_miss and bypass.store_contention, and no
// code counts either: nothing bypasses with ReasonHitForMiss (a key marked
// hit-for-miss goes upstream as a miss and counts coalesce.hit_for_miss,
// as README says) and ReasonStoreContention is only a store's refusal
// (refused.store_contention). An operator who alerts on, or graphs,
// bypass.hit_for_miss sees a flat zero whatever happens. Expected: a
// bypass counter is defined only for a reason a request can be bypassed
// for.
func TestReadmePromises5NoBypassCounterThatNothingCounts(t *testing.T) {
	c, err := ParseConfig([]byte(`{"routes":[{"name":"c","kind":"chat","path_prefix":"/v1/chat","shared":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var dead []string
	for _, name := range StatNames(c.Routes[0]).Bypass {
		if strings.HasSuffix(name, ".bypass.hit_for_miss") || strings.HasSuffix(name, ".bypass.store_contention") {
			dead = append(dead, name)
		}
	}
	if len(dead) > 0 {
		t.Fatalf("counters defined that no request can move: %s", strings.Join(dead, ", "))
	}
}
