package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z105. README, Shadow comparison: "The fresh answer is compared
// with the cached one by `compare`: … `cosine` ≥ `min_cosine` per item
// (default for embeddings), `numeric` within `tolerance`, or `exact` JSON
// equality". cosine is the embeddings kind's default, and ParseConfig
// accepts any other comparator on an embeddings route; but compareFresh
// sends every embeddings batch to agreeEmbeddings, which compares by
// cosine whatever `compare` (and `tolerance`) say. An operator who asked
// for `exact` or `numeric` vectors (a quantised model whose answers must
// not move) gets a comparison that calls a vector twice as long, or
// shifted within any tolerance short of the cosine's, agreement: the
// configured comparator is silently ignored. Either the route should be
// refused or the comparator honoured.
func TestShadowCompareOnEmbeddingsRouteIsHonouredOrRefused(t *testing.T) {
	for _, tc := range []struct{ name, shadow, fresh string }{
		{"exact", `"compare":"exact"`, "[2,0,0]"},
		{"numeric", `"compare":"numeric","tolerance":0.01`, "[1.5,0,0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := `{"upstream_cluster":"model","routes":[{"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","shared":true,` +
				`"ttl":"1h","shadow":{"sample":1,"max_concurrent":4,` + tc.shadow + `}}]}`
			if _, err := ParseConfig([]byte(cfg)); err != nil {
				return // refused: the comparator is not silently dropped
			}
			env := newEnv(t, cfg)
			req, _ := env.lookup("embed", nil, `{"model":"e","input":"item 0"}`)
			env.fill(req, jsonCT, `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[1,0,0]}]}`, 10)
			req, d := env.lookup("embed", nil, `{"model":"e","input":["item 0"]}`)
			if d != Serve {
				t.Fatalf("setup: the cached item is not a hit: %v", d)
			}
			fresh := `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":` + tc.fresh + `}]}`
			agree, ok := env.cache.compareFresh(req, jsonCT, []byte(fresh))
			if !ok {
				t.Fatalf("setup: the fresh answer could not be compared")
			}
			if agree {
				t.Errorf("shadow {%s} on an embeddings route: cached [1,0,0] and fresh %s agree (compared by cosine, the kind's default); "+
					"the configured comparator says they diverge", tc.shadow, tc.fresh)
			}
		})
	}
}

// Review Z105. Every route is checked against each earlier one
// (routeCovers), and that check compares the two routes' methods lists
// with a linear scan per method: quadratic in the lists' length, and
// methods is unbounded. Two routes listing 64,000 methods each (1 MB)
// take about 8.5 s to parse natively, where one route of 128,000 methods,
// the same size, takes about 0.1 s; 1,024 routes of 64 methods each (0.44
// MB) take 3.3 s. Every VM of the proxy parses the configuration at start,
// under wasm several times slower, and so does `modelcache lint`. The
// project bounds its configuration work elsewhere (routes ≤ 1,024,
// key_headers ≤ 8, stored_headers checked by a map since review Z69).
// Here: two routes of 40,000 methods must parse (or be refused) within
// ten times what one route of 80,000 takes, plus 200 ms.
func TestManyMethodsParseInBoundedTime(t *testing.T) {
	list := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"M%X"`, i)
		}
		return b.String()
	}
	// The baseline: one route listing 80,000 methods, the same size,
	// with no second route to compare it with.
	one := `{"routes":[{"name":"a","kind":"chat","path_prefix":"/a/","methods":[` + list(80000) + `]}]}`
	start := time.Now()
	ParseConfig([]byte(one))
	baseline := time.Since(start)
	ms := list(40000)
	two := `{"routes":[{"name":"a","kind":"chat","path_prefix":"/a/","methods":[` + ms + `]},` +
		`{"name":"b","kind":"chat","path_prefix":"/b/","methods":[` + ms + `]}]}`
	done := make(chan struct{})
	start = time.Now()
	go func() {
		ParseConfig([]byte(two))
		close(done)
	}()
	budget := 10*baseline + 200*time.Millisecond
	select {
	case <-done:
		t.Logf("parsed in %v (baseline %v)", time.Since(start), baseline)
	case <-time.After(budget):
		t.Fatalf("ParseConfig of a %d-byte configuration (two routes, 40000 methods each) still running after %v, "+
			"10 times the %v one route of 80000 methods (%d bytes) takes, plus 200ms: routeCovers compares the methods lists pairwise, quadratic",
			len(two), budget, baseline, len(one))
	}
}

// A comparator set in defaults serves the other routes: an embeddings
// route drops it (its items are compared by cosine) and the route that
// shares defaults' shadow keeps it; set on the route itself it is an
// error naming the field.
func TestShadowCompareFromDefaultsIsDroppedOnAnEmbeddingsRoute(t *testing.T) {
	cfg := `{"upstream_cluster":"model","defaults":{"shadow":{"sample":0.5,"compare":"exact","paths":["id"]}},"routes":[
	  {"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","ttl":"1h"},
	  {"name":"j","kind":"json","path_exact":"/v1/j","ttl":"1h"}]}`
	c, err := ParseConfig([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if sh := c.Routes[0].Shadow; sh == nil || sh.Compare != "cosine" || len(sh.Paths) != 0 || sh.Sample != 0.5 {
		t.Fatalf("embeddings route's shadow %+v: want defaults' sample, compared by cosine", sh)
	}
	if sh := c.Routes[1].Shadow; sh == nil || sh.Compare != "exact" || len(sh.Paths) != 1 {
		t.Fatalf("json route's shadow %+v: want defaults' exact on [id]", sh)
	}
	_, err = ParseConfig([]byte(`{"upstream_cluster":"model","routes":[{"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","shadow":{"compare":"numeric"}}]}`))
	if err == nil || !strings.Contains(err.Error(), "routes[0].shadow.compare: does not apply on a embeddings route") {
		t.Fatalf("err %v", err)
	}
}

// A route lists at most 32 methods (a set: written twice is once), and a
// route whose methods another earlier route's cover, on a path it covers,
// is still found never matched.
func TestRouteMethodsAreABoundedSet(t *testing.T) {
	many := make([]string, 33)
	for i := range many {
		many[i] = fmt.Sprintf(`"M%d"`, i)
	}
	_, err := ParseConfig([]byte(`{"routes":[{"name":"a","kind":"chat","path_prefix":"/a/","methods":[` + strings.Join(many, ",") + `]}]}`))
	if err == nil || !strings.Contains(err.Error(), "routes[0].methods: lists 33 methods, more than 32") {
		t.Fatalf("err %v", err)
	}
	c, err := ParseConfig([]byte(`{"routes":[{"name":"a","kind":"chat","path_prefix":"/a/","methods":["PUT","POST","PUT"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Routes[0].Methods; len(m) != 2 || c.MatchRoute("PUT", "/a/x") == nil || c.MatchRoute("POST", "/a/x") == nil || c.MatchRoute("GET", "/a/x") != nil {
		t.Fatalf("methods %q", m)
	}
	_, err = ParseConfig([]byte(`{"routes":[{"name":"a","kind":"chat","path_prefix":"/a/","methods":["PUT","POST","GET"]},
	  {"name":"b","kind":"chat","path_prefix":"/a/b","methods":["POST","GET"]}]}`))
	if err == nil || !strings.Contains(err.Error(), `is never matched: route "a" comes first`) {
		t.Fatalf("err %v", err)
	}
	if _, err = ParseConfig([]byte(`{"routes":[{"name":"a","kind":"chat","path_prefix":"/a/","methods":["PUT","POST"]},
	  {"name":"b","kind":"chat","path_prefix":"/a/b","methods":["POST","GET"]}]}`)); err != nil {
		t.Fatalf("b matches GET, which a does not: %v", err)
	}
}
