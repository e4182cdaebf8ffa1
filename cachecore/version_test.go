package cachecore

import (
	"strings"
	"testing"
)

// TestVersionComparedWhole (issue 13, item 6): two versions sharing their
// first 64 bytes are different versions; after the second is observed, the
// first one's entries are not served.
func TestVersionComparedWhole(t *testing.T) {
	env := newEnv(t, testConfig)
	prefix := strings.Repeat("build-2025-06-01-", 5) // 85 bytes
	v1, v2 := prefix+"sha=aaaa", prefix+"sha=bbbb"

	old := chatRequest("old question")
	req, _ := env.lookup("versioned", alice, old)
	env.fill(req, append(hdr("x-model-version", v1), jsonCT...), chatResponse("old answer"), 10)
	if _, d := env.lookup("versioned", alice, old); d != Serve {
		t.Fatal("entry not served before the upgrade")
	}

	req, _ = env.lookup("versioned", alice, chatRequest("new question"))
	res := env.fill(req, append(hdr("x-model-version", v2), jsonCT...), chatResponse("new answer"), 10)
	if !res.VersionChanged {
		t.Error("a version differing after byte 64 is not a change")
	}
	if _, d := env.lookup("versioned", alice, old); d != Forward {
		t.Fatal("entry of the old version served after the upgrade was observed")
	}
}

// FuzzDecodeModels: a model-table slot is shared data any VM may have
// written (or an older layout): decoding never panics, never yields more
// than a slot's records, and what decodes re-encodes to the same bytes.
func FuzzDecodeModels(f *testing.F) {
	f.Add(encodeModels([]modelRecord{{id: 1, gen: 2, until: 3, version: versionID("v1")}}))
	f.Add([]byte("MN\x01"))
	f.Add([]byte("MV\x01\x11"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		recs := decodeModels(raw)
		if len(recs) > modelsPerSlot {
			t.Fatalf("%d records", len(recs))
		}
		if recs != nil && string(encodeModels(recs)) != string(raw) {
			t.Fatalf("round trip changed %q", raw)
		}
	})
}
