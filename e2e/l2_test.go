package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		`"acl":[{"disabled":["*"]},{"enabled":["MGET","SETEX","SET","DEL","INCR","PING"]}]}`,
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

// do runs one Redis command through webdis and returns the raw reply.
func (s *l2Store) do(method, path string, body []byte) (string, error) {
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", s.Webdis, path), bytes.NewReader(body))
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
	out, err := s.do("GET", "/KEYS/"+prefix+"*.raw", nil) // KEYS is not in the ACL of the filter's profile...
	if err != nil {
		s.t.Fatal(err)
	}
	var keys []string
	for _, l := range strings.Split(out, "\r\n") {
		if strings.HasPrefix(l, prefix) {
			keys = append(keys, l)
		}
	}
	return keys
}

func l2Config(webdisTimeout string) string {
	return `{"upstream_cluster": "model",
  "l2": {"cluster": "webdis", "timeout": "` + webdisTimeout + `", "breaker": {"failures": 3, "cool_down": "500ms"}},
  "purge": {"path": "/modelcache/purge", "token": "0123456789abcdef-l2"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10m", "share_authorities": true,
     "coalesce": {"max_wait": "5s"}}]}`
}

func startL2Envoy(t *testing.T, s *l2Store, cfg string) *envoyProc {
	return startEnvoy(t, envoyOpts{Config: cfg, Ports: map[int]int{7379: s.Webdis}})
}

func TestL2AnswerOfOneProxyIsAHitOnAnother(t *testing.T) {
	s := startL2(t)
	a, b := startL2Envoy(t, s, l2Config("250ms")), startL2Envoy(t, s, l2Config("250ms"))
	auth := []string{"authorization", "Bearer tenant-a"}
	r1 := do(t, "POST", a.URL+"/v1/chat/completions", chat("shared across the mesh"), auth...)
	expectCS(t, r1, "fwd=miss", "stored")
	if got := a.WaitStat("wasmcustom.modelcache.chat.l2.written", 1); got != 1 {
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
	for _, k := range s.Keys("") {
		if strings.Contains(k, "tenant") {
			t.Fatalf("credential in a Redis key: %q", k)
		}
	}
}
