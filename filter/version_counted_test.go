//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// model_version_changes counts every switch the upstream reports, whether
// or not the answer that reports it is stored: the refused answer retires
// the predecessor's entries as a stored one does, so an operator watching
// the counter must see it. Three refusals, three paths: the body
// (finish_reason), the headers (no-store), a stream's end.
func TestAVersionSwitchInARefusedAnswerIsCounted(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","model_version":{"header":"x-model-version"}}]}`
	hs := newHarness(t, cfg)
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", chatBody("first")), "stored")
	steps := []struct {
		name, version string
		knobs         func(k *modelsim.Knobs)
		body          string
	}{
		{"finish_reason length", "v2", func(k *modelsim.Knobs) { k.FinishReason = "length" }, chatBody("second")},
		{"no-store", "v3", func(k *modelsim.Knobs) { k.FinishReason, k.CacheControl = "", "no-store" }, chatBody("third")},
		{"stream cut by length", "v4", func(k *modelsim.Knobs) { k.CacheControl, k.FinishReason = "", "length" }, streamBody("fourth")},
	}
	for i, s := range steps {
		if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = s.version; s.knobs(k) }); err != nil {
			t.Fatal(err)
		}
		res := hs.post(i%2, "/v1/chat/completions", s.body)
		if hdr(res, "x-model-version") != s.version {
			t.Fatalf("%s: setup: the answer reports %q", s.name, hdr(res, "x-model-version"))
		}
		expectCacheStatus(t, res, "fwd=miss")
		if got := hs.counter("modelcache.model_version_changes"); got != uint64(i+1) {
			t.Errorf("%s: the upstream switched to %s in a refused answer; model_version_changes = %d, want %d", s.name, s.version, got, i+1)
		}
	}
}
