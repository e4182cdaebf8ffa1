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

// S9B compares the per-item embedding costs of this module and the
// baseline's on S9's batches of 64 (every item new; every item cached),
// rounds alternating between the two modules and Envoy without the
// filter, so that a per-item saving is judged on one machine at one time.
func runS9B(r *run) error {
	if r.s.BaselineWasm == "" {
		r.note("S9B skipped: no baseline module (make bench-compare BASE=<commit>)")
		return nil
	}
	const rounds = 3
	fresh := workload{Path: "/embed/v1/embeddings", BodyFile: "embed-64-new.json", Headers: []string{authHeader}, Unique: true}
	cached := workload{Path: "/embed/v1/embeddings", BodyFile: "embed-64-all.json", Headers: []string{authHeader}}
	perNew, perCached := map[string][]float64{}, map[string][]float64{}
	for i := 0; i < rounds; i++ {
		n, err := r.measure("nofilter", fmt.Sprintf("embed 0 %% cached round %d", i), fresh, 16)
		if err != nil {
			return err
		}
		r.stopSystem("nofilter")
		for _, sys := range []string{"filter", "filter-base"} {
			m, err := r.measure(sys, fmt.Sprintf("embed 0 %% cached round %d", i), fresh, 16)
			if err != nil {
				return err
			}
			a, err := r.measure(sys, fmt.Sprintf("embed 100 %% cached round %d", i), cached, 16)
			if err != nil {
				return err
			}
			perNew[sys] = append(perNew[sys], (m.CPU()-n.CPU())/embBatch)
			perCached[sys] = append(perCached[sys], a.CPU()/embBatch)
			r.stopSystem(sys)
		}
	}
	cur, base := median(perNew["filter"]), median(perNew["filter-base"])
	r.add(row{Scenario: "S9B", Metric: "per new embedding item (batch of 64, none cached): filter's extra proxy CPU, c=16, this module vs baseline",
		Value: fmt.Sprintf("%.2f µs", cur), Baselines: fmt.Sprintf("baseline %.2f µs (%s)", base, r.s.BaselineName),
		Ratio: ratio(cur, base) + " baseline", Target: "≤ 0.33× (issue 17: at a third)", Met: met(cur <= base/3)})
	cur, base = median(perCached["filter"]), median(perCached["filter-base"])
	r.add(row{Scenario: "S9B", Metric: "per cached embedding item (batch of 64, all cached; the whole local answer): proxy CPU, c=16, this module vs baseline",
		Value: fmt.Sprintf("%.2f µs", cur), Baselines: fmt.Sprintf("baseline %.2f µs (%s)", base, r.s.BaselineName), Ratio: ratio(cur, base) + " baseline"})
	r.note("S9B rounds (µs per new item): this module %v, baseline %v; per cached item: this module %v, baseline %v",
		rounded(perNew["filter"]), rounded(perNew["filter-base"]), rounded(perCached["filter"]), rounded(perCached["filter-base"]))
	return nil
}

func rounded(xs []float64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%.1f", x)
	}
	return out
}
