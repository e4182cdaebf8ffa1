// Package envoyrun starts real Envoy processes for the end-to-end tests
// (e2e/) and the benchmark harness (bench/cmd/bench): it finds the binary,
// renders a shipped config (ports, the wasm path, the filter's JSON, the
// route timeout, failure policy, header hold), starts Envoy with a
// concurrency and a base id on free ports, waits for /ready, stops it and
// reads its stats. Only what both callers need is here; each keeps its
// own policy (the tests fail the test, the bench returns errors).
package envoyrun

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Find returns the Envoy binary: $ENVOY_BIN, else the path recorded in
// root/build/envoy-path (make envoy), else envoy on $PATH, else the
// project's root/.venv/bin/envoy; "" if there is none.
func Find(root string) string {
	if p := os.Getenv("ENVOY_BIN"); p != "" {
		return p
	}
	if b, err := os.ReadFile(filepath.Join(root, "build", "envoy-path")); err == nil {
		if p := strings.TrimSpace(string(b)); p != "" {
			return p
		}
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p
	}
	p := filepath.Join(root, ".venv", "bin", "envoy")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// ErrPortTaken is wrapped by Start's error when Envoy exited because a
// port it was to bind (or its --base-id's socket) was in use: the caller
// may start it again on other ports.
var ErrPortTaken = errors.New("a port Envoy was to bind is in use")

// portTaken tells from Envoy's log whether it exited because a listener's
// port ("cannot bind '…': Address already in use") or its --base-id's
// domain socket ("unable to bind domain socket with base_id=…") was in use.
func portTaken(log string) bool {
	return strings.Contains(log, "Address already in use") || domainSocketInUse.MatchString(log)
}

// domainSocketInUse is Envoy's message for a --base-id's domain socket in
// use (errno 98, EADDRINUSE); other errnos are other failures.
var domainSocketInUse = regexp.MustCompile(`unable to bind domain socket with base_id=\d+, id=\d+, errno=98\b`)

// readyClient polls /ready: a port held by a process that never answers
// (the admin port Envoy could not bind) must not stall the wait.
var readyClient = &http.Client{Timeout: time.Second}

// ephemeralStart reads where the kernel's range of local ports for
// outgoing connections starts.
func ephemeralStart() (lo int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	lo, err = strconv.Atoi(f[0])
	return lo, err == nil
}

// lowestPort is where FreePort's range starts: above the ports services
// are usually configured on.
const lowestPort = 20000

var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a loopback TCP port free at the time of the call, never
// the same one twice in a process. It picks below the kernel's ephemeral
// range when there is room: a port the kernel picked for a listener on
// port 0 is an ephemeral one, which an outgoing connection made before
// Envoy binds it may take (CI saw Envoy exit with "Address already in use").
func FreePort() (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	if lo, ok := ephemeralStart(); ok && lo-lowestPort >= 1024 {
		for range 200 {
			p := lowestPort + rand.IntN(lo-lowestPort)
			if handedOut.ports[p] {
				continue
			}
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				continue
			}
			l.Close()
			handedOut.ports[p] = true
			return p, nil
		}
	}
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[p] {
			handedOut.ports[p] = true
			return p, nil
		}
	}
	return 0, errors.New("no free port found")
}

// Render says what RenderConfig changes in a shipped config; the zero
// value of a field leaves the file's own.
type Render struct {
	Ports        map[int]int // port_value in the file → port_value to use
	Wasm         string      // replaces filename: build/modelcache.wasm
	FilterJSON   string      // replaces the filter's `value: |` block
	RouteTimeout string      // replaces the routes' timeout: 120s, e.g. "1s"
	// NoHeaderHold drops allow_on_headers_stop_iteration, as Istio's
	// WasmPlugin does.
	NoHeaderHold bool
	// FailurePolicy replaces the failure_policy value (and a reload_config
	// on the same line), e.g. "FAIL_OPEN".
	FailurePolicy string
}

var (
	portRe       = regexp.MustCompile(`port_value: (\d+)`)
	wasmRe       = regexp.MustCompile(`filename: build/modelcache\.wasm`)
	timeoutRe    = regexp.MustCompile(`timeout: 120s`)
	failPolicyRe = regexp.MustCompile(`failure_policy: [A-Z_]+.*`)
	valueRe      = regexp.MustCompile(`(?m)^( *)value: \|\n`)
	indentRe     = regexp.MustCompile(`^( *)`)
)

// RenderConfig applies r to an Envoy config; everything else is the file
// as shipped.
func RenderConfig(cfg string, r Render) (string, error) {
	cfg = portRe.ReplaceAllStringFunc(cfg, func(m string) string {
		p, _ := strconv.Atoi(m[len("port_value: "):])
		if np, ok := r.Ports[p]; ok {
			return "port_value: " + strconv.Itoa(np)
		}
		return m
	})
	if r.Wasm != "" {
		cfg = wasmRe.ReplaceAllString(cfg, "filename: "+r.Wasm)
	}
	if r.RouteTimeout != "" {
		cfg = timeoutRe.ReplaceAllString(cfg, "timeout: "+r.RouteTimeout)
	}
	if r.FilterJSON != "" {
		var err error
		if cfg, err = replaceFilterJSON(cfg, r.FilterJSON); err != nil {
			return "", err
		}
	}
	if r.NoHeaderHold {
		cfg = strings.Replace(cfg, "allow_on_headers_stop_iteration: true", "allow_on_headers_stop_iteration: false", 1)
	}
	if r.FailurePolicy != "" {
		if !failPolicyRe.MatchString(cfg) {
			return "", errors.New("config has no failure_policy to replace")
		}
		cfg = failPolicyRe.ReplaceAllString(cfg, "failure_policy: "+r.FailurePolicy)
	}
	return cfg, nil
}

func replaceFilterJSON(cfg, filterJSON string) (string, error) {
	loc := valueRe.FindStringSubmatchIndex(cfg)
	if loc == nil {
		return "", errors.New("config has no `value: |` filter configuration block")
	}
	indent := len(cfg[loc[2]:loc[3]])
	start := loc[1]
	// The block runs while lines are indented deeper than `value:`.
	end := start
	sc := bufio.NewScanner(strings.NewReader(cfg[start:]))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) != "" && len(indentRe.FindString(line)) <= indent {
			break
		}
		end += len(line) + 1
	}
	pad := strings.Repeat(" ", indent+2)
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(filterJSON), "\n") {
		b.WriteString(pad + line + "\n")
	}
	return cfg[:start] + b.String() + cfg[end:], nil
}

// Options starts one Envoy.
type Options struct {
	Bin         string   // the Envoy binary
	Config      string   // path of the rendered config
	Concurrency int      // --concurrency; default 1
	BaseID      int      // --base-id (shared memory namespace); use a unique number, e.g. the admin port
	Admin       string   // admin base URL, polled for /ready
	Log         string   // file that receives Envoy's stdout and stderr
	Dir         string   // working directory (relative paths in the config)
	Prefix      []string // command the binary is run under, e.g. taskset -c 0
	// Group starts Envoy in its own process group, and Stop signals the
	// group (with Prefix, the prefix's children too).
	Group bool
	// ReadyTimeout bounds the wait for /ready; default 60 s.
	ReadyTimeout time.Duration
}

// Proc is a running Envoy.
type Proc struct {
	Cmd   *exec.Cmd
	Admin string
	Log   string
	group bool
	done  chan struct{}
}

// Start starts Envoy and waits until its admin /ready answers LIVE. On
// failure the process is stopped (its log, o.Log, says why).
func Start(o Options) (*Proc, error) {
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	args := append(append([]string(nil), o.Prefix...), o.Bin, "-c", o.Config, "--concurrency", strconv.Itoa(o.Concurrency),
		"--base-id", strconv.Itoa(o.BaseID), "--log-level", "warn", "--component-log-level", "wasm:info")
	logf, err := os.Create(o.Log)
	if err != nil {
		return nil, err
	}
	p := &Proc{Cmd: exec.Command(args[0], args[1:]...), Admin: o.Admin, Log: o.Log, group: o.Group, done: make(chan struct{})}
	p.Cmd.Dir = o.Dir
	p.Cmd.Stdout, p.Cmd.Stderr = logf, logf
	if o.Group {
		p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := p.Cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { p.Cmd.Wait(); logf.Close(); close(p.done) }()
	if err := p.waitReady(o.ReadyTimeout); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Proc) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		res, err := readyClient.Get(p.Admin + "/ready")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && strings.TrimSpace(string(body)) == "LIVE" {
				return nil
			}
		}
		select {
		case <-p.done:
			// How it ended (an exit status or a signal): a crash can leave
			// the log empty.
			err := fmt.Errorf("envoy exited before becoming ready (%v)", p.Cmd.ProcessState)
			if b, _ := os.ReadFile(p.Log); portTaken(string(b)) {
				err = fmt.Errorf("%w: %w", err, ErrPortTaken)
			}
			return err
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("envoy not ready after %v", timeout)
		}
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Alive reports whether the process still runs.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid is the process id (with Prefix, the prefix's: taskset execs Envoy).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Stop sends SIGTERM (to the group with Group) and SIGKILL if the process
// has not exited 10 s later, and waits for it. Stopping twice is harmless.
func (p *Proc) Stop() {
	if p == nil || !p.Alive() {
		return
	}
	pid := p.Cmd.Process.Pid
	signal := func(sig syscall.Signal) {
		if p.group {
			_ = syscall.Kill(-pid, sig)
		} else {
			_ = p.Cmd.Process.Signal(sig)
		}
	}
	signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		signal(syscall.SIGKILL)
		<-p.done
	}
}

// Output returns Envoy's log so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// Tail returns at most the last n bytes of Envoy's log.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Stats reads the counters and gauges of the Envoy whose admin base URL
// is admin, as name → value.
func Stats(admin string) (map[string]int64, error) {
	res, err := http.Get(admin + "/stats?format=json")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var doc struct {
		Stats []struct {
			Name  string          `json:"name"`
			Value json.RawMessage `json:"value"`
		} `json:"stats"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, s := range doc.Stats {
		if v, err := strconv.ParseInt(string(s.Value), 10, 64); err == nil {
			out[s.Name] = v
		}
	}
	return out, nil
}

// Stats reads this Envoy's counters and gauges.
func (p *Proc) Stats() (map[string]int64, error) { return Stats(p.Admin) }
