package e2e

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// When a port Envoy was to bind is taken between its pick and Envoy's
// bind (CI once saw Envoy exit with "Address already in use"), the
// harness starts Envoy again on other ports instead of failing the test.
func TestEnvoyStartsAgainWhenItsPortIsTaken(t *testing.T) {
	requireEnvoy(t)
	held, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	taken := held.Addr().(*net.TCPAddr).Port
	picks := 0
	defer func(old func(*testing.T) (int, int)) { pickPorts = old }(pickPorts)
	pickPorts = func(t *testing.T) (int, int) {
		picks++
		if picks == 1 {
			return taken, freePort(t)
		}
		return freePort(t), freePort(t)
	}
	e := startEnvoy(t, envoyOpts{Config: chatRoutes})
	if picks != 2 || strings.HasSuffix(e.URL, ":"+strconv.Itoa(taken)) {
		t.Fatalf("%d picks, listener %s (port %d was taken)", picks, e.URL, taken)
	}
	body := chat("Name a river that starts again.")
	first := do(t, "POST", e.URL+"/v1/chat/completions", body, "authorization", "Bearer tenant-a")
	expectCS(t, first, "modelcache; fwd=miss", "stored")
}
