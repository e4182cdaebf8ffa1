package main

import "fmt"

// SL: the cost of a late decision (README, Istio). Without
// allow_on_headers_stop_iteration the request headers go upstream before
// the body is decided on, so every hit opens an upstream request that
// Envoy resets after the local answer; the same hits with held headers
// open none.
func runSL(r *run) error {
	wl := hitWorkload("1k")
	out := map[string][2]*series{}
	for _, sys := range []string{"filter-late", "filter"} {
		if err := r.primeHit(sys, wl.Path, filterHit); err != nil {
			return err
		}
		before := r.origin.Calls("hit")
		c1, err := r.measure(sys, "hit 1k", wl, 1)
		if err != nil {
			return err
		}
		c16, err := r.measure(sys, "hit 1k", wl, 16)
		if err != nil {
			return err
		}
		r.note("SL %s: %d requests reached the origin during the hit runs (late: opened for the headers, then reset)",
			sys, r.origin.Calls("hit")-before)
		out[sys] = [2]*series{c1, c16}
		r.stopSystem(sys)
	}
	held, late := out["filter"], out["filter-late"]
	r.add(row{Scenario: "SL", Metric: "1 KiB hit decided late: p50 c=1",
		Value: late[0].P50Text(), Baselines: "held " + held[0].P50Text(),
		Ratio: fmt.Sprintf("+%.0f µs", late[0].P50()-held[0].P50())})
	r.add(row{Scenario: "SL", Metric: "1 KiB hit decided late: proxy CPU per request, c=16",
		Value: fmt.Sprintf("%.1f µs", late[1].CPU()), Baselines: fmt.Sprintf("held %.1f µs", held[1].CPU()),
		Ratio: ratio(late[1].CPU(), held[1].CPU()) + " held"})
	r.add(row{Scenario: "SL", Metric: "1 KiB hit decided late: throughput c=16",
		Value: late[1].RPSText(), Baselines: "held " + held[1].RPSText(), Ratio: ratio(late[1].RPS(), held[1].RPS()) + " held"})
	return nil
}
