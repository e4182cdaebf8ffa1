package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/modelcache/modelcache/internal/envoyrun"
	"github.com/modelcache/modelcache/internal/wasmbuild"
)

// The end-to-end tests run the real filter in a real Envoy (≥ 1.39, with
// --concurrency 2 so cross-worker behaviour is real) in front of the model
// simulator. Each test starts its own Envoy with free ports and its own
// --base-id, renders envoy/envoy.yaml (only ports, the wasm path and the
// filter's JSON change) and prints Envoy's log if it fails. Finding,
// rendering, starting and stopping Envoy is internal/envoyrun, shared with
// the benchmark harness.
//
// Envoy is found in $ENVOY_BIN, build/envoy-path, on $PATH, or in the
// project's .venv (make envoy installs it there). Without one the tests skip loudly — unless
// E2E_REQUIRE_ENVOY=1, which make test sets whenever make envoy succeeded.

var envoyBin string

func TestMain(m *testing.M) {
	envoyBin = findEnvoy()
	if envoyBin != "" {
		out, err := exec.Command(envoyBin, "--version").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s --version failed: %v\n%s", envoyBin, err, out)
			os.Exit(1)
		}
		fmt.Printf("e2e: testing against %s (%s)\n", strings.TrimSpace(string(out)), envoyBin)
	} else {
		fmt.Println("e2e: NO ENVOY FOUND — every end-to-end test will be SKIPPED (run make envoy, or set ENVOY_BIN)")
	}
	os.Exit(m.Run())
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func findEnvoy() string { return envoyrun.Find(repoRoot()) }

func requireEnvoy(t *testing.T) {
	t.Helper()
	if envoyBin == "" {
		if os.Getenv("E2E_REQUIRE_ENVOY") == "1" {
			t.Fatal("no Envoy binary, but E2E_REQUIRE_ENVOY=1")
		}
		t.Skip("SKIPPED: no Envoy binary (make envoy, or set ENVOY_BIN)")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := envoyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// envoyOpts configures one Envoy under test.
type envoyOpts struct {
	Config       string // filter JSON; "" keeps the file's
	ConfigFile   string // relative to repo root; default envoy/envoy.yaml
	Concurrency  int    // default 2
	RouteTimeout string // e.g. "1s"; default the file's
	// NoHeaderHold drops allow_on_headers_stop_iteration, as Istio's
	// WasmPlugin does.
	NoHeaderHold bool
	// Wasm is the module to load; default the product module built from
	// this tree (wasmbuild.Filter).
	Wasm string
	// FailurePolicy replaces the file's failure_policy value, e.g.
	// "FAIL_OPEN"; default the file's.
	FailurePolicy string
	// ECDS is the file (relative to repo root) holding the filter as an
	// extension config the ConfigFile discovers by path (Istio's way): the
	// wasm path, filter JSON and failure policy are rendered there, and
	// the ConfigFile is pointed at the rendered copy.
	ECDS string
	// UpstreamH2 makes Envoy speak HTTP/2 (prior knowledge) to the model
	// simulator, which then serves h2c.
	UpstreamH2 bool
	// Ports maps more of the file's port_values (e.g. webdis' 7379, 8001
	// the embeddings cluster) to the ones to use.
	Ports map[int]int
	// Edit, when set, changes the file's text before it is rendered (a
	// test's variant of a shipped config); it fails the test itself when
	// the text is not what it expects.
	Edit func(t *testing.T, cfg string) string
}

type envoyProc struct {
	t       *testing.T
	URL     string // listener base URL
	Admin   string // admin base URL
	Sim     *modelsim.Server
	SimURL  string
	logPath string
	proc    *envoyrun.Proc
}

// startEnvoy starts a simulator and an Envoy in front of it.
func startEnvoy(t *testing.T, o envoyOpts) *envoyProc {
	t.Helper()
	requireEnvoy(t)
	if o.ConfigFile == "" {
		o.ConfigFile = "envoy/envoy.yaml"
	}
	if o.Concurrency == 0 {
		o.Concurrency = 2
	}
	sim := modelsim.New(modelsim.Options{H2C: o.UpstreamH2})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	simPort, _ := strconv.Atoi(simURL[strings.LastIndexByte(simURL, ':')+1:])

	raw, err := os.ReadFile(filepath.Join(repoRoot(), o.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if o.Edit != nil {
		raw = []byte(o.Edit(t, string(raw)))
	}
	if o.Wasm == "" {
		o.Wasm = wasmbuild.Filter(t)
	}
	// Envoy is started again on other ports when one it was to bind was
	// taken between the pick and its bind.
	var e *envoyProc
	for attempt := 1; ; attempt++ {
		listen, admin := pickPorts(t)
		ports := map[int]int{10000: listen, 9901: admin, 8000: simPort}
		for k, v := range o.Ports {
			ports[k] = v
		}
		filter := envoyrun.Render{Wasm: o.Wasm, FilterJSON: o.Config, NoHeaderHold: o.NoHeaderHold, FailurePolicy: o.FailurePolicy}
		main := envoyrun.Render{Ports: ports, RouteTimeout: o.RouteTimeout}
		if o.ECDS == "" {
			main.Wasm, main.FilterJSON, main.NoHeaderHold, main.FailurePolicy = filter.Wasm, filter.FilterJSON, filter.NoHeaderHold, filter.FailurePolicy
		}
		cfg, err := envoyrun.RenderConfig(string(raw), main)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if o.ECDS != "" {
			cfg = renderECDS(t, cfg, o.ECDS, filter, dir)
		}
		if o.UpstreamH2 {
			const at = "    connect_timeout: 2s\n"
			if !strings.Contains(cfg, at) {
				t.Fatal("no cluster connect_timeout to add HTTP/2 after")
			}
			cfg = strings.Replace(cfg, at, at+`    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
`, 1)
		}
		cfgPath := filepath.Join(dir, "envoy.yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		e = &envoyProc{t: t, URL: fmt.Sprintf("http://127.0.0.1:%d", listen), Admin: fmt.Sprintf("http://127.0.0.1:%d", admin),
			Sim: sim, SimURL: simURL, logPath: filepath.Join(dir, "envoy.log")}
		proc, err := envoyrun.Start(envoyrun.Options{Bin: envoyBin, Config: cfgPath, Concurrency: o.Concurrency,
			BaseID: admin, Admin: e.Admin, Log: e.logPath, Dir: repoRoot()})
		if errors.Is(err, envoyrun.ErrPortTaken) && attempt < 3 {
			t.Logf("attempt %d: %v; starting again on other ports", attempt, err)
			continue
		}
		if err != nil {
			if _, statErr := os.Stat(e.logPath); statErr == nil {
				e.dumpLog()
			}
			t.Fatal(err)
		}
		e.proc = proc
		break
	}
	t.Cleanup(func() {
		e.proc.Stop()
		if t.Failed() {
			e.dumpLog()
		}
	})
	return e
}

// pickPorts picks the listener's and the admin's ports of one Envoy start.
var pickPorts = func(t *testing.T) (listen, admin int) {
	return freePort(t), freePort(t)
}

// renderECDS renders the extension config file ecds (the filter as Istio
// sends it) into dir and points cfg's path-based config source at it.
func renderECDS(t *testing.T, cfg, ecds string, r envoyrun.Render, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(), ecds))
	if err != nil {
		t.Fatal(err)
	}
	out, err := envoyrun.RenderConfig(string(raw), r)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.Base(ecds))
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.Count(cfg, "path: "+ecds) != 1 {
		t.Fatalf("%s does not appear once as a config source path", ecds)
	}
	return strings.Replace(cfg, "path: "+ecds, "path: "+path, 1)
}

func (e *envoyProc) dumpLog() {
	b, _ := os.ReadFile(e.logPath)
	if len(b) > 64<<10 {
		b = b[len(b)-64<<10:]
	}
	e.t.Logf("---- envoy log (%s) ----\n%s", e.logPath, b)
}

// Log returns Envoy's log so far.
func (e *envoyProc) Log() string {
	b, _ := os.ReadFile(e.logPath)
	return string(b)
}

// renderConfig rewrites the ports, the wasm path, the route timeout and the
// filter JSON of an Envoy config; everything else is the file as shipped.
func renderConfig(t *testing.T, cfg string, ports map[int]int, wasm, filterJSON, routeTimeout string) string {
	t.Helper()
	out, err := envoyrun.RenderConfig(cfg, envoyrun.Render{Ports: ports, Wasm: wasm, FilterJSON: filterJSON, RouteTimeout: routeTimeout})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Stats reads Envoy's stats as name → value (counters and gauges).
func (e *envoyProc) Stats() map[string]int64 {
	e.t.Helper()
	out, err := envoyrun.Stats(e.Admin)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// Stat reads one stat, waiting briefly for Envoy's stats flush: counters
// defined by wasm are per-worker and merged into the admin view on flush.
func (e *envoyProc) Stat(name string) int64 {
	return e.Stats()[name]
}

// WaitStat polls until stat reaches want (or 10 s pass) and returns it.
func (e *envoyProc) WaitStat(name string, want int64) int64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := e.Stat(name)
		if v == want || time.Now().After(deadline) {
			return v
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// response is what a client saw.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) CacheStatus() string { return r.Header.Get("Cache-Status") }

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}, Timeout: 60 * time.Second}

// do sends a request; headers are name, value pairs.
func do(t *testing.T, method, url, body string, headers ...string) *response {
	t.Helper()
	r, err := tryDo(context.Background(), method, url, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tryDo(ctx context.Context, method, url, body string, headers ...string) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

func expectCS(t *testing.T, r *response, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(r.CacheStatus(), f) {
			t.Fatalf("Cache-Status %q lacks %q (status %d, body %.300s)", r.CacheStatus(), f, r.Status, r.Body)
		}
	}
}

func chat(content string) string {
	return fmt.Sprintf(`{"model":"sim-chat","messages":[{"role":"user","content":%q}]}`, content)
}

// parallel runs f(i) for i in [0,n) on up to width goroutines.
func parallel(n, width int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < width; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
