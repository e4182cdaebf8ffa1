package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// S13: the L2 tier. Two Envoys (A, B) share one redis-server through one
// webdis, all started here on free ports. A answers N distinct requests
// (each written to L2); B then asks for them once each — every one an L1
// miss and an L2 hit — at c=1 and c=16, beside B's L1 hits (the same
// requests again) and B's misses (new requests, with the L2 lookup, lease
// and write). Then burstN identical new requests for a slow answer, split
// over A and B: the origin calls and the followers' lag behind the leader.
// l2.timeout is 200 ms here, not the 25 ms default: on the 2-CPU bench
// machine a lookup at c=16 queues behind the proxy's own work, and a
// timed-out lookup would be measured as a miss.

const s13Filter = `{"upstream_cluster": "origin",
  "l2": {"cluster": "webdis", "timeout": "200ms"},
  "routes": [
    {"name": "l2", "kind": "chat", "path_prefix": "/l2/", "ttl": "24h", "share_authorities": true,
     "coalesce": {"max_wait": "30s"}}
  ]}`

func (r *run) startL2Store() (int, error) {
	for _, bin := range []string{"redis-server", "webdis"} {
		if _, err := exec.LookPath(bin); err != nil {
			return 0, fmt.Errorf("%s not found (make l2-tools installs it)", bin)
		}
	}
	redisPort, err := freePort()
	if err != nil {
		return 0, err
	}
	webdisPort, err := freePort()
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(r.s.WorkDir, "l2")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	conf := fmt.Sprintf("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndaemonize no\ndir %s\n", redisPort, dir)
	if err := os.WriteFile(filepath.Join(dir, "redis.conf"), []byte(conf), 0o644); err != nil {
		return 0, err
	}
	wconf := fmt.Sprintf(`{"redis_host":"127.0.0.1","redis_port":%d,"http_host":"127.0.0.1","http_port":%d,"threads":2,`+
		`"daemonize":false,"database":0,"verbosity":1,"logfile":%q}`, redisPort, webdisPort, filepath.Join(dir, "webdis.log"))
	if err := os.WriteFile(filepath.Join(dir, "webdis.json"), []byte(wconf), 0o644); err != nil {
		return 0, err
	}
	for _, p := range []struct{ name, bin, conf string }{
		{"redis", "redis-server", "redis.conf"}, {"webdis", "webdis", "webdis.json"},
	} {
		s := &system{name: p.name, kind: p.name, cmd: exec.Command(p.bin, filepath.Join(dir, p.conf)), log: filepath.Join(dir, p.name+".out")}
		if err := s.start(); err != nil {
			return 0, err
		}
		r.systems[p.name] = s
	}
	c := newClient(1)
	for i := 0; i < 200; i++ {
		res, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/PING", webdisPort))
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return webdisPort, nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return 0, fmt.Errorf("webdis on :%d never answered PING", webdisPort)
}

// s13Ask sends prompts to url from conns clients; it returns the latencies
// (ms, sorted) of the replies whose cache header has want, and how many
// 200s did not (e.g. a lookup past l2.timeout goes to the origin). A failed
// request is an error.
func (r *run) s13Ask(url string, prompts []string, conns int, want string) ([]float64, int, error) {
	c := newClient(conns)
	var mu sync.Mutex
	var lat []float64
	var bad []string
	other := 0
	next := make(chan string)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				rep := post(r.ctx, c, url, chatRequest(p), authHeader)
				mu.Lock()
				switch {
				case rep.Err != nil || rep.Status != 200:
					bad = append(bad, fmt.Sprintf("%d %q %v", rep.Status, rep.Cache, rep.Err))
				case !strings.Contains(rep.Cache, want):
					other++
				default:
					lat = append(lat, float64(rep.Latency().Microseconds())/1000)
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range prompts {
		next <- p
	}
	close(next)
	wg.Wait()
	sort.Float64s(lat)
	if len(bad) > 0 {
		return lat, other, fmt.Errorf("%d of %d requests failed (first: %s)", len(bad), len(prompts), bad[0])
	}
	if len(lat) == 0 {
		return lat, other, fmt.Errorf("no reply was %q", want)
	}
	return lat, other, nil
}

func runS13(r *run) error {
	webdis, err := r.startL2Store()
	if err != nil {
		return err
	}
	ports := map[int]int{7379: webdis}
	var proxies [2]*system
	for i, name := range []string{"l2-a", "l2-b"} {
		s, err := r.startEnvoyWith(name, "envoy/bench/cache.yaml", 1, r.s.ProxyCPUs, r.s.Wasm, ports, s13Filter)
		if err != nil {
			return err
		}
		r.systems[name] = s
		proxies[i] = s
	}
	a, b := proxies[0], proxies[1]
	n := 2000
	if r.s.Quick {
		n = 200
	}
	run := fmt.Sprint(time.Now().UnixNano())
	prompts := func(kind string, k int) []string {
		out := make([]string, k)
		for i := range out {
			out[i] = fmt.Sprintf("s13-%s-%s-%d", run, kind, i)
		}
		return out
	}
	shared := prompts("shared", n)
	if _, _, err := r.s13Ask(a.URL+"/l2/v1/chat/completions", shared, 4, "stored"); err != nil {
		return fmt.Errorf("filling L2 through A: %w", err)
	}
	for i := 0; ; i++ { // the writes are behind the responses
		st, err := a.Stats()
		if err != nil {
			return err
		}
		if st["wasmcustom.modelcache_route.l2.l2.written"] >= int64(n) {
			break
		}
		if i == 200 {
			return fmt.Errorf("A wrote %d of %d answers to L2", st["wasmcustom.modelcache_route.l2.l2.written"], n)
		}
		time.Sleep(25 * time.Millisecond)
	}
	url := b.URL + "/l2/v1/chat/completions"
	type m struct {
		label string
		lat   []float64
		other int
	}
	var ms []m
	for _, step := range []struct {
		label   string
		prompts []string
		conns   int
		want    string
	}{
		{"L2 hit c=1", shared[:n/2], 1, "detail=l2"},
		{"L2 hit c=16", shared[n/2:], 16, "detail=l2"},
		{"L1 hit c=1", shared[:n/2], 1, "; hit"},
		{"L1 hit c=16", shared[n/2:], 16, "; hit"},
		{"miss c=1", prompts("miss1", n/2), 1, "stored"},
		{"miss c=16", prompts("miss16", n/2), 16, "stored"},
	} {
		lat, other, err := r.s13Ask(url, step.prompts, step.conns, step.want)
		if err != nil {
			return fmt.Errorf("%s: %w", step.label, err)
		}
		ms = append(ms, m{step.label, lat, other})
	}
	base := map[string]string{}
	for _, x := range ms {
		if strings.HasPrefix(x.label, "L1") || strings.HasPrefix(x.label, "miss") {
			base[x.label] = fmt.Sprintf("%s p50 %s / p99 %s ms", x.label, msfmt(percentile(x.lat, 50)), msfmt(percentile(x.lat, 99)))
		}
	}
	for _, x := range ms[:2] {
		c := strings.TrimPrefix(x.label, "L2 hit ")
		v := fmt.Sprintf("%s / %s ms", msfmt(percentile(x.lat, 50)), msfmt(percentile(x.lat, 99)))
		if x.other > 0 {
			v += fmt.Sprintf(" (%d of %d went to the origin instead)", x.other, x.other+len(x.lat))
		}
		r.add(row{Scenario: "S13", Metric: x.label + " (B, answered by A): p50 / p99",
			Value:     v,
			Baselines: base["L1 hit "+c] + "; " + base["miss "+c] + " (origin answers at once)"})
	}
	if st, err := b.Stats(); err == nil {
		var parts []string
		for _, ev := range []string{"hit", "miss", "error", "timeout", "breaker_open", "rejected", "lease_won", "lease_lost", "written", "write_error"} {
			parts = append(parts, fmt.Sprintf("%s %d", ev, st["wasmcustom.modelcache_route.l2.l2."+ev]))
		}
		r.note("S13 proxy B's l2 counters after the latency points: %s", strings.Join(parts, ", "))
	}
	return r.s13Coalesce(a, b)
}

// s13Coalesce: burstN identical new requests, half through A and half
// through B, for an answer the origin takes 300 ms to give.
func (r *run) s13Coalesce(a, b *system) error {
	before := r.origin.Calls("l2")
	body := chatRequest(fmt.Sprint("s13-coalesce-", time.Now().UnixNano()))
	replies := make([]reply, burstN)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range replies {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sys := a
			if i%2 == 1 {
				sys = b
			}
			c := newClient(1)
			<-start
			replies[i] = post(context.Background(), c, sys.URL+"/l2/d300/v1/chat/completions", body, authHeader)
		}(i)
	}
	close(start)
	wg.Wait()
	calls := r.origin.Calls("l2") - before
	var leaderDone time.Time
	failed := 0
	for _, rep := range replies {
		if rep.Err != nil || rep.Status != 200 {
			failed++
			continue
		}
		if strings.Contains(rep.Cache, "stored") && rep.Done.After(leaderDone) {
			leaderDone = rep.Done
		}
	}
	var lags []float64
	for _, rep := range replies {
		if rep.Err == nil && rep.Status == 200 && !strings.Contains(rep.Cache, "stored") {
			lags = append(lags, float64(rep.Done.Sub(leaderDone).Microseconds())/1000)
		}
	}
	sort.Float64s(lags)
	v := fmt.Sprintf("origin calls %d; follower lag p50 %s / p99 %s ms", calls, msfmt(percentile(lags, 50)), msfmt(percentile(lags, 99)))
	if failed > 0 {
		v += fmt.Sprintf(", %d failed", failed)
	}
	r.add(row{Scenario: "S13", Metric: fmt.Sprintf("cross-proxy coalescing: %d requests over 2 proxies, origin 300 ms", burstN),
		Value: v, Baselines: "without l2: 2 origin calls (one per proxy)", Target: "1 origin call", Met: met(calls == 1 && failed == 0)})
	return nil
}
