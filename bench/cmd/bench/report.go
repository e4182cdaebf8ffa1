package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// envInfo is the machine and the versions, recorded with every run.
type envInfo struct {
	CPU      string            `json:"cpu"`
	NCPU     int               `json:"ncpu"`
	Kernel   string            `json:"kernel"`
	Versions map[string]string `json:"versions"`
	WasmSize int64             `json:"wasm_bytes"`
	WasmSHA  string            `json:"wasm_sha256"`
	ConfSHA  string            `json:"config_sha256"`
	Commit   string            `json:"commit"`
	Date     string            `json:"date"`
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

func cmdOut(name string, args ...string) string {
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(b) == 0 {
		return "not found"
	}
	return firstLine(b)
}

func sha(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])[:12]
}

func collectEnv(r *run) envInfo {
	e := envInfo{NCPU: runtime.NumCPU(), Versions: map[string]string{}, Date: time.Now().Format(time.RFC3339)}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = strings.TrimSpace(string(b))
	}
	if n, err := os.ReadFile("/sys/fs/cgroup/cpu.max"); err == nil {
		e.Versions["cgroup cpu.max"] = strings.TrimSpace(string(n))
	}
	e.NCPU = cpuCount()
	v := cmdOut(r.s.Envoy, "--version") // "… version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"
	if i := strings.Index(v, "version: "); i >= 0 {
		v = v[i+len("version: "):]
	}
	if parts := strings.Split(v, "/"); len(parts) >= 2 {
		v = parts[1]
	}
	e.Versions["Envoy"] = v
	e.Versions["nginx"] = strings.TrimPrefix(cmdOut("nginx", "-v"), "nginx version: nginx/")
	e.Versions["Varnish"] = versionRe.FindString(cmdOut("varnishd", "-V"))
	e.Versions["wrk"] = versionRe.FindString(cmdOut("wrk", "-v"))
	e.Versions["Go"] = runtime.Version()
	e.Versions["Node.js"] = cmdOut("node", "--version")
	e.Versions["gnuplot"] = cmdOut("gnuplot", "--version")
	if st, err := os.Stat(r.s.Wasm); err == nil {
		e.WasmSize = st.Size()
	}
	e.WasmSHA = sha(r.s.Wasm)
	e.ConfSHA = sha(filepath.Join(r.s.Root, "envoy", "bench", "cache.yaml"))
	e.Commit = cmdOut("git", "-C", r.s.Root, "rev-parse", "--short", "HEAD")
	if out, _ := exec.Command("git", "-C", r.s.Root, "status", "--porcelain", "--untracked-files=no").Output(); len(bytes.TrimSpace(out)) > 0 {
		e.Commit += " (with uncommitted changes)"
	}
	return e
}

var versionRe = regexp.MustCompile(`\d+\.\d+(\.\d+)?`)

func cpuCount() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "processor") {
			n++
		}
	}
	return n
}

func (e envInfo) lines() []string {
	return []string{
		fmt.Sprintf("Machine: %s, %d CPUs, Linux %s (all traffic on loopback)", e.CPU, e.NCPU, e.Kernel),
		fmt.Sprintf("Envoy %s (V8), nginx %s, Varnish %s, wrk %s, Go %s, Node.js %s",
			e.Versions["Envoy"], e.Versions["nginx"], e.Versions["Varnish"], e.Versions["wrk"], e.Versions["Go"], e.Versions["Node.js"]),
		fmt.Sprintf("modelcache.wasm %.1f MiB (sha256 %s), envoy/bench/cache.yaml sha256 %s, commit %s",
			float64(e.WasmSize)/(1<<20), e.WasmSHA, e.ConfSHA, e.Commit),
	}
}

// ---- the report ----

func (r *run) official() bool { return !r.s.Quick && r.s.Only == nil }

func (r *run) report() error {
	out := r.s.OutDir
	if r.s.Only != nil && out == filepath.Join(r.s.Root, "bench", "results") {
		out = filepath.Join(r.s.Root, "build", "bench-partial")
	}
	dated := filepath.Join(out, r.s.Date)
	if err := os.MkdirAll(dated, 0o755); err != nil {
		return err
	}
	table := r.textTable()
	fmt.Println()
	fmt.Printf("modelcache benchmarks, %s — %s\n", r.s.Date, strings.Join(r.env.lines(), "; "))
	fmt.Println(table)
	for _, n := range r.notes {
		fmt.Println("note: " + n)
	}

	r.charts = r.renderCharts(dated)
	r.data["env"] = r.env
	r.data["rows"] = r.rows
	r.data["notes"] = r.notes
	r.data["settings"] = map[string]any{"warmup": r.s.Warmup.String(), "duration": r.s.Duration.String(), "reps": r.s.Reps,
		"soak": r.s.Soak.String(), "quick": r.s.Quick, "elapsed": time.Since(r.started).Round(time.Second).String()}
	raw, err := json.MarshalIndent(r.data, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dated, "results.json"), raw, 0o644); err != nil {
		return err
	}
	md := r.markdown(r.s.Date + "/")
	mdPath := filepath.Join(out, r.s.Date+".md")
	if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	// Stable names for the README's links: latest/ holds the last run's charts.
	latest := filepath.Join(out, "latest")
	os.RemoveAll(latest)
	if err := os.MkdirAll(latest, 0o755); err != nil {
		return err
	}
	for _, c := range r.charts {
		if b, err := os.ReadFile(filepath.Join(dated, c.File)); err == nil {
			os.WriteFile(filepath.Join(latest, c.File), b, 0o644)
		}
	}
	fmt.Printf("\nresults: %s (and latest.md), charts and raw data in %s\n", mdPath, dated)
	if r.official() {
		if err := r.updateBenchmarksMD(); err != nil {
			return err
		}
	}
	fmt.Printf("bench: finished in %s\n", time.Since(r.started).Round(time.Second))
	return nil
}

func (r *run) textTable() string {
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tmetric\tmodelcache\tbaseline(s), same run\tratio\ttarget\tmet?")
	fmt.Fprintln(w, "--------\t------\t----------\t---------------------\t-----\t------\t----")
	for _, rw := range r.rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rw.Scenario, rw.Metric, dash(rw.Value), dash(rw.Baselines), dash(rw.Ratio), dash(rw.Target), rw.Met)
	}
	w.Flush()
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func mdCell(s string) string { return strings.ReplaceAll(dash(s), "|", "\\|") }

// markdownTable is the results table in Markdown.
func (r *run) markdownTable() string {
	var b strings.Builder
	b.WriteString("| scenario | metric | modelcache | baseline(s), same run | ratio | target | met? |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, rw := range r.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", rw.Scenario, mdCell(rw.Metric), mdCell(rw.Value),
			mdCell(rw.Baselines), mdCell(rw.Ratio), mdCell(rw.Target), rw.Met)
	}
	return b.String()
}

func (r *run) markdown(chartPrefix string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# modelcache benchmarks — %s\n\n", r.s.Date)
	fmt.Fprintf(&b, "Generated by `make bench` (bench/cmd/bench; method in [bench/README.md](../README.md), discussion in [BENCHMARKS.md](../../BENCHMARKS.md)).\n\n")
	for _, l := range r.env.lines() {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	fmt.Fprintf(&b, "- Proxy under test pinned to CPU %s (`taskset`), Envoy `--concurrency 1` (S6: 2 workers on CPUs 0–1); wrk, the origin and the runner on CPU 1. ", r.s.ProxyCPUs)
	fmt.Fprintf(&b, "Each point: %s warm-up, then %d × %s; medians with the range in parentheses. Soak: %s.\n\n", r.s.Warmup, r.s.Reps, r.s.Duration, r.s.Soak)
	b.WriteString("## Results\n\n")
	b.WriteString(r.markdownTable())
	if len(r.notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if len(r.charts) > 0 {
		b.WriteString("\n## Charts\n\n")
		for _, c := range r.charts {
			fmt.Fprintf(&b, "![%s](%s%s)\n\n", c.Title, chartPrefix, c.File)
		}
	}
	fmt.Fprintf(&b, "Raw data: [%sresults.json](%sresults.json)\n", chartPrefix, chartPrefix)
	return b.String()
}

const (
	benchBegin = "<!-- bench:results:begin (generated by make bench; edits here are overwritten) -->"
	benchEnd   = "<!-- bench:results:end -->"
)

// updateBenchmarksMD replaces the generated section of BENCHMARKS.md with
// this run's machine, table and charts; the prose around it is kept.
func (r *run) updateBenchmarksMD() error {
	path := filepath.Join(r.s.Root, "BENCHMARKS.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Latest run: **%s** ([bench/results/%s.md](bench/results/%s.md)).\n\n", r.s.Date, r.s.Date, r.s.Date)
	for _, l := range r.env.lines() {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	fmt.Fprintf(&b, "- Each point: %s warm-up, then %d × %s, medians (range); soak %s.\n\n", r.s.Warmup, r.s.Reps, r.s.Duration, r.s.Soak)
	b.WriteString(r.markdownTable())
	if len(r.notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	b.WriteString("\n")
	for _, c := range r.charts {
		fmt.Fprintf(&b, "![%s](bench/results/%s/%s)\n\n", c.Title, r.s.Date, c.File)
	}
	doc, ok := replaceSection(string(raw), b.String())
	if !ok {
		fmt.Println("note: BENCHMARKS.md has no generated section markers; not updated")
		return nil
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// replaceSection puts body between the generated-section markers of doc,
// keeping the markers and everything outside them.
func replaceSection(doc, body string) (string, bool) {
	i, j := strings.Index(doc, benchBegin), strings.Index(doc, benchEnd)
	if i < 0 || j < i {
		return doc, false
	}
	return doc[:i] + benchBegin + "\n\n" + body + doc[j:], true
}
