package observability

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

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
