package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Probes from the adversarial review of the merged hardening (issue 13).

// TestHostileClientUnauthorizedPurgeBodyIgnored: a purge with a wrong token
// gets 401 at its headers; its body — sent with the headers, or streamed
// after the 401 came back — never reaches the purge handler.
func TestHostileClientUnauthorizedPurgeBodyIgnored(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: hostileRoutes})
	url := e.URL + chatPath
	victim := chat("an entry no wrong token may purge")
	expectCS(t, do(t, "POST", url, victim, "authorization", "Bearer tenant-a"), "stored")

	r := do(t, "POST", e.URL+"/modelcache/purge", `{"all":true}`, "authorization", "Bearer wrong-token")
	if r.Status != 401 {
		t.Fatalf("wrong token: %d", r.Status)
	}
	// Chunked: headers first, the body only after the 401 arrived.
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "POST /modelcache/purge HTTP/1.1\r\nHost: models\r\nAuthorization: Bearer wrong-token\r\n"+
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("chunked wrong token: %d", res.StatusCode)
	}
	body := `{"all":true}`
	fmt.Fprintf(conn, "%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	_, _ = br.ReadByte() // whatever Envoy does with the rest: wait for it

	expectCS(t, do(t, "POST", url, victim, "authorization", "Bearer tenant-a"), "hit")
	if n := e.Stat("wasmcustom.modelcache.purges"); n != 0 {
		t.Fatalf("purges = %d after only unauthorized purge calls", n)
	}
}
