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

// S4B compares this module's S4 rows that are judged against a floor (the
// bypass and the uncacheable miss) with the baseline module's, at S4's
// fixed rate: the two modules, the row's floor and Envoy without the
// filter in interleaved rounds (fixedrate.go), so that a change of a few
// µs is read round by round in one run, not across runs whose rounds
// spread by more than that.
func runS4B(r *run) error {
	if r.s.BaselineWasm == "" {
		r.note("S4B skipped: no baseline module (make bench-compare BASE=<commit>)")
		return nil
	}
	variants, err := s4Rows(r.s.S4Rows)
	if err != nil {
		return err
	}
	var rows []s4Variant
	var cells []frCell
	for _, v := range variants {
		if !v.judged {
			continue
		}
		rows = append(rows, v)
		for _, sys := range []string{"nofilter", "filter", "filter-base"} {
			cells = append(cells, frCell{sys, v.label, v.wl})
		}
		for _, f := range s4BFloors(v) {
			cells = append(cells, frCell{f.sys, v.label, v.wl})
		}
	}
	if r.s.S4BHistory {
		// The load S4 gives modelcache's Envoy and Envoy without the
		// filter, and only those, before its fixed-rate rounds.
		r.logf("  S4's closed-loop points first, on filter and nofilter only (BENCH_S4B_HISTORY)")
		if err := r.s4ClosedLoop(s4Variants); err != nil {
			return err
		}
	}
	if err := r.primeStored(cells); err != nil {
		return err
	}
	fr, at, err := r.s4FixedRate(cells, true)
	if err != nil {
		return err
	}
	pair := frPair{"S4B", "this module", "baseline"}
	for _, v := range rows {
		f, b := fr["filter|"+v.label], fr["filter-base|"+v.label]
		bd := diffs(f, b)
		lo, hi := minMax(bd)
		r.add(row{Scenario: "S4B", Metric: v.metric + ": proxy CPU per request, this module vs baseline " + at,
			Value:     fmt.Sprintf("%s, %+.1f µs vs baseline (rounds %+.1f…%+.1f)", f.Text(), median(bd), lo, hi),
			Baselines: fmt.Sprintf("baseline %s (%s); no filter %s", b.Text(), r.s.BaselineName, fr["nofilter|"+v.label].Text()),
			Ratio:     ratio(f.Med(), b.Med()) + " baseline"})
		for i, flr := range s4BFloors(v) {
			fl := fr[flr.sys+"|"+v.label]
			fd, bfd := diffs(f, fl), diffs(b, fl)
			flo, fhi := minMax(fd)
			blo, bhi := minMax(bfd)
			rw := row{Scenario: "S4B", Metric: v.metric + ": above its floor (" + flr.what + "), this module and baseline, proxy CPU " + at,
				Value:     fmt.Sprintf("%+.1f µs (rounds %+.1f…%+.1f)", median(fd), flo, fhi),
				Baselines: fmt.Sprintf("baseline %+.1f µs (rounds %+.1f…%+.1f); floor %s", median(bfd), blo, bhi, fl.Text())}
			if i == 0 { // the row's floor; the others are informational, as in S4
				rw.Target = fmt.Sprintf("≤ +%.0f µs", s4MaxAbove)
				rw.Met, rw.Ratio = s4Verdict(median(fd), fhi)
			}
			r.add(rw)
		}
		r.addJITDistance(pair, v.metric+": this module vs baseline", at, f, b)
		r.addOutsideJITDistance(pair, v.metric+": this module vs baseline", at, f, b)
	}
	return nil
}

// s4BFloors are the floors S4B sets beside a judged row: the row's floor
// (judged) first, then the further ones that claim to do some of its work
// (not the bare ones).
func s4BFloors(v s4Variant) []s4Floor {
	out := []s4Floor{v.floor}
	for _, f := range v.extra {
		if !f.bare {
			out = append(out, f)
		}
	}
	return out
}

func rounded(xs []float64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%.1f", x)
	}
	return out
}
