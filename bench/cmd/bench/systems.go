package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/modelcache/modelcache/internal/envoyrun"
	"github.com/modelcache/modelcache/internal/wasmhint"
)

// A system is one proxy under test, started by this run on free loopback
// ports and pinned with taskset: Envoy with a config from envoy/bench/,
// nginx or Varnish with a config from bench/.
type system struct {
	name  string
	kind  string // envoy, nginx, varnish
	URL   string // http://127.0.0.1:port
	Admin string // Envoy admin URL
	cmd   *exec.Cmd
	log   string
	done  <-chan struct{}
	envoy *envoyrun.Proc // for kind envoy
}

// systemDefs are the proxies scenarios can ask for by name.
var systemDefs = map[string]func(r *run) (*system, error){
	"direct": func(r *run) (*system, error) {
		return r.startEnvoy("direct", "envoy/bench/direct.yaml", 1, r.s.ProxyCPUs)
	},
	"filter": func(r *run) (*system, error) {
		return r.startEnvoy("filter", "envoy/bench/cache.yaml", 1, r.s.ProxyCPUs)
	},
	"nofilter": func(r *run) (*system, error) {
		return r.startEnvoy("nofilter", "envoy/bench/cache-nofilter.yaml", 1, r.s.ProxyCPUs)
	},
	// S2B: the same config with a baseline module (-baseline-wasm).
	"filter-base": func(r *run) (*system, error) {
		return r.startEnvoyWasm("filter-base", "envoy/bench/cache.yaml", 1, r.s.ProxyCPUs, r.s.BaselineWasm)
	},
	"filter-2w": func(r *run) (*system, error) { return r.startEnvoy("filter-2w", "envoy/bench/cache.yaml", 2, "0,1") },
	// SL: cache.yaml without allow_on_headers_stop_iteration, as under
	// Istio's WasmPlugin: the filter decides late.
	"filter-late": func(r *run) (*system, error) {
		return r.startEnvoyRender("filter-late", "envoy/bench/cache.yaml", 1, r.s.ProxyCPUs, envoyrun.Render{Wasm: r.s.Wasm, NoHeaderHold: true}, nil)
	},
	// The S2/S4 floors: cache.yaml with bench/floorfilter (in one of its
	// modes) in place of modelcache.
	"floor-empty":        func(r *run) (*system, error) { return r.startFloor("empty") },
	"floor-read":         func(r *run) (*system, error) { return r.startFloor("read") },
	"floor-hit":          func(r *run) (*system, error) { return r.startFloor("hit") },
	"floor-hit-keyed":    func(r *run) (*system, error) { return r.startFloor("hit-keyed") },
	"floor-hit-served":   func(r *run) (*system, error) { return r.startFloor("hit-served") },
	"floor-pairs":        func(r *run) (*system, error) { return r.startFloor("pairs") },
	"floor-bypass":       func(r *run) (*system, error) { return r.startFloor("bypass") },
	"floor-miss":         func(r *run) (*system, error) { return r.startFloor("miss") },
	"floor-miss-keyed":   func(r *run) (*system, error) { return r.startFloor("miss-keyed") },
	"floor-miss-served":  func(r *run) (*system, error) { return r.startFloor("miss-served") },
	"floor-embed":        func(r *run) (*system, error) { return r.startFloor("embed") },
	"floor-embed-calls":  func(r *run) (*system, error) { return r.startFloor("embed-calls") },
	"floor-embed-cached": func(r *run) (*system, error) { return r.startFloor("embed-cached") },
	"nginx":              func(r *run) (*system, error) { return r.startNginx() },
	"varnish":            func(r *run) (*system, error) { return r.startVarnish() },

	// S2R's control: hit-served kept busy about as long as a hit in
	// modelcache takes beyond it.
	"floor-hit-served-busy": func(r *run) (*system, error) { return r.startFloorBusy("hit-served", servedBusyRounds) },

	// S4's control: miss-served padded to modelcache's volume of code.
	"floor-miss-served-padded": func(r *run) (*system, error) { return r.startFloor("miss-served-padded") },
	// miss-served with its lookup under a key of its own, found absent.
	"floor-miss-served-unbounded": func(r *run) (*system, error) { return r.startFloor("miss-served-unbounded") },
}

func freePort() (int, error) { return envoyrun.FreePort() }

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// startFloor builds bench/floorfilter in the given mode and runs it in
// cache.yaml instead of modelcache.
func (r *run) startFloor(mode string) (*system, error) { return r.startFloorBusy(mode, 0) }

// startFloorBusy starts the floor in mode, kept busy for busy rounds of a
// loop before each hit's answer (bench/floorfilter's busy; 0: none).
func (r *run) startFloorBusy(mode string, busy int) (*system, error) {
	name := "floor-" + mode
	if busy > 0 {
		name += "-busy"
	}
	wasm := filepath.Join(r.s.WorkDir, name+".wasm")
	if err := buildFloor(r.s.Root, mode, wasm, busy); err != nil {
		return nil, err
	}
	return r.startEnvoyWasm(name, "envoy/bench/cache.yaml", 1, r.s.ProxyCPUs, wasm)
}

// buildFloor builds bench/floorfilter of the repository at root in the
// given mode (and busy rounds) into wasm.
func buildFloor(root, mode, wasm string, busy int) error {
	ldflags, tags := "-X main.busy="+strconv.Itoa(busy), ""
	switch mode {
	case "miss-keyed", "miss-served", "hit-keyed", "hit-served":
		tags = "floorkeyed" // bench/floorfilter/keyed.go, missserved.go, served.go
	case "miss-served-padded": // bench/floorfilter/pad.go
		mode, tags = "miss-served", "floorkeyed,floorpad"
	case "miss-served-unbounded": // bench/floorfilter/lookup_unbounded.go
		mode, tags = "miss-served", "floorkeyed,floorunbounded"
	}
	args := []string{"build", "-buildmode=c-shared", "-ldflags", "-X main.mode=" + mode + " " + ldflags, "-o", wasm}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	// A fresh output: go build leaves one whose build ID is current as it
	// is, hinted by whatever hinted it.
	_ = os.Remove(wasm)
	cmd := exec.Command("go", append(args, "./bench/floorfilter")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the floor filter: %v: %s", err, out)
	}
	// Built as the product is (make build): a floor is what a Go filter
	// doing only that work costs, branch hints included.
	return wasmhint.File(wasm)
}

// startEnvoy renders an envoy/bench config (ports and the wasm path only,
// as the e2e tests do) and starts Envoy pinned to cpus.
func (r *run) startEnvoy(name, file string, concurrency int, cpus string) (*system, error) {
	return r.startEnvoyWasm(name, file, concurrency, cpus, r.s.Wasm)
}

func (r *run) startEnvoyWasm(name, file string, concurrency int, cpus, wasm string) (*system, error) {
	return r.startEnvoyWith(name, file, concurrency, cpus, wasm, nil, "")
}

// startEnvoyWith is startEnvoyWasm with more ports to map and, if set, the
// filter's JSON replaced.
func (r *run) startEnvoyWith(name, file string, concurrency int, cpus, wasm string, ports map[int]int, filterJSON string) (*system, error) {
	return r.startEnvoyRender(name, file, concurrency, cpus, envoyrun.Render{Wasm: wasm, FilterJSON: filterJSON}, ports)
}

// startEnvoyRender is startEnvoyWith with more of the config rendered (rr;
// its Ports are set here, ports added).
func (r *run) startEnvoyRender(name, file string, concurrency int, cpus string, rr envoyrun.Render, ports map[int]int) (*system, error) {
	raw, err := os.ReadFile(filepath.Join(r.s.Root, file))
	if err != nil {
		return nil, err
	}
	listen, err := freePort()
	if err != nil {
		return nil, err
	}
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	all := map[int]int{10100: listen, 9911: admin, 8100: r.origin.Port}
	for from, to := range ports {
		all[from] = to
	}
	rr.Ports = all
	cfg, err := envoyrun.RenderConfig(string(raw), rr)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(r.s.WorkDir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	s := &system{name: name, kind: "envoy", URL: fmt.Sprintf("http://127.0.0.1:%d", listen),
		Admin: fmt.Sprintf("http://127.0.0.1:%d", admin), log: filepath.Join(r.s.WorkDir, name+".log")}
	p, err := envoyrun.Start(envoyrun.Options{Bin: r.s.Envoy, Config: cfgPath, Concurrency: concurrency,
		BaseID: admin, Admin: s.Admin, Log: s.log, Dir: r.s.Root, Prefix: []string{"taskset", "-c", cpus}, Group: true})
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, s.tail())
	}
	s.envoy, s.cmd, s.done = p, p.Cmd, p.Done()
	return s, nil
}

func (s *system) start() error {
	f, err := os.Create(s.log)
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = f, f
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	s.done = done
	go func() { s.cmd.Wait(); f.Close(); close(done) }()
	return nil
}

func (s *system) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop ends the process group this run started (SIGTERM, then SIGKILL).
func (s *system) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil || !s.alive() {
		return
	}
	if s.envoy != nil {
		s.envoy.Stop()
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
}

func (s *system) Pid() int { return s.cmd.Process.Pid }

func (s *system) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// RSS is the process's resident memory in bytes (VmRSS).
func (s *system) RSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.Pid()))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

// downstreamConns is Envoy's listener connection count (-1 if not Envoy).
func (s *system) downstreamConns() int64 {
	if s.kind != "envoy" {
		return -1
	}
	res, err := http.Get(s.Admin + "/stats?filter=^http\\.bench\\.downstream_cx_total$")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	_, v, ok := strings.Cut(strings.TrimSpace(string(b)), ": ")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// Stats reads Envoy's counters and gauges.
func (s *system) Stats() (map[string]int64, error) { return envoyrun.Stats(s.Admin) }

// Stat reads one stat; counters defined by wasm reach the admin view at
// Envoy's stats flush, so callers that need exact values wait for it.
func (s *system) Stat(name string) int64 {
	st, err := s.Stats()
	if err != nil {
		return -1
	}
	return st[name]
}

// ---- nginx and Varnish ----

type tmplData struct {
	Port, OriginPort int
	Dir, CacheDir    string
}

func (r *run) renderTemplate(src, dst string, d tmplData) error {
	t, err := template.ParseFiles(filepath.Join(r.s.Root, src))
	if err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	return t.Execute(f, d)
}

func waitTCP(s *system, port int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if !s.alive() {
			return fmt.Errorf("%s exited: %s", s.name, s.tail())
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("%s not listening after 30s: %s", s.name, s.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startNginx runs nginx (one worker, proxy_cache on /dev/shm) from
// bench/nginx/nginx.conf in the foreground, pinned like Envoy.
func (r *run) startNginx() (*system, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(r.s.WorkDir, "nginx")
	cache, err := os.MkdirTemp("/dev/shm", "modelcache-bench-nginx-")
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(dir, "logs"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := r.renderTemplate("bench/nginx/nginx.conf", conf, tmplData{Port: port, OriginPort: r.origin.Port, Dir: dir, CacheDir: cache}); err != nil {
		return nil, err
	}
	s := &system{name: "nginx", kind: "nginx", URL: fmt.Sprintf("http://127.0.0.1:%d", port), log: filepath.Join(dir, "stderr.log")}
	s.cmd = exec.Command("taskset", "-c", r.s.ProxyCPUs, "nginx", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "logs", "error.log"))
	if err := s.start(); err != nil {
		return nil, err
	}
	go func() { <-s.done; os.RemoveAll(cache) }()
	return s, waitTCP(s, port)
}

// startVarnish runs varnishd (malloc storage, bodyaccess to key POST
// bodies) from bench/varnish/bench.vcl in the foreground, pinned like Envoy.
func (r *run) startVarnish() (*system, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(r.s.WorkDir, "varnish")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	vcl := filepath.Join(dir, "bench.vcl")
	if err := r.renderTemplate("bench/varnish/bench.vcl", vcl, tmplData{Port: port, OriginPort: r.origin.Port, Dir: dir}); err != nil {
		return nil, err
	}
	s := &system{name: "varnish", kind: "varnish", URL: fmt.Sprintf("http://127.0.0.1:%d", port), log: filepath.Join(dir, "varnishd.log")}
	s.cmd = exec.Command("taskset", "-c", r.s.ProxyCPUs, "varnishd", "-F", "-n", filepath.Join(dir, "work"),
		"-a", fmt.Sprintf("127.0.0.1:%d", port), "-f", vcl, "-s", "malloc,256m", "-T", "none", "-j", "none",
		"-p", "default_ttl=86400")
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, waitTCP(s, port)
}
