package cachecore

import (
	"testing"
	"time"
)

// Review Z17 (stop 72). README "Purge API": a purge by replay refuses "an answer in
// flight when it came, asked for before it". The mend of Z14/Z16
// (rebuildKey's lookedAs, purgedAsLooked) checks the key a single-key
// request looked up when its answer's store files it under another key (a
// model's first version, a version switch); an embeddings batch stores
// each item under a key rebuilt by itemKeys after prepareStore, and
// insertBucket checks only the new keys' tombstones: the item asked for
// before the purge is stored past it, and served after the purge returned.
func TestEntryPurgeRefusesAnInFlightBatchItemFiledUnderANewVersion(t *testing.T) {
	const cfg = `{"upstream_cluster":"u","purge":{"path":"/purge","token":"0123456789abcdef"},"routes":[{"name":"emb","kind":"embeddings",` +
		`"path_prefix":"/v1/embeddings","ttl":"1h","model_version":{"header":"x-model-version"}}]}`
	v := func(s string) [][2]string { return hdr("content-type", "application/json", "x-model-version", s) }
	for _, tc := range []struct{ name, known, reported string }{
		{"same version (control)", "v1", "v1"},
		{"version switch", "v1", "v2"},
		{"first version", "", "v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, cfg)
			if tc.known != "" {
				warm, _ := env.lookup("emb", bob, `{"model":"e","input":["warm"]}`)
				env.fill(warm, v(tc.known), string(embAnswer([]string{"warm"})), 10)
			}
			req, d := env.lookup("emb", alice, `{"model":"e","input":["aa","bbbb"]}`)
			if d != Forward {
				t.Fatal(d)
			}
			env.clock.Advance(time.Millisecond)
			purge := `{"path":"/v1/embeddings","headers":{"authorization":"Bearer sk-alice"},"body":{"model":"e","input":"aa"}}`
			if res, err := env.cache.Purge([]byte(purge), ""); err != nil || res.Scope != "entry" {
				t.Fatalf("purge: %+v %v", res, err)
			}
			env.clock.Advance(time.Millisecond)
			st := env.cache.AdmitAndStore(req, 200, v(tc.reported), embAnswer([]string{"aa", "bbbb"}), OriginUpstream, 10)
			if r2, d := env.lookup("emb", alice, `{"model":"e","input":["aa"]}`); d == Serve {
				t.Fatalf("the item \"aa\", asked for before its purge, was stored after it (%d stored, %d refused, changed %v) and is served: %s",
					st.Result.ItemsStored, st.Result.ItemsRefused, st.Result.VersionChanged, r2.Status)
			}
		})
	}
}
