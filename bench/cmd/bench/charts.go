package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Charts are rendered with gnuplot (Debian's gnuplot-nox, pngcairo): each
// chart is a data file and a script beside the PNG, so a chart can be
// re-rendered or restyled without re-running the benchmark.

type chart struct {
	Title string
	File  string // PNG name
}

type chartSpec struct {
	name, title string
	data        string // gnuplot data (first line: column titles)
	script      string // plot commands after the common preamble
}

const preamble = `set terminal pngcairo size 1100,560 font "DejaVu Sans,10" noenhanced
set bmargin 6
set encoding utf8
set grid ytics lc rgb "#dddddd"
set border 3
set tics nomirror
set key outside right top
set style fill solid 0.85 border -1
set boxwidth 0.9
`

func q(s string) string { return `"` + strings.ReplaceAll(s, `"`, `'`) + `"` }

func (r *run) renderCharts(dir string) []chart {
	if _, err := lookPath("gnuplot"); err != nil {
		r.note("charts: gnuplot not found, no charts rendered")
		return nil
	}
	var specs []chartSpec
	for _, f := range []func() *chartSpec{r.chartThroughput, r.chartLatency, r.chartPassThrough, r.chartLag, r.chartRSS, r.chartMicro} {
		if c := f(); c != nil {
			specs = append(specs, *c)
		}
	}
	var out []chart
	for _, c := range specs {
		dat := filepath.Join(dir, c.name+".dat")
		gp := filepath.Join(dir, c.name+".gp")
		png := c.name + ".png"
		script := preamble + fmt.Sprintf("set output %s\nset title %s\n", q(png), q(c.title)) +
			strings.ReplaceAll(c.script, "DATA", q(c.name+".dat"))
		if err := os.WriteFile(dat, []byte(c.data), 0o644); err != nil {
			r.note("chart %s: %v", c.name, err)
			continue
		}
		if err := os.WriteFile(gp, []byte(script), 0o644); err != nil {
			r.note("chart %s: %v", c.name, err)
			continue
		}
		cmd := exec.Command("gnuplot", c.name+".gp")
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			r.note("chart %s: gnuplot: %v %s", c.name, err, oneLine(string(b)))
			continue
		}
		out = append(out, chart{Title: c.title, File: png})
	}
	return out
}

var systemTitles = map[string]string{"direct": "Envoy direct_response (S1)", "filter": "modelcache hit (S2)", "nginx": "nginx proxy_cache", "varnish": "Varnish"}

// histogram renders clustered bars: rows of (label, values…); ymin is the
// lower end of a log scale.
func histogram(cols []string, rows [][]string, ylabel string, logscale bool, ymin ...string) (string, string) {
	var d strings.Builder
	d.WriteString(q("label"))
	for _, c := range cols {
		d.WriteString(" " + q(c))
	}
	d.WriteString("\n")
	for _, rw := range rows {
		d.WriteString(q(rw[0]))
		for _, v := range rw[1:] {
			d.WriteString(" " + v)
		}
		d.WriteString("\n")
	}
	var s strings.Builder
	s.WriteString("set style data histograms\nset style histogram clustered gap 1\nset key autotitle columnhead\n")
	lo := "0"
	if logscale {
		lo = "0.01"
		if len(ymin) > 0 {
			lo = ymin[0]
		}
	}
	fmt.Fprintf(&s, "set ylabel %s\nset yrange [%s:*]\n", q(ylabel), lo)
	if logscale {
		s.WriteString("set logscale y\n")
	}
	s.WriteString("set xtics rotate by -20 left\n")
	s.WriteString("plot ")
	for i := range cols {
		if i > 0 {
			s.WriteString(", ")
		}
		if i == 0 {
			fmt.Fprintf(&s, "DATA using %d:xtic(1)", i+2)
		} else {
			fmt.Fprintf(&s, "'' using %d", i+2)
		}
	}
	s.WriteString("\n")
	return d.String(), s.String()
}

func (r *run) point(sys, label string, conns int) *series {
	return r.memo[fmt.Sprintf("%s|%s|%d", sys, label, conns)]
}

func (r *run) chartThroughput() *chartSpec {
	var rows [][]string
	for _, sys := range []string{"direct", "filter", "nginx", "varnish"} {
		a, b := r.point(sys, "hit 1k", 16), r.point(sys, "hit 16k", 16)
		if a == nil || b == nil {
			continue
		}
		rows = append(rows, []string{systemTitles[sys], fmt.Sprintf("%.0f", a.RPS()), fmt.Sprintf("%.0f", b.RPS())})
	}
	if len(rows) < 2 {
		return nil
	}
	d, s := histogram([]string{"1 KiB", "16 KiB"}, rows, "requests/s (wrk, 16 connections, median)", false)
	return &chartSpec{"throughput", "Hit throughput, 16 connections (S1–S3)", d, s}
}

func (r *run) chartLatency() *chartSpec {
	var rows [][]string
	for _, sys := range []string{"direct", "filter", "nginx", "varnish"} {
		a, b := r.point(sys, "hit 1k", 1), r.point(sys, "hit 16k", 1)
		if a == nil || b == nil {
			continue
		}
		rows = append(rows, []string{systemTitles[sys], fmt.Sprintf("%.0f", a.P50()), fmt.Sprintf("%.0f", a.P99()),
			fmt.Sprintf("%.0f", b.P50()), fmt.Sprintf("%.0f", b.P99())})
	}
	if len(rows) < 2 {
		return nil
	}
	d, s := histogram([]string{"p50 1 KiB", "p99 1 KiB", "p50 16 KiB", "p99 16 KiB"}, rows, "latency, µs (1 connection)", false)
	return &chartSpec{"latency", "Hit latency at 1 connection (S1–S3)", d, s}
}

func (r *run) chartPassThrough() *chartSpec {
	labels := []struct{ key, title string }{{"pass other-route", "route not cached"}, {"pass bypass", "bypass (no-store request)"},
		{"pass uncacheable", "miss, not storable"}, {"pass miss-store", "miss + store"}, {"pass opted-out", "route opted out"}}
	var rows [][]string
	for _, l := range labels {
		f, n := r.point("filter", l.key, 16), r.point("nofilter", l.key, 16)
		if f == nil || n == nil {
			continue
		}
		rows = append(rows, []string{l.title, fmt.Sprintf("%.0f", f.RPS()), fmt.Sprintf("%.0f", n.RPS())})
	}
	if len(rows) == 0 {
		return nil
	}
	d, s := histogram([]string{"Envoy + modelcache", "Envoy, no filter"}, rows, "requests/s (16 connections, median)", false)
	return &chartSpec{"passthrough", "Pass-through throughput vs Envoy without the filter (S4)", d, s}
}

func (r *run) chartLag() *chartSpec {
	var rows [][]string
	names := map[string]string{"filter": "modelcache 1w", "filter-2w": "modelcache 2w", "nginx": "nginx lock", "varnish": "Varnish"}
	for _, d := range originDelays {
		for _, sys := range []string{"filter", "filter-2w", "nginx", "varnish"} {
			l, ok := r.data[fmt.Sprintf("lag|%s|%d", sys, d)].(*lagResult)
			if !ok || len(l.LagsMS) == 0 {
				continue
			}
			clamp := func(v float64) string { return fmt.Sprintf("%.3f", max(v, 0.01)) }
			rows = append(rows, []string{fmt.Sprintf("%s, %d ms", names[sys], d), clamp(l.p(50)), clamp(l.p(99)), clamp(l.LagsMS[len(l.LagsMS)-1])})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	dat, s := histogram([]string{"p50", "p99", "max"}, rows, "follower − leader completion, ms (log)", true)
	return &chartSpec{"coalescing", fmt.Sprintf("Coalescing: follower release lag, %d identical requests, origin 100 / 300 ms (S5/S6)", burstN), dat, s}
}

func (r *run) chartRSS() *chartSpec {
	res, ok := r.data["soak"].(*soakResult)
	if !ok || len(res.Samples) == 0 {
		return nil
	}
	var d strings.Builder
	d.WriteString("t_s rss_mib\n")
	for _, s := range res.Samples {
		fmt.Fprintf(&d, "%.1f %.2f\n", s.T, float64(s.RSS)/(1<<20))
	}
	script := fmt.Sprintf("set xlabel \"seconds\"\nset ylabel \"Envoy VmRSS, MiB\"\nset yrange [0:*]\nset key bottom right\n"+
		"set arrow from %.0f, graph 0 to %.0f, graph 1 nohead dt 2 lc rgb \"#888888\"\n"+
		"plot DATA using 1:2 skip 1 with linespoints pt 7 ps 0.4 lw 2 title \"resident memory (warm-up ends at the dashed line)\"\n",
		parseSeconds(res.Warmup), parseSeconds(res.Warmup))
	return &chartSpec{"soak-rss", fmt.Sprintf("Soak: Envoy resident memory, %d rps over %d keys (S11)", soakRate, soakKeys), d.String(), script}
}

func parseSeconds(d string) float64 {
	var v float64
	if dd, err := parseDuration(d); err == nil {
		v = dd.Seconds()
	}
	return v
}

func (r *run) chartMicro() *chartSpec {
	list, ok := r.data["micro"].([]*microResult)
	if !ok || len(list) == 0 {
		return nil
	}
	var rows [][]string
	for _, m := range list {
		rw := []string{strings.TrimPrefix(m.Name, "Benchmark")}
		for _, rt := range []string{"native", "V8", "wazero"} {
			if v, ok := m.NsOp[rt]; ok {
				rw = append(rw, fmt.Sprintf("%.1f", v))
			} else {
				rw = append(rw, "NaN")
			}
		}
		rows = append(rows, rw)
	}
	d, s := histogram([]string{"native", "V8 (Node.js, TurboFan)", "wazero"}, rows, "ns/op (log scale)", true, "10")
	return &chartSpec{"micro", "cachecore micro-benchmarks: native vs in wasm (S12)", d, s}
}

func parseDuration(s string) (time.Duration, error) { return time.ParseDuration(s) }
