package wasmhost

import (
	"slices"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	h := newHost(t, Config{Workers: 2})
	r := mustExchange(t, h, 0, Request{Headers: req("metrics")})
	// Envoy metric ids carry the type in the low bits, 4 apart.
	if ids := header(r.Headers, "x-ids"); ids != "4,5,6" {
		t.Fatalf("ids %s, want 4,5,6", ids)
	}
	want := []Status{
		StatusOK,          // increment counter +1
		StatusBadArgument, // increment counter by 0
		StatusOK,          // record on a counter adds
		StatusOK,          // record on a gauge sets
		StatusOK,          // increment a gauge by -2
		StatusOK,          // record a histogram value
		StatusBadArgument, // increment a histogram
		StatusOK,          // get counter
		StatusOK,          // get gauge
		StatusBadArgument, // get histogram
		StatusNotFound,    // unknown counter id
	}
	var got []Status
	for _, s := range strings.Split(header(r.Headers, "x-statuses"), ",") {
		got = append(got, Status(atoi(s)))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("statuses\n got %v\nwant %v", got, want)
	}
	if header(r.Headers, "x-counter") != "11" || header(r.Headers, "x-gauge") != "3" {
		t.Fatalf("read back counter %s gauge %s", header(r.Headers, "x-counter"), header(r.Headers, "x-gauge"))
	}
	// Another VM defines the same names: one process-wide stat each.
	mustExchange(t, h, 1, Request{Headers: req("metrics")})
	if c, ok := h.Counter("requests"); !ok || c != 22 {
		t.Fatalf("Counter = %d %v, want 22", c, ok)
	}
	if g, ok := h.Gauge("inflight"); !ok || g != 3 {
		t.Fatalf("Gauge = %d %v, want 3 (set to 5, -2, on each VM)", g, ok)
	}
	if hv := h.Histogram("sizes"); !slices.Equal(hv, []uint64{42, 42}) {
		t.Fatalf("Histogram = %v", hv)
	}
	if _, ok := h.Counter("inflight"); ok {
		t.Fatal("a gauge is not a counter")
	}
}
