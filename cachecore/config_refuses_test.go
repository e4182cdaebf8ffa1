package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// oneRouteConfig is a valid one-route configuration with extra members on the
// route and at the top level.
func oneRouteConfig(route, top string) string {
	return `{` + top + `"routes":[{"name":"c","kind":"chat","path_prefix":"/v1/chat"` + route + `}]}`
}

func mustRefuseNaming(t *testing.T, cfg, field string) {
	t.Helper()
	_, err := ParseConfig([]byte(cfg))
	if err == nil {
		t.Fatalf("accepted silently; want an error naming %s", field)
	}
	if !strings.Contains(err.Error(), field) {
		t.Fatalf("error does not name %s: %v", field, err)
	}
}

// Malformed gjson paths (an unterminated query or bracket) match nothing:
// a rule {"exists": true} on one refuses every answer, {"exists": false}
// passes every answer, a confidence path never scores, a body_path never
// reports a version. They must be refused at start.
func TestConfigRefusesMalformedGJSONPaths(t *testing.T) {
	for _, c := range []struct{ name, route, field string }{
		{"validate unterminated query", `,"validate":[{"path":"choices.#(message.content==","exists":true}]`, "routes[0].validate[0].path"},
		{"validate lone query", `,"validate":[{"path":"choices.#(","exists":false}]`, "routes[0].validate[0].path"},
		{"validate unterminated bracket", `,"validate":[{"path":"a.[","exists":true}]`, "routes[0].validate[0].path"},
		{"validate empty segment", `,"validate":[{"path":"choices..message","exists":true}]`, "routes[0].validate[0].path"},
		{"confidence unterminated query", `,"confidence":{"path":"#(x==","tiers":[{"min":0.5,"ttl":"1m"}]}`, "routes[0].confidence.path"},
		{"model_version body_path unterminated", `,"model_version":{"body_path":"choices.#("}`, "routes[0].model_version.body_path"},
	} {
		t.Run(c.name, func(t *testing.T) { mustRefuseNaming(t, oneRouteConfig(c.route, ""), c.field) })
	}
}

// Empty sources would do nothing: model_path "" reads no model from any
// request; model_version {} or {"body_path": ""} names no source of the
// version at all (README: one of header or body_path).
func TestConfigRefusesEmptySources(t *testing.T) {
	for _, c := range []struct{ name, route, field string }{
		{"model_path empty", `,"model_path":""`, "routes[0].model_path"},
		{"model_version empty object", `,"model_version":{}`, "routes[0].model_version"},
		{"model_version empty body_path", `,"model_version":{"body_path":""}`, "routes[0].model_version"},
	} {
		t.Run(c.name, func(t *testing.T) { mustRefuseNaming(t, oneRouteConfig(c.route, ""), c.field) })
	}
}

// Values no request or header can ever carry: the route would never
// match, or every background call would be refused by the proxy.
func TestConfigRefusesStringsNoRequestCarries(t *testing.T) {
	for _, c := range []struct{ name, cfg, field string }{
		{"method with a space", oneRouteConfig(`,"methods":["PO ST"]`, ""), "routes[0].methods[0]"},
		{"path_prefix with a space", `{"routes":[{"name":"c","kind":"chat","path_prefix":"/v1 chat"}]}`, "routes[0].path_prefix"},
		{"path_prefix not UTF-8", `{"routes":[{"name":"c","kind":"chat","path_prefix":"/v1/` + "\xff\xfe" + `"}]}`, "routes[0].path_prefix"},
		{"path_exact with a control char", `{"routes":[{"name":"c","kind":"chat","path_exact":"/v1/` + `\u0001` + `"}]}`, "routes[0].path_exact"},
		{"upstream_authority with CRLF", oneRouteConfig("", `"upstream_authority":"model\r\nx-injected: 1",`), "upstream_authority"},
		{"upstream_cluster not UTF-8", oneRouteConfig("", `"upstream_cluster":"`+"\xff"+`",`), "upstream_cluster"},
	} {
		t.Run(c.name, func(t *testing.T) { mustRefuseNaming(t, c.cfg, c.field) })
	}
}

// The clusters, authorities and paths of the filter's own calls (L2, the
// embedding model) and the purge API's path go into headers Envoy refuses,
// or a request path no request carries: every such call would fail at run
// time (an L2 breaker open for good, no semantic lookup ever) and every
// purge request miss the API, where a config error says so at start.
func TestConfigRefusesCallTargetsNoHeaderCarries(t *testing.T) {
	l2 := func(member string) string {
		return oneRouteConfig("", `"l2":{"cluster":"webdis",`+member+`},`)
	}
	sem := func(member string) string {
		return oneRouteConfig(`,"ttl":"1h","semantic":{"embedding":{"cluster":"embeddings","model":"e5",`+member+`}}`, "")
	}
	for _, c := range []struct{ name, cfg, field string }{
		{"l2 authority with CRLF", l2(`"authority":"webdis\r\nx-injected: 1"`), "l2.authority"},
		{"l2 authority with a space", l2(`"authority":"web dis"`), "l2.authority"},
		{"l2 cluster not UTF-8", oneRouteConfig("", `"l2":{"cluster":"`+"\xff"+`"},`), "l2.cluster"},
		{"embedding authority with CRLF", sem(`"authority":"e5\r\nx-injected: 1"`), "semantic.embedding.authority"},
		{"embedding cluster with a control char", oneRouteConfig(`,"ttl":"1h","semantic":{"embedding":{"cluster":"emb\u0001","model":"e5"}}`, ""), "semantic.embedding.cluster"},
		{"embedding path with a space", sem(`"path":"/v1/embed dings"`), "semantic.embedding.path"},
		{"purge path with a space", oneRouteConfig("", `"purge":{"path":"/_purge me","token":"0123456789abcdef"},`), "purge.path"},
		{"purge path with a control char", oneRouteConfig("", `"purge":{"path":"/_purge\u0007","token":"0123456789abcdef"},`), "purge.path"},
	} {
		t.Run(c.name, func(t *testing.T) { mustRefuseNaming(t, c.cfg, c.field) })
	}
}

// The route-overlap check compares every route with every earlier one: a
// 5 MB configuration of 100,000 distinct routes kept ParseConfig (the
// plugin's start, and the canary VM) busy for tens of seconds natively,
// far longer in wasm. More than maxRoutes routes are refused, naming
// routes; maxRoutes are parsed.
func TestParseConfigRefusesTooManyRoutes(t *testing.T) {
	config := func(n int) []byte {
		var b strings.Builder
		b.WriteString(`{"routes":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"r%d","kind":"chat","path_exact":"/p%d"}`, i, i)
		}
		b.WriteString(`]}`)
		return []byte(b.String())
	}
	if _, err := ParseConfig(config(maxRoutes)); err != nil {
		t.Fatalf("%d routes: %v", maxRoutes, err)
	}
	if _, err := ParseConfig(config(100000)); err == nil || !strings.Contains(err.Error(), "routes") {
		t.Fatalf("100,000 routes: %v; want an error naming routes", err)
	}
}
