package main

import "fmt"

// S2B compares this module's 1 KiB hit with a baseline module's (another
// commit, built by bench/baseline.sh) side by side in one run: rounds
// alternate between the two, each proxy alone on the proxy CPU, so that
// machine drift between runs on different days cannot pass for a change.

func runS2B(r *run) error {
	if r.s.BaselineWasm == "" {
		r.note("S2B skipped: no baseline module (make bench-compare BASE=<commit>)")
		return nil
	}
	const rounds = 3
	cpu := map[string][]float64{}
	p50 := map[string][]float64{}
	for i := 0; i < rounds; i++ {
		for _, sys := range []string{"filter", "filter-base"} {
			if err := r.primeHit(sys, hitWorkload("1k").Path, filterHit); err != nil {
				return err
			}
			s, err := r.measure(sys, fmt.Sprintf("hit 1k round %d", i), hitWorkload("1k"), 16)
			if err != nil {
				return err
			}
			c1, err := r.measure(sys, fmt.Sprintf("hit 1k round %d", i), hitWorkload("1k"), 1)
			if err != nil {
				return err
			}
			cpu[sys] = append(cpu[sys], s.CPU())
			p50[sys] = append(p50[sys], c1.P50())
			r.stopSystem(sys)
		}
	}
	cur, base := median(cpu["filter"]), median(cpu["filter-base"])
	r.add(row{Scenario: "S2B", Metric: "1 KiB hit: proxy CPU per request, c=16, this module vs baseline",
		Value: fmt.Sprintf("%.1f µs", cur), Baselines: fmt.Sprintf("baseline %.1f µs (%s)", base, r.s.BaselineName),
		Ratio: ratio(cur, base) + " baseline", Target: "≤ 1.05× baseline", Met: met(cur <= 1.05*base)})
	r.add(row{Scenario: "S2B", Metric: "1 KiB hit: p50 c=1, this module vs baseline",
		Value: fmt.Sprintf("%.0f µs", median(p50["filter"])), Baselines: fmt.Sprintf("baseline %.0f µs", median(p50["filter-base"]))})
	r.note("S2B rounds (CPU µs/request, c=16): this module %v, baseline %v", rounded(cpu["filter"]), rounded(cpu["filter-base"]))
	return nil
}

func rounded(xs []float64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%.1f", x)
	}
	return out
}
