package cachecore

import (
	"strings"
	"testing"
)

// README, model_version: "a new version makes older entries unreachable for
// good ... a switch also renews the model's generation, and with an L2 its
// mesh-wide one too" — the older entries, not the answer that switched: on
// an L1-only cache the answer reporting the new version is stored under the
// new generation and the next identical request is a hit (one request per
// key upstream). With an L2, l2VersionSwitched's INCR, once answered, moves
// L1's generation once more (purgeModel from 0) and so throws away the very
// answer that switched, stored a moment before, in both tiers: the next
// identical request goes upstream again.
func TestL2VersionSwitchKeepsTheSwitchingAnswerWithL2(t *testing.T) {
	m := newMeshCfg(t, strings.Replace(l2VersionCfg, "%s", `"model_version":{"header":"x-v"},`, 1))
	v1 := hdr("content-type", "application/json", "x-v", "v1")
	v2 := hdr("content-type", "application/json", "x-v", "v2")
	m.askBody(0, "hello", v1, chatResponse("answer of v1"))
	if cs, _ := m.askBody(0, "other", v2, chatResponse("answer of v2")); !strings.Contains(cs, "stored") {
		t.Fatalf("switching answer: %q", cs)
	}
	up := m.upstream
	cs, body := m.askBody(0, "other", v2, chatResponse("asked again"))
	if m.upstream != up || !strings.Contains(string(body), "answer of v2") {
		t.Fatalf("the answer that switched the version was stored, then lost: the same request went upstream again: %q %s", cs, body)
	}
}

// The same on an L1-only cache: the switching answer is a hit (baseline).
func TestL2VersionSwitchKeepsTheSwitchingAnswerL1Only(t *testing.T) {
	cfg := strings.Replace(strings.Replace(l2VersionCfg, `"l2":{"cluster":"webdis"},`, "", 1), "%s", `"model_version":{"header":"x-v"},`, 1)
	m := newMeshCfg(t, cfg)
	v1 := hdr("content-type", "application/json", "x-v", "v1")
	v2 := hdr("content-type", "application/json", "x-v", "v2")
	m.askBody(0, "hello", v1, chatResponse("answer of v1"))
	m.askBody(0, "other", v2, chatResponse("answer of v2"))
	up := m.upstream
	cs, body := m.askBody(0, "other", v2, chatResponse("asked again"))
	if m.upstream != up || !strings.Contains(string(body), "answer of v2") {
		t.Fatalf("L1 only: %q %s", cs, body)
	}
}
