package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Table tests of the request and response events of one Flight: what the
// host is told to do and the Cache-Status it writes.

const flightConfig = `{"max_request_bytes":100,"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
  "ttl":"1h","stale_if_error":"1h","coalesce":{"enabled":true}}]}`

func flightFor(t *testing.T, env *testEnv, headers [][2]string) *Flight {
	t.Helper()
	req := env.cache.Begin(env.route("chat"), "POST", "/v1/chat/completions", headers)
	return env.cache.NewFlight(req, 1, 1)
}

func actionKinds(acts []Action) string {
	var out []string
	for _, a := range acts {
		switch a.Kind {
		case ActWait:
			out = append(out, "wait")
		case ActServeEntry:
			out = append(out, "serve")
		case ActServeLocal:
			out = append(out, "local-"+a.CacheStatus.String())
		case ActForward:
			out = append(out, "forward")
		case ActCount:
			out = append(out, EventNames[a.Event])
		case ActBypass:
			out = append(out, "bypass-"+a.Reason.String())
		case ActRefused:
			out = append(out, "refused-"+a.Reason.String())
		case ActStored:
			out = append(out, "stored")
		case ActInternal:
			out = append(out, "internal")
		default:
			out = append(out, "other")
		}
	}
	return strings.Join(out, " ")
}

func TestFlightRequestEvents(t *testing.T) {
	small := chatRequest("q")
	withLen := func(h [][2]string, n int) [][2]string {
		return append(append([][2]string{}, h...), [2]string{"content-length", itoa(int64(n))})
	}
	t.Run("announced body over max_request_bytes: bypass at the headers", func(t *testing.T) {
		env := newEnv(t, flightConfig)
		f := flightFor(t, env, alice)
		step, acts := f.RequestHeaders(withLen(alice, 101), false, true)
		if step != ReqPass || actionKinds(acts) != "bypass-body_too_large" {
			t.Fatalf("%d %q", step, actionKinds(acts))
		}
		if !strings.Contains(string(f.CacheStatusHeader(nil)), "fwd=bypass") {
			t.Fatal(string(f.CacheStatusHeader(nil)))
		}
	})
	t.Run("headers cannot be held: bypass", func(t *testing.T) {
		env := newEnv(t, flightConfig)
		f := flightFor(t, env, alice)
		if step, acts := f.RequestHeaders(withLen(alice, 10), false, false); step != ReqPass || actionKinds(acts) != "bypass-hold_unsupported" {
			t.Fatalf("%d %q", step, actionKinds(acts))
		}
	})
	t.Run("unsized body outgrows the limit while copied", func(t *testing.T) {
		env := newEnv(t, flightConfig)
		f := flightFor(t, env, alice)
		if step, _ := f.RequestHeaders(alice, false, true); step != ReqHoldCopy {
			t.Fatal(step)
		}
		var h Held
		if ok, _ := f.RequestChunk(&h, make([]byte, 60)); !ok {
			t.Fatal("first chunk refused")
		}
		ok, acts := f.RequestChunk(&h, make([]byte, 41))
		if ok || actionKinds(acts) != "bypass-body_too_large" || h.Take() != nil {
			t.Fatalf("%v %q", ok, actionKinds(acts))
		}
	})
	t.Run("only-if-cached miss: 504, never upstream", func(t *testing.T) {
		env := newEnv(t, flightConfig)
		h := append(hdr("cache-control", "only-if-cached"), alice...)
		f := flightFor(t, env, h)
		if step, _ := f.RequestHeaders(withLen(h, len(small)), false, true); step != ReqHoldSized {
			t.Fatal(step)
		}
		acts := f.RequestBody([]byte(small), false)
		if actionKinds(acts) != "local-unavailable" || acts[0].Status != 504 {
			t.Fatalf("%q", actionKinds(acts))
		}
	})
	t.Run("miss leads, response stored with its ttl, then a hit", func(t *testing.T) {
		env := newEnv(t, flightConfig)
		f := flightFor(t, env, alice)
		f.RequestHeaders(withLen(alice, len(small)), false, true)
		if got := actionKinds(f.RequestBody([]byte(small), false)); got != "coalesce.leaders forward" {
			t.Fatal(got)
		}
		if step, _ := f.ResponseHeaders(200, jsonCT, OriginUpstream, false); step != RespCopy {
			t.Fatalf("no content-length: %d", step)
		}
		step, acts := f.ResponseHeaders(200, withLen(jsonCT, 100), OriginUpstream, false)
		if step != RespHold || len(acts) != 0 {
			t.Fatalf("%d %q", step, actionKinds(acts))
		}
		env.clock.Advance(1500 * time.Millisecond)
		done, acts := f.Complete(jsonCT, []byte(chatResponse("a")), 1500, alice)
		if done != Completed || actionKinds(acts) != "stored" || f.Leading() {
			t.Fatalf("%d %q", done, actionKinds(acts))
		}
		if got := string(f.CacheStatusHeader(nil)); got != "modelcache; fwd=miss; fwd-status=200; stored; ttl=3600" {
			t.Fatal(got)
		}
		g := flightFor(t, env, alice)
		g.RequestHeaders(withLen(alice, len(small)), false, true)
		if got := actionKinds(g.RequestBody([]byte(small), false)); got != "serve" || g.Request().Entry.ComputeMs != 1500 {
			t.Fatal(got)
		}
	})
	t.Run("upstream fails with a stale entry within stale_if_error", func(t *testing.T) {
		env := newEnv(t, flightConfig)
		env.fill(env.request("chat", alice, small), jsonCT, chatResponse("old"), 10)
		env.clock.Advance(90 * time.Minute)
		f := flightFor(t, env, alice)
		f.RequestHeaders(withLen(alice, len(small)), false, true)
		if got := actionKinds(f.RequestBody([]byte(small), false)); got != "coalesce.leaders forward" {
			t.Fatal(got)
		}
		step, acts := f.ResponseHeaders(503, jsonCT, OriginUpstream, false)
		if step != RespServed || actionKinds(acts) != "refused-status coalesce.leader_failures serve" || f.Request().Status != StatusStaleIfError {
			t.Fatalf("%d %q %s", step, actionKinds(acts), f.Request().Status)
		}
	})
	t.Run("no-store: passes with the reason, lead ends uncacheable", func(t *testing.T) {
		env := newEnv(t, flightConfig)
		f := flightFor(t, env, alice)
		f.RequestHeaders(withLen(alice, len(small)), false, true)
		f.RequestBody([]byte(small), false)
		step, acts := f.ResponseHeaders(200, append(hdr("cache-control", "no-store"), jsonCT...), OriginUpstream, false)
		if step != RespPass || actionKinds(acts) != "refused-no_store coalesce.leader_failures" {
			t.Fatalf("%d %q", step, actionKinds(acts))
		}
		if got := string(f.CacheStatusHeader(nil)); !strings.Contains(got, "fwd-status=200") || !strings.Contains(got, "detail=") {
			t.Fatal(got)
		}
	})
	t.Run("a stream is recorded and judged at its end", func(t *testing.T) {
		env := newEnv(t, flightConfig)
		f := flightFor(t, env, alice)
		f.RequestHeaders(withLen(alice, len(small)), false, true)
		f.RequestBody([]byte(small), false)
		step, _ := f.ResponseHeaders(200, hdr("content-type", "text/event-stream"), OriginUpstream, false)
		if step != RespStream {
			t.Fatal(step)
		}
		if got := actionKinds(f.CompleteStream(hdr("content-type", "text/event-stream"), nil, true, 5)); got != "refused-too_large coalesce.leader_failures" {
			t.Fatal(got)
		}
	})
}
