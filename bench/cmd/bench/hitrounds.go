package main

import "fmt"

// runS2R judges the 1 KiB hit's proxy CPU against S1's in paired rounds:
// Envoy's direct_response, the hit and the hit floor (bench/floorfilter
// "hit") measured one after the other at c=16, round after round, and the
// ratio taken within each round (CPU per request under wrk's closed loop,
// as S2 and the target measure it). S2 measures the hit and S1 minutes apart,
// and on a shared virtual machine a point moves by a quarter between runs
// hours apart (BENCHMARKS.md): a ratio of two points taken apart carries
// that drift, a ratio within a round much less of it.
func runS2R(r *run) error {
	rounds := 4
	if r.s.Quick {
		rounds = 2
	}
	wl := hitWorkload("1k")
	systems := []string{"direct", "filter", "floor-hit"}
	cpu := map[string][]float64{}
	var hitRatio, floorRatio []float64
	for i := 0; i < rounds; i++ {
		for _, sys := range systems {
			if sys == "filter" {
				if err := r.primeHit(sys, wl.Path, filterHit); err != nil {
					return err
				}
			}
			before := r.origin.Calls("hit")
			s, err := r.measure(sys, fmt.Sprintf("hit 1k paired round %d", i), wl, 16)
			if err != nil {
				return err
			}
			if n := r.origin.Calls("hit") - before; n > 0 && sys == "filter" {
				r.note("S2R round %d: %d requests reached the origin during the hit run (should be 0)", i, n)
			}
			cpu[sys] = append(cpu[sys], s.CPU())
			// One proxy on CPU0 at a time: an idle one's timers (the
			// filter's tick) must not fall into the next one's point.
			r.stopSystem(sys)
		}
		d := cpu["direct"][i]
		hitRatio = append(hitRatio, cpu["filter"][i]/d)
		floorRatio = append(floorRatio, cpu["floor-hit"][i]/d)
	}
	lo, hi := minMax(hitRatio)
	flo, fhi := minMax(floorRatio)
	r.add(row{Scenario: "S2R", Metric: fmt.Sprintf("1 KiB hit: proxy CPU per request, c=16, over S1 in %d paired rounds", rounds),
		Value:     fmt.Sprintf("%.1f µs; %.2f× S1 (rounds %.2f…%.2f)", median(cpu["filter"]), median(hitRatio), lo, hi),
		Baselines: fmt.Sprintf("S1 %.1f µs; hit floor %.1f µs, %.2f× S1 (rounds %.2f…%.2f)", median(cpu["direct"]), median(cpu["floor-hit"]), median(floorRatio), flo, fhi),
		Ratio:     fmt.Sprintf("%.2f× S1", median(hitRatio)), Target: "≤ 2.4× S1 in every round (60 µs at S1's 25)", Met: met(hi <= 2.4)})
	r.note("S2R rounds (CPU µs/request, c=16): S1 %v, hit %v, hit floor %v", rounded(cpu["direct"]), rounded(cpu["filter"]), rounded(cpu["floor-hit"]))
	return nil
}
