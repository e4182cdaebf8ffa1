package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// The served hit floor claims the work of a hit under modelcache's
// guarantees: it answers a request from its entry only when tenant,
// authority, route and canonical body are the stored request's, the entry
// is fresh and the client allows a cached answer; anything else goes
// upstream. A floor that skipped one of these would be measured as
// cheaper than the work it stands for.
func TestServedHitFloorAnswersOnlyTheRequestItStored(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a wasm module")
	}
	wasm := filepath.Join(t.TempDir(), "floor-hit-served.wasm")
	if err := buildFloor(repoRoot(), "hit-served", wasm, 0); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mod, err := wasmhost.Compile(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	clock := wasmhost.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	upstream := 0
	h, err := wasmhost.New(ctx, mod, wasmhost.Config{
		Workers: 1, Clusters: []string{"origin"}, AllowOnHeadersStopIteration: true, Clock: clock,
		Upstream: func(u *wasmhost.UpstreamRequest) {
			upstream++
			u.Respond(200, [][2]string{{"content-type", "application/json"}}, []byte(`{"from":"upstream"}`))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	const path = "/hit/1k/v1/chat/completions"
	with := func(req wasmhost.Request, name, value string) wasmhost.Request {
		hs := append([][2]string(nil), req.Headers...)
		for i := range hs {
			if hs[i][0] == name {
				hs[i][1] = value
				return wasmhost.Request{Headers: hs, Body: req.Body}
			}
		}
		return wasmhost.Request{Headers: append(hs, [2]string{name, value}), Body: req.Body}
	}
	send := func(what string, req wasmhost.Request) (hit bool) {
		t.Helper()
		before := upstream
		resp, err := h.Exchange(0, req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		cs := cacheStatusOf(resp)
		hit = strings.HasPrefix(cs, "floor; hit; ttl=")
		if hit == (upstream > before) {
			t.Fatalf("%s: Cache-Status %q, yet %d upstream calls", what, cs, upstream-before)
		}
		return hit
	}
	stored := with(hcRequest(path, "floor-served"), ":authority", "Models.Local")
	if send("first request", stored) {
		t.Fatal("the first request of a body was answered before anything was stored")
	}
	if !send("the stored request again", stored) {
		t.Fatal("the stored request was not answered from its entry")
	}
	if !send("the stored request, its authority's case changed", with(stored, ":authority", "models.local")) {
		t.Fatal("an authority differing in case only missed")
	}
	for _, c := range []struct {
		what string
		req  wasmhost.Request
	}{
		{"another tenant", with(stored, "authorization", "Bearer other-tenant")},
		{"no credential", with(stored, "authorization", " ")},
		{"another authority", with(stored, ":authority", "other.local")},
		{"another route", with(stored, ":path", "/pass/v1/chat/completions")},
		{"no route", with(stored, ":path", "/other/v1/chat/completions")},
		{"no-cache", with(stored, "cache-control", "no-cache")},
		{"another body", hcRequest(path, "floor-served-other")},
	} {
		if send(c.what, c.req) {
			t.Errorf("%s: answered from the stored request's entry", c.what)
		}
	}
	clock.Advance(25 * time.Hour)
	if send("the stored request, its entry stale", stored) {
		t.Error("a stale entry was served")
	}
}
