package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// Acceptance of "Mesh-wide cache: an optional L2 tier on Redis (reached
// through webdis)": real Envoy processes sharing one real redis-server
// through one real webdis, each started by the test on free ports
// (scripts/ensure-l2.sh installs them; make test runs it).

// l2Store is a redis-server and a webdis in front of it.
type l2Store struct {
	t                 *testing.T
	dir               string
	RedisPort, Webdis int
	redis, webdis     *exec.Cmd
}

func requireL2Tools(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"redis-server", "webdis"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("E2E_REQUIRE_ENVOY") == "1" {
				t.Fatalf("%s not found (scripts/ensure-l2.sh installs it)", bin)
			}
			t.Skipf("SKIPPED: %s not found (run scripts/ensure-l2.sh)", bin)
		}
	}
}

// startL2 starts redis-server and webdis on free ports, with their own
// config files in a temporary directory; both stop at the end of the test.
func startL2(t *testing.T) *l2Store {
	t.Helper()
	requireEnvoy(t)
	requireL2Tools(t)
	s := &l2Store{t: t, dir: t.TempDir(), RedisPort: freePort(t), Webdis: freePort(t)}
	redisConf := fmt.Sprintf("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndaemonize no\ndir %s\n", s.RedisPort, s.dir)
	if err := os.WriteFile(filepath.Join(s.dir, "redis.conf"), []byte(redisConf), 0o644); err != nil {
		t.Fatal(err)
	}
	webdisConf := fmt.Sprintf(`{"redis_host":"127.0.0.1","redis_port":%d,"http_host":"127.0.0.1","http_port":%d,`+
		`"threads":2,"daemonize":false,"database":0,"verbosity":1,"logfile":%q,`+
		`"acl":[{"disabled":["*"]},{"enabled":["MGET","SETEX","SET","EXPIRE","DEL","INCR","RPUSH","LRANGE","LLEN","PING"]},`+
		`{"http_basic_auth":"test:admin","enabled":["*"]}]}`,
		s.RedisPort, s.Webdis, filepath.Join(s.dir, "webdis.log"))
	if err := os.WriteFile(filepath.Join(s.dir, "webdis.json"), []byte(webdisConf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.StartRedis()
	s.webdis = exec.Command("webdis", filepath.Join(s.dir, "webdis.json"))
	if err := s.webdis.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.webdis.Process.Kill()
		s.webdis.Wait()
		s.StopRedis()
	})
	s.waitPing(true)
	return s
}

// StartRedis (re)starts redis-server and waits until webdis reaches it.
func (s *l2Store) StartRedis() {
	s.t.Helper()
	s.redis = exec.Command("redis-server", filepath.Join(s.dir, "redis.conf"))
	s.redis.Stdout, s.redis.Stderr = io.Discard, io.Discard
	if err := s.redis.Start(); err != nil {
		s.t.Fatal(err)
	}
	if s.webdis != nil {
		s.waitPing(true)
	}
}

// StopRedis kills redis-server (SIGKILL: as a crash).
func (s *l2Store) StopRedis() {
	if s.redis != nil && s.redis.Process != nil {
		s.redis.Process.Kill()
		s.redis.Wait()
		s.redis = nil
	}
}

// do runs one Redis command through webdis, as the filter's profile
// (the ACL of README's deployment section), and returns the raw reply.
func (s *l2Store) do(method, path string, body []byte) (string, error) {
	return s.doAs(false, method, path, body)
}

// doAs runs a command as the filter or, admin, as the test's own profile
// (every command).
func (s *l2Store) doAs(admin bool, method, path string, body []byte) (string, error) {
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", s.Webdis, path), bytes.NewReader(body))
	if admin {
		req.SetBasicAuth("test", "admin")
	}
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

func (s *l2Store) waitPing(up bool) {
	s.t.Helper()
	for i := 0; i < 500; i++ {
		out, _ := s.do("GET", "/PING.raw", nil)
		if (out == "+PONG\r\n") == up {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("webdis/redis not %s", map[bool]string{true: "up", false: "down"}[up])
}

// Keys lists the keys in Redis with the prefix.
func (s *l2Store) Keys(prefix string) []string {
	s.t.Helper()
	out, err := s.doAs(true, "GET", "/KEYS/"+prefix+"*.raw", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	var keys []string
	for _, l := range strings.Split(out, "\r\n") {
		if l != "" && l[0] != '*' && l[0] != '$' && strings.HasPrefix(l, prefix) {
			keys = append(keys, l)
		}
	}
	return keys
}

func l2Config(webdisTimeout string) string {
	return `{"upstream_cluster": "model",
  "l2": {"cluster": "webdis", "timeout": "` + webdisTimeout + `", "breaker": {"failures": 3, "cool_down": "500ms"}, "sync_interval": "500ms"},
  "purge": {"path": "/modelcache/purge", "token": "0123456789abcdef-l2"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10m", "share_authorities": true,
     "coalesce": {"max_wait": "5s"}}]}`
}

func startL2Envoy(t *testing.T, s *l2Store, cfg string) *envoyProc {
	return startEnvoy(t, envoyOpts{Config: cfg, Ports: map[int]int{7379: s.Webdis}})
}

// TestL2CrossProxyStampede: 200 concurrent identical new requests split
// across two Envoy processes (--concurrency 2 each) cost one model call
// with l2; without it, one per proxy. Then the leading proxy's model call
// fails (leaderFailure).
func TestL2CrossProxyStampede(t *testing.T) {
	s := startL2(t)
	for _, tc := range []struct {
		name string
		cfg  string
		want int64
	}{
		// A generous l2.timeout: this is about coalescing, and a lookup
		// that times out on a loaded machine rightly goes upstream.
		{"l2", l2Config("1s"), 1},
		{"no l2", strings.Replace(l2Config("1s"), `"l2": {"cluster": "webdis", "timeout": "1s", "breaker": {"failures": 3, "cool_down": "500ms"}, "sync_interval": "500ms"},`, "", 1), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startL2Envoy(t, s, tc.cfg), startL2Envoy(t, s, tc.cfg)
			for _, e := range []*envoyProc{a, b} {
				if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.LatencyMS = 500 }); err != nil {
					t.Fatal(err)
				}
			}
			client.CloseIdleConnections()
			body := chat("the mesh-wide stampede " + tc.name)
			var ra, rb []*response
			done := make(chan struct{})
			go func() { ra = burst(t, a.URL+"/v1/chat/completions", body, 100); close(done) }()
			rb = burst(t, b.URL+"/v1/chat/completions", body, 100)
			<-done
			calls := a.Sim.Calls("/v1/chat/completions") + b.Sim.Calls("/v1/chat/completions")
			for i, r := range append(ra, rb...) {
				if r == nil || r.Status != 200 {
					t.Fatalf("response %d: %+v", i, r)
				}
			}
			if calls != tc.want {
				t.Fatalf("model calls: %d, want %d", calls, tc.want)
			}
			if tc.want == 1 {
				for i, r := range append(ra, rb...) {
					if !bytes.Equal(r.Body, ra[0].Body) {
						t.Fatalf("response %d differs: %s", i, r.Body)
					}
				}
				lost := a.Stat("wasmcustom.modelcache_route.chat.l2.lease_lost") + b.Stat("wasmcustom.modelcache_route.chat.l2.lease_lost")
				won := a.Stat("wasmcustom.modelcache_route.chat.l2.lease_won") + b.Stat("wasmcustom.modelcache_route.chat.l2.lease_won")
				t.Logf("leases won %d, lost %d", won, lost)
				leaderFailure(t, a, b)
			}
		})
	}
}

// TestL2SlowAnswerKeepsTheMeshLease: an answer slower than l2.lease_ttl
// costs one model call across the mesh. The leading proxy renews its lease
// while the model works, so a request on the other proxy, made after the
// lease would have lapsed twice, waits for that answer and is served it
// from L2.
func TestL2SlowAnswerKeepsTheMeshLease(t *testing.T) {
	s := startL2(t)
	cfg := strings.Replace(l2Config("1s"), `"sync_interval": "500ms"`, `"sync_interval": "500ms", "lease_ttl": "1s"`, 1)
	a, b := startL2Envoy(t, s, cfg), startL2Envoy(t, s, cfg)
	for _, e := range []*envoyProc{a, b} {
		if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.LatencyMS = 3500 }); err != nil {
			t.Fatal(err)
		}
	}
	body, auth := chat("an answer slower than the mesh lease"), []string{"authorization", "Bearer tenant-a"}
	type result struct {
		r   *response
		err error
	}
	first := make(chan result, 1)
	go func() {
		r, err := tryDo(context.Background(), "POST", a.URL+"/v1/chat/completions", body, auth...)
		first <- result{r, err}
	}()
	time.Sleep(2500 * time.Millisecond)
	rb := do(t, "POST", b.URL+"/v1/chat/completions", body, auth...)
	ra := <-first
	if ra.err != nil {
		t.Fatal(ra.err)
	}
	if ra.r.Status != 200 || rb.Status != 200 {
		t.Fatalf("statuses %d (A), %d (B): %s", ra.r.Status, rb.Status, rb.Body)
	}
	if calls := a.Sim.Calls("/v1/chat/completions") + b.Sim.Calls("/v1/chat/completions"); calls != 1 {
		t.Fatalf("model calls: %d, want 1 (B's Cache-Status %q)", calls, rb.CacheStatus())
	}
	expectCS(t, rb, "detail=l2")
	if !bytes.Equal(ra.r.Body, rb.Body) {
		t.Fatalf("B was served %s, A %s", rb.Body, ra.r.Body)
	}
}

// TestL2IntegrityPurgeAndOutage: an answer is shared (sharedAnswer);
// tampered values are never served, a
// purge on A keeps the entry out of B's reach through L2, and Redis
// killed mid-run costs no client an error; the breaker opens and closes
// and hits resume.
func TestL2IntegrityPurgeAndOutage(t *testing.T) {
	s := startL2(t)
	a, b := startL2Envoy(t, s, l2Config("250ms")), startL2Envoy(t, s, l2Config("250ms"))
	sharedAnswer(t, s, a, b)
	auth := []string{"authorization", "Bearer tenant-a"}
	url := "/v1/chat/completions"
	written := a.Stat("wasmcustom.modelcache_route.chat.l2.written")
	answerOnA := func(prompt string) *response {
		t.Helper()
		r := do(t, "POST", a.URL+url, chat(prompt), auth...)
		expectCS(t, r, "fwd=miss", "stored")
		written++
		if got := a.WaitStat("wasmcustom.modelcache_route.chat.l2.written", written); got != written {
			t.Fatalf("l2.written on A = %d, want %d", got, written)
		}
		return r
	}
	entryKeys := func() map[string]bool {
		m := map[string]bool{}
		for _, k := range s.Keys("mc:e:") {
			m[k] = true
		}
		return m
	}

	// The ACL of the deployment section: the filter's profile runs only
	// its commands.
	if out, _ := s.do("GET", "/FLUSHALL.raw", nil); strings.Contains(out, "OK") {
		t.Fatalf("FLUSHALL allowed by the ACL: %q", out)
	}

	// Tampered bytes.
	before := entryKeys()
	answerOnA("tamper with me")
	var key string
	for k := range entryKeys() {
		if !before[k] {
			key = k
		}
	}
	raw, err := s.doAs(true, "GET", "/GET/"+key+".raw", nil)
	if err != nil || !strings.HasPrefix(raw, "$") {
		t.Fatalf("GET %s: %q %v", key, raw, err)
	}
	val := []byte(raw[strings.Index(raw, "\r\n")+2 : len(raw)-2])
	tampered := bytes.Replace(val, []byte("A"), []byte("B"), 1)
	if bytes.Equal(tampered, val) {
		t.Fatal("nothing to tamper with")
	}
	if out, _ := s.doAs(true, "PUT", "/SETEX/"+key+"/600.raw", tampered); out != "+OK\r\n" {
		t.Fatalf("SETEX: %q", out)
	}
	r := do(t, "POST", b.URL+url, chat("tamper with me"), auth...)
	expectCS(t, r, "fwd=miss")
	if got := b.WaitStat("wasmcustom.modelcache_route.chat.l2.rejected", 1); got != 1 {
		t.Fatalf("l2.rejected on B = %d", got)
	}

	// Another key's value under this key.
	before = entryKeys()
	answerOnA("first question")
	var k1 string
	for k := range entryKeys() {
		if !before[k] {
			k1 = k
		}
	}
	before = entryKeys()
	other := answerOnA("second question")
	var k2 string
	for k := range entryKeys() {
		if !before[k] {
			k2 = k
		}
	}
	raw2, _ := s.doAs(true, "GET", "/GET/"+k2+".raw", nil)
	if out, _ := s.doAs(true, "PUT", "/SETEX/"+k1+"/600.raw", []byte(raw2[strings.Index(raw2, "\r\n")+2:len(raw2)-2])); out != "+OK\r\n" {
		t.Fatalf("SETEX: %q", out)
	}
	r = do(t, "POST", b.URL+url, chat("first question"), auth...)
	expectCS(t, r, "fwd=miss")
	if bytes.Equal(r.Body, other.Body) {
		t.Fatal("B served another key's value")
	}
	if got := b.WaitStat("wasmcustom.modelcache_route.chat.l2.rejected", 2); got != 2 {
		t.Fatalf("l2.rejected on B = %d", got)
	}

	// Purge on A: B cannot get the entry from L2.
	answerOnA("purge me")
	pr := do(t, "POST", a.URL+"/modelcache/purge", `{"route":"chat","model":"sim-chat"}`, "authorization", "Bearer 0123456789abcdef-l2")
	if pr.Status != 200 {
		t.Fatalf("purge: %d %s", pr.Status, pr.Body)
	}
	r = do(t, "POST", b.URL+url, chat("purge me"), auth...)
	expectCS(t, r, "fwd=miss")
	// B's L1 copy (sharedAnswer) is gone within sync_interval (500 ms)
	// plus a tick (100 ms): polled for up to 5 s.
	for i := 0; ; i++ {
		r := do(t, "POST", b.URL+url, chat("shared across the mesh"), auth...)
		if strings.Contains(r.CacheStatus(), "fwd=miss") {
			break
		}
		if i == 50 {
			t.Fatalf("B still serves the purged entry: %q", r.CacheStatus())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Redis killed mid-run: no client error, the breaker opens.
	s.StopRedis()
	var slowest time.Duration
	for i := 0; i < 8; i++ {
		began := time.Now()
		r := do(t, "POST", a.URL+url, chat(fmt.Sprint("during the outage ", i)), auth...)
		slowest = max(slowest, time.Since(began))
		if r.Status != 200 {
			t.Fatalf("request %d during the outage: %d %s", i, r.Status, r.Body)
		}
		expectCS(t, r, "fwd=miss")
	}
	t.Logf("slowest request during the outage: %v (l2.timeout 250ms; not asserted)", slowest)
	if got := a.Stat("wasmcustom.modelcache_route.chat.l2.breaker_open"); got == 0 {
		t.Fatalf("breaker never opened (errors %d, timeouts %d)", a.Stat("wasmcustom.modelcache_route.chat.l2.error"), a.Stat("wasmcustom.modelcache_route.chat.l2.timeout"))
	}
	// Restarted: after the cool-down the breaker closes and hits resume.
	s.StartRedis()
	w0 := a.Stat("wasmcustom.modelcache_route.chat.l2.written")
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("L2 never came back")
		}
		r := do(t, "POST", a.URL+url, chat(fmt.Sprint("after the outage ", i)), auth...)
		if r.Status != 200 {
			t.Fatalf("after the outage: %d", r.Status)
		}
		if a.Stat("wasmcustom.modelcache_route.chat.l2.written") > w0 {
			r := do(t, "POST", b.URL+url, chat(fmt.Sprint("after the outage ", i)), auth...)
			expectCS(t, r, "detail=l2")
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderFailure: the model call of the proxy that leads across the mesh
// fails; another request (of either proxy) leads next, and no client but
// the first leader's sees the failure.
func leaderFailure(t *testing.T, a, b *envoyProc) {
	var calls atomic.Int64
	script := func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
		time.Sleep(500 * time.Millisecond) // the others pile up behind it
		if calls.Add(1) == 1 {
			w.WriteHeader(503)
			w.Write([]byte(`{"error":{"message":"overloaded"}}`))
			return true
		}
		return false
	}
	for _, e := range []*envoyProc{a, b} {
		e.Sim.SetScript(script)
	}
	client.CloseIdleConnections()
	body := chat("the leader fails")
	var ra, rb []*response
	done := make(chan struct{})
	go func() { ra = burst(t, a.URL+"/v1/chat/completions", body, 50); close(done) }()
	rb = burst(t, b.URL+"/v1/chat/completions", body, 50)
	<-done
	failed := 0
	for i, r := range append(ra, rb...) {
		if r == nil {
			t.Fatalf("response %d missing", i)
		}
		if r.Status != 200 {
			failed++
		}
	}
	if failed != 1 || calls.Load() != 2 {
		t.Fatalf("%d clients got the failure (want 1); %d model calls (want 2)", failed, calls.Load())
	}
}

// sharedAnswer: a request answered by proxy A is a hit on proxy B, with no
// model call there and the same bytes.
func sharedAnswer(t *testing.T, s *l2Store, a, b *envoyProc) {
	auth := []string{"authorization", "Bearer tenant-a"}
	r1 := do(t, "POST", a.URL+"/v1/chat/completions", chat("shared across the mesh"), auth...)
	expectCS(t, r1, "fwd=miss", "stored")
	if got := a.WaitStat("wasmcustom.modelcache_route.chat.l2.written", 1); got != 1 {
		t.Fatalf("l2.written on A = %d", got)
	}
	r2 := do(t, "POST", b.URL+"/v1/chat/completions", chat("shared across the mesh"), auth...)
	expectCS(t, r2, "hit", "detail=l2")
	if !bytes.Equal(r1.Body, r2.Body) || r1.Status != r2.Status {
		t.Fatalf("B's answer differs:\nA %d %s\nB %d %s", r1.Status, r1.Body, r2.Status, r2.Body)
	}
	if n := b.Sim.Calls("/v1/chat/completions"); n != 0 {
		t.Fatalf("B called its model %d times", n)
	}
	// Copied into B's L1: served there without L2 now.
	r3 := do(t, "POST", b.URL+"/v1/chat/completions", chat("shared across the mesh"), auth...)
	expectCS(t, r3, "hit")
	if strings.Contains(r3.CacheStatus(), "l2") {
		t.Fatalf("third request still from L2: %q", r3.CacheStatus())
	}
	// Another tenant on B: no hit from A's tenant.
	r4 := do(t, "POST", b.URL+"/v1/chat/completions", chat("shared across the mesh"), "authorization", "Bearer tenant-b")
	expectCS(t, r4, "fwd=miss")
	// No credential in any Redis key.
	b.WaitStat("wasmcustom.modelcache_route.chat.l2.written", 1)
	keys := s.Keys("")
	if len(keys) < 2 { // A's and B's entries (tenants a and b), at least
		t.Fatalf("keys in Redis: %q", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "tenant") {
			t.Fatalf("credential in a Redis key: %q", k)
		}
	}
}
