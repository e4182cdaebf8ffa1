package cachecore

import (
	"bytes"
	"strings"
	"testing"
)

// README, model_version: "a switch also renews the model's generation, so a
// switch back to an older version during a rollout does not bring its
// entries back". In L1 it does not; an L2 value keeps the old version in its
// identity and the mesh-wide generations, which a version switch never
// moves, so the switch back makes it reachable again on the very proxy that
// saw the switch.
func TestL2SwitchBackToAnOlderVersionDoesNotBringItsEntriesBack(t *testing.T) {
	m := newMeshCfg(t, strings.Replace(l2VersionCfg, "%s", `"model_version":{"header":"x-v"},`, 1))
	v1 := hdr("content-type", "application/json", "x-v", "v1")
	v2 := hdr("content-type", "application/json", "x-v", "v2")

	// v1 answers "hello": stored in L1 and written to L2.
	if cs, _ := m.askBody(0, "hello", v1, chatResponse("answer of v1, before the rollout")); !strings.Contains(cs, "fwd=miss") {
		t.Fatalf("first: %q", cs)
	}
	// The rollout: v2 answers another request; the model switches.
	m.askBody(0, "other", v2, chatResponse("x"))
	// A lagging replica answers with v1 again: a switch back, which renews
	// the generation (README).
	m.askBody(0, "third", v1, chatResponse("y"))

	// L1 alone: the pre-rollout v1 entry is unreachable (new generation).
	// L2 must not bring it back either.
	up := m.upstream
	cs, body := m.askBody(0, "hello", v1, chatResponse("fresh"))
	if bytes.Contains(body, []byte("before the rollout")) || m.upstream != up+1 {
		t.Fatalf("the switch back to v1 brought v1's pre-rollout entry back from L2: %q %s", cs, body)
	}
}
