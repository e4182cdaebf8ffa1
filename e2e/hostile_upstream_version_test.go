package e2e

import (
	"bytes"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// TestHostileUpstreamLongVersions (issue 13, item 6): two model versions
// that share their first 64 bytes are different versions. After the
// upgrade is observed, the old version's entry is not served.
func TestHostileUpstreamLongVersions(t *testing.T) {
	e := startEnvoy(t, envoyOpts{})
	url := e.URL + "/v1/chat/completions"
	prefix := strings.Repeat("registry.example/models/chat:2025-06-01-", 2) // 80 bytes
	v1, v2 := prefix+"sha-aaaaaaaa", prefix+"sha-bbbbbbbb"
	setVersion := func(v string) {
		if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = v }); err != nil {
			t.Fatal(err)
		}
	}
	setVersion(v1)
	old := chat("a question asked before the upgrade")
	expectCS(t, do(t, "POST", url, old, "authorization", "Bearer a"), "fwd=miss", "stored")
	expectCS(t, do(t, "POST", url, old, "authorization", "Bearer a"), "hit")

	setVersion(v2)
	expectCS(t, do(t, "POST", url, chat("a question after the upgrade"), "authorization", "Bearer a"), "fwd=miss", "stored")
	if got := e.WaitStat("wasmcustom.modelcache.model_version_changes", 1); got != 1 {
		t.Errorf("version changes counted: %d", got)
	}
	r := do(t, "POST", url, old, "authorization", "Bearer a")
	want, err := modelsim.ExpectedBody(v2, "/v1/chat/completions", []byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Body, want) || r.Header.Get("x-model-version") != v2 {
		t.Fatalf("old version's answer served after the upgrade (%s, version %q)", r.CacheStatus(), r.Header.Get("x-model-version"))
	}
}
