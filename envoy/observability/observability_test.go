package observability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"gopkg.in/yaml.v3"
)

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("MODELCACHE_REQUIRE_TOOLS") != "" {
			t.Fatal("promtool not found (scripts/ensure-ops-tools.sh installs it)")
		}
		t.Skip("promtool not found; run scripts/ensure-ops-tools.sh")
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = Dir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestPromtoolCheckRules(t *testing.T) { runPromtool(t, "check", "rules", "alerts.yaml") }

func TestPromtoolTestRules(t *testing.T) { runPromtool(t, "test", "rules", "alerts_test.yaml") }

// Every alert has a promtool test in which it fires, and one in which it
// stays quiet.
func TestEveryAlertIsUnitTested(t *testing.T) {
	rules, _, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(Dir(), "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	alerts := 0
	for _, r := range rules {
		name, ok := strings.CutPrefix(r.From, "alerts.yaml: alert ")
		if !ok {
			continue
		}
		alerts++
		if !fires[name] || !quiet[name] {
			t.Errorf("alert %s: a test where it fires: %v, where it stays quiet: %v", name, fires[name], quiet[name])
		}
	}
	if alerts < 5 {
		t.Fatalf("only %d alerts in alerts.yaml", alerts)
	}
}

// The dashboard uses only recording rules alerts.yaml defines, and every
// panel has a query.
func TestDashboardReferencesResolve(t *testing.T) {
	u, err := UsedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range Sorted(u.Undefined) {
		t.Errorf("%s is no recording rule of alerts.yaml (used in %v)", n, u.Undefined[n])
	}
	dash, err := Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	if len(dash) < 10 {
		t.Fatalf("dashboard has %d queries", len(dash))
	}
	for _, e := range dash {
		if strings.TrimSpace(e.Text) == "" {
			t.Errorf("%s: empty query", e.From)
		}
		if n, p := MetricNames(e.Text); len(n)+len(p) == 0 {
			t.Errorf("%s: selects no metric: %s", e.From, e.Text)
		}
	}
}

func TestMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr            string
		names, patterns []string
	}{
		{`rate(foo_total[5m])`, []string{"foo_total"}, nil},
		{`sum by (route, le) (rate(a_bucket{route=~"$r", x="by"}[$__rate_interval])) / on (route) group_left(y) b offset 1h > bool 3`,
			[]string{"a_bucket", "b"}, nil},
		{`max(x) without (instance) and on(k) (y > 0) unless z`, []string{"x", "y", "z"}, nil},
		{`label_replace({__name__=~"m_refused_[a-z_]+", r!="q"}, "reason", "$1", "__name__", "m_(.+)")`, nil, []string{"m_refused_[a-z_]+"}},
		{`{__name__="exact_one"} * 1e6 + rec:ratio:rate5m`, []string{"exact_one", "rec:ratio:rate5m"}, nil},
		{"histogram_quantile(0.99, sum(rate(h_bucket[1m])) by (le)) # comment names_nothing", []string{"h_bucket"}, nil},
	} {
		n, p := MetricNames(c.expr)
		if !reflect.DeepEqual(n, c.names) || !reflect.DeepEqual(p, c.patterns) {
			t.Errorf("%s:\n names %q, want %q\n patterns %q, want %q", c.expr, n, c.names, p, c.patterns)
		}
	}
}

// Every shipped Envoy configuration that loads the filter sets bucket
// bounds for its ms histograms (age_at_serve_ms) reaching at least a week,
// and past the longest ttl plus stale windows of its routes: Envoy's
// default buckets end at 3,600,000 (1 h), so every older answer fell into
// +Inf and the dashboard's age quantiles could not exceed 1 h while
// embeddings are cached for 24 h. Istio resources cannot carry bootstrap
// stats settings: they name the sidecar annotation that does, with the
// same buckets.
func TestShippedConfigsBucketAgesPastAWeek(t *testing.T) {
	const week = 7 * 24 * time.Hour
	stat := "wasmcustom.modelcache_route.chat.age_at_serve_ms"
	root := filepath.Join(Dir(), "..")
	var want []float64
	var istio []string
	bootstraps := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if !bytes.Contains(b, []byte("envoy.extensions.filters.http.wasm.v3.Wasm")) && !bytes.Contains(b, []byte("\nkind: WasmPlugin")) {
			return nil // no filter here
		}
		if bytes.Contains(b, []byte("\napiVersion:")) || bytes.HasPrefix(b, []byte("apiVersion:")) {
			istio = append(istio, rel)
			return nil
		}
		var cfg map[string]any
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			return fmt.Errorf("%s: %v", rel, err)
		}
		if cfg["static_resources"] == nil {
			return nil // not a bootstrap (an ECDS resource)
		}
		bootstraps++
		buckets := bucketsFor(t, rel, cfg, stat)
		if buckets == nil {
			return nil
		}
		longest := week
		for _, j := range filterConfigs(cfg) {
			c, err := cachecore.ParseConfig([]byte(j))
			if err != nil {
				t.Errorf("%s: filter configuration: %v", rel, err)
				continue
			}
			for _, r := range c.Routes {
				ttl := r.TTL
				if r.Confidence != nil {
					for _, tier := range r.Confidence.Tiers {
						ttl = max(ttl, tier.TTL)
					}
				}
				longest = max(longest, ttl+r.StaleWhileReval+r.StaleIfError)
			}
		}
		if last := buckets[len(buckets)-1]; last < float64(longest.Milliseconds()) {
			t.Errorf("%s: the last bucket of %s is %v ms, under %v", rel, stat, last, longest)
		}
		if rel == "envoy.yaml" {
			want = buckets
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if bootstraps < 3 || want == nil || len(istio) < 2 {
		t.Fatalf("%d Envoy bootstraps that load the filter found (envoy.yaml among them: %v), %d Istio resources", bootstraps, want != nil, len(istio))
	}
	for _, rel := range istio {
		b, _ := os.ReadFile(filepath.Join(root, rel))
		m := regexp.MustCompile(`sidecar\.istio\.io/statsHistogramBuckets: '(\{[^']+\})'`).FindSubmatch(b)
		if m == nil {
			t.Errorf("%s: names no sidecar.istio.io/statsHistogramBuckets annotation", rel)
			continue
		}
		var got map[string][]float64
		if err := json.Unmarshal(m[1], &got); err != nil {
			t.Errorf("%s: annotation: %v", rel, err)
			continue
		}
		if !reflect.DeepEqual(got, map[string][]float64{"wasmcustom.modelcache": want}) {
			t.Errorf("%s: annotation %s, want envoy.yaml's buckets for the prefix wasmcustom.modelcache", rel, m[1])
		}
	}
}

// bucketsFor is the buckets Envoy gives the histogram stat: those of the
// first histogram_bucket_settings entry that matches it, ascending.
func bucketsFor(t *testing.T, rel string, cfg map[string]any, stat string) []float64 {
	t.Helper()
	sc, _ := cfg["stats_config"].(map[string]any)
	settings, _ := sc["histogram_bucket_settings"].([]any)
	for _, s := range settings {
		s, _ := s.(map[string]any)
		m, _ := s["match"].(map[string]any)
		matched := false
		for k, v := range m {
			switch v := v.(type) {
			case string:
				matched = k == "prefix" && strings.HasPrefix(stat, v) || k == "suffix" && strings.HasSuffix(stat, v) ||
					k == "exact" && stat == v || k == "contains" && strings.Contains(stat, v)
			case map[string]any:
				re, _ := v["regex"].(string)
				matched = k == "safe_regex" && regexp.MustCompile(re).MatchString(stat)
			}
		}
		if !matched {
			continue
		}
		var out []float64
		for _, b := range s["buckets"].([]any) {
			f, ok := b.(float64)
			if i, isInt := b.(int); isInt {
				f, ok = float64(i), true
			}
			if !ok || len(out) > 0 && f <= out[len(out)-1] {
				t.Errorf("%s: buckets %v not ascending numbers", rel, s["buckets"])
				return nil
			}
			out = append(out, f)
		}
		return out
	}
	t.Errorf("%s: no stats_config.histogram_bucket_settings entry matches %s: Envoy's default buckets end at 1 h", rel, stat)
	return nil
}

// filterConfigs is every string in cfg that holds a JSON object (the
// filter's configuration values).
func filterConfigs(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		if strings.HasPrefix(strings.TrimSpace(v), "{") {
			out = append(out, v)
		}
	case map[string]any:
		for _, x := range v {
			out = append(out, filterConfigs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, filterConfigs(x)...)
		}
	}
	return out
}
