package envoyrun

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ErrPortTaken says Envoy exited because a port (or its --base-id's domain
// socket) was in use, so the caller starts it again on other ports. Envoy
// writes "unable to bind domain socket with base_id=…, id=…, errno=N" for
// any failure to bind that socket, and only errno 98 (EADDRINUSE) means it
// is taken (Envoy itself throws HotRestartDomainSocketInUseException only
// for that errno). portTaken matches the text whatever the errno, so an
// Envoy that cannot bind the socket at all (errno 13, a sandbox refusing
// abstract sockets; errno 2, a --socket-path directory that is missing) is
// reported as "a port Envoy was to bind is in use" and started again on
// new ports, which cannot help, and the final error names the wrong cause.
// Expected: only errno=98 wraps ErrPortTaken.
func TestFollowup223DomainSocketErrorOtherThanInUseIsNotPortTaken(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "envoy")
	for _, errno := range []string{"13", "2"} {
		body := "#!/bin/sh\necho \"[critical][main] error initializing config: unable to bind domain socket with base_id=21000, id=210000, errno=" +
			errno + " (see --base-id option)\"\nexit 1\n"
		if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Start(Options{Bin: script, Config: "x", Admin: "http://127.0.0.1:1", Log: filepath.Join(dir, "log"), ReadyTimeout: 10 * time.Second})
		if err == nil {
			t.Fatal("Start succeeded")
		}
		if errors.Is(err, ErrPortTaken) {
			t.Errorf("errno=%s (not EADDRINUSE) reported as ErrPortTaken: %v", errno, err)
		}
	}
}

// The case ErrPortTaken is for — a port Envoy was to bind is taken — when
// the port taken is the admin's: Envoy exits at once ("cannot bind …:
// Address already in use"), but Start keeps polling /ready on that port,
// where the process holding it answers nothing (any non-HTTP server, or a
// listener not yet accepting, as e2e/harness_ports_test.go holds one).
// waitReady's http.Get has no timeout, so Start never sees Envoy exit,
// never reaches its own ReadyTimeout, and hangs: the test run stalls until
// go test's timeout instead of starting Envoy again on other ports.
// Expected: Start returns ErrPortTaken soon after Envoy exits (at the
// latest after ReadyTimeout).
func TestFollowup223StartReturnsWhenTheTakenAdminPortDoesNotAnswer(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close() // never accepts: the kernel completes connections, nobody answers
	addr := held.Addr().String()
	dir := t.TempDir()
	script := filepath.Join(dir, "envoy")
	body := "#!/bin/sh\necho \"[critical][main] error initializing config: cannot bind '" + addr + "': Address already in use\"\nexit 1\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Start(Options{Bin: script, Config: "x", Admin: "http://" + addr, Log: filepath.Join(dir, "log"), ReadyTimeout: 2 * time.Second})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrPortTaken) {
			t.Fatalf("got %v, want ErrPortTaken", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("Start still waiting 15 s after Envoy exited (ReadyTimeout 2 s): the admin port %s it could not bind holds a listener that never answers /ready", addr)
	}
}
