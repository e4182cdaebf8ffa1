package e2e

import (
	"bufio"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/envoy/observability"
)

// sloRoutes is the chat route with a stale-serving objective: the slo.*
// stats exist only on routes that have one.
const sloRoutes = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10m",
     "freshness_slo": {"max_age": "1h", "max_fraction": 0.05, "window": "5m", "min_samples": 20}}
  ]
}`

// promNames scrapes /stats/prometheus and returns the metric names in it.
func promNames(t *testing.T, admin string) map[string]bool {
	t.Helper()
	res, err := http.Get(admin + "/stats/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("/stats/prometheus: %d %s", res.StatusCode, b)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// Every metric name the alert rules and the dashboard select exists in what
// a real Envoy running the shipped envoy.yaml (its stats_tags included)
// exports after traffic; each __name__ pattern matches at least one name.
// The names are read out of the rule expressions and panel queries.
func TestAlertsAndDashboardMatchPrometheusScrape(t *testing.T) {
	used, err := observability.UsedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if len(used.Names) < 10 || len(used.Patterns) == 0 {
		t.Fatalf("rules and dashboard name only %d metrics and %d patterns", len(used.Names), len(used.Patterns))
	}
	e := startEnvoy(t, envoyOpts{Config: sloRoutes})
	url := e.URL + "/v1/chat/completions"
	// A miss, a hit, a bypass (no identity) and a refusal (upstream 503).
	expectCS(t, do(t, "POST", url, chat("alerts"), "authorization", "Bearer a"), "fwd=miss")
	expectCS(t, do(t, "POST", url, chat("alerts"), "authorization", "Bearer a"), "hit")
	expectCS(t, do(t, "POST", url, chat("alerts")), "fwd=bypass")
	expectCS(t, do(t, "POST", url, chat("refused"), "authorization", "Bearer a", "x-sim-status", "503"), "fwd=miss")
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.refused.status", 1); got != 1 {
		t.Fatalf("refused.status = %d", got)
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.requests.hit", 1); got != 1 {
		t.Fatalf("requests.hit = %d", got)
	}
	checkUsedMetrics(t, e, used)
}

// checkUsedMetrics holds the metric names and patterns the rules and the
// dashboard use to what e exports on /stats/prometheus, and its label too.
func checkUsedMetrics(t *testing.T, e *envoyProc, used *observability.Used) {
	t.Helper()
	scraped := promNames(t, e.Admin)
	for _, n := range observability.Sorted(used.Names) {
		if !scraped[n] {
			t.Errorf("%s is not exported by Envoy (used in %s)", n, strings.Join(used.Names[n], "; "))
		}
	}
	for _, p := range observability.Sorted(used.Patterns) {
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			t.Errorf("pattern %q: %v", p, err)
			continue
		}
		matched := 0
		for n := range scraped {
			if re.MatchString(n) {
				matched++
			}
		}
		if matched == 0 {
			t.Errorf("pattern %q matches no exported metric (used in %s)", p, strings.Join(used.Patterns[p], "; "))
		}
	}
	// The label the rules aggregate by is there too.
	if !strings.Contains(e.promText(t), `modelcache_requests_hit{modelcache_route="chat"} 1`) {
		t.Errorf("no modelcache_requests_hit{modelcache_route=\"chat\"} 1 in the scrape")
	}
	t.Logf("checked %d metric names and %d patterns against %d exported names", len(used.Names), len(used.Patterns), len(scraped))
}

func (e *envoyProc) promText(t *testing.T) string {
	t.Helper()
	res, err := http.Get(e.Admin + "/stats/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
