package wasmhost

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWASI(t *testing.T) {
	clock := NewFakeClock(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC))
	h := newHost(t, Config{Workers: 1, Clock: clock, Env: map[string]string{"GOGC": "400", "MODE": "test"}, LogLevel: LogWarn})
	op := func(op string, kv ...string) *ClientResponse {
		return mustExchange(t, h, 0, Request{Headers: req(op, kv...)})
	}
	t.Run("GC works", func(t *testing.T) {
		if r := op("gc"); r.Status != 200 || len(h.FailedVMs()) != 0 {
			t.Fatalf("gc: %+v %v", r, h.FailedVMs())
		}
	})
	t.Run("clocks", func(t *testing.T) {
		r := op("time")
		want := strconv.FormatInt(clock.Now().UnixNano(), 10)
		if header(r.Headers, "x-proxy-time") != want || header(r.Headers, "x-go-time") != want {
			t.Fatalf("times %q, want %s", r.Headers, want)
		}
		clock.Advance(time.Hour)
		r = op("time")
		if header(r.Headers, "x-go-time") != strconv.FormatInt(clock.Now().UnixNano(), 10) {
			t.Fatal("guest did not see the clock move")
		}
	})
	t.Run("environ", func(t *testing.T) {
		if r := op("env", "x-name", "MODE"); header(r.Headers, "x-env") != "test" {
			t.Fatalf("MODE = %q", header(r.Headers, "x-env"))
		}
	})
	t.Run("stdout and stderr go to the log", func(t *testing.T) {
		op("stdio")
		levels := map[string]LogLevel{}
		for _, l := range h.Logs() {
			if strings.HasPrefix(l.Msg, "hello std") {
				levels[l.Msg] = l.Level
			}
		}
		if levels["hello stdout"] != LogInfo || levels["hello stderr"] != LogError {
			t.Fatalf("stdio lines %v", levels)
		}
	})
	t.Run("log level", func(t *testing.T) {
		if r := op("log-level"); header(r.Headers, "x-level") != "3" {
			t.Fatalf("level %q", header(r.Headers, "x-level"))
		}
	})
}

// TestPollOneoffSucceeds: with Envoy ≥ 1.39's poll_oneoff (success, zero
// events) a Go sleep busy-spins but returns; an ENOSYS stub makes the Go
// runtime throw "poll_oneoff failed" (golang/go#78513).
func TestPollOneoffSucceeds(t *testing.T) {
	h := newHost(t, Config{Workers: 1, Clock: RealClock{}})
	r := mustExchange(t, h, 0, Request{Headers: req("sleep")})
	if r.Status != 200 || string(r.Body) != "slept" || len(h.FailedVMs()) != 0 {
		t.Fatalf("sleep: %+v %v", r, h.FailedVMs())
	}
	if n := h.HostCallCount("wasi_snapshot_preview1.poll_oneoff"); n == 0 {
		t.Fatal("time.Sleep did not call poll_oneoff")
	}
}

func TestRandomIsSeededAndInjectable(t *testing.T) {
	random := func(cfg Config) string {
		h := newHost(t, cfg)
		return header(mustExchange(t, h, 0, Request{Headers: req("random")}).Headers, "x-random")
	}
	a, b := random(Config{Workers: 1}), random(Config{Workers: 1})
	if a == "" || a != b {
		t.Fatalf("default source not deterministic: %s vs %s", a, b)
	}
	zeros := random(Config{Workers: 1, Rand: bytes.NewReader(make([]byte, 1<<20))})
	if zeros != hex.EncodeToString(make([]byte, 16)) {
		t.Fatalf("Config.Rand not used: %s", zeros)
	}
}

func TestGoRuntimeImportsAreProvided(t *testing.T) {
	imports := testModule.Imports()
	for _, want := range []string{"poll_oneoff", "fd_fdstat_get", "fd_fdstat_set_flags", "fd_prestat_get", "sched_yield", "proc_exit"} {
		if !slices.Contains(imports, "wasi_snapshot_preview1."+want) {
			t.Errorf("test guest does not import %s; the os package changed?", want)
		}
	}
}

func TestProperties(t *testing.T) {
	h := newHost(t, Config{Workers: 1, RootID: "root-a", VMID: "vm-a",
		Properties: map[string][]byte{Path("node", "id"): []byte("node-1")}})
	h.cfg.Upstream = func(u *UpstreamRequest) { u.Respond(200, nil, nil) }
	prop := func(path string, extra map[string][]byte) (Status, string) {
		r := mustExchange(t, h, 0, Request{Headers: req("property", "x-path", path), Properties: extra})
		n, _ := strconv.Atoi(header(r.Headers, "x-status"))
		v, _ := hex.DecodeString(header(r.Headers, "x-value"))
		return Status(n), string(v)
	}
	tests := []struct {
		path  string
		extra map[string][]byte
		want  string
		st    Status
	}{
		{"plugin_vm_id", nil, "vm-a", StatusOK},
		{"plugin_root_id", nil, "root-a", StatusOK},
		{"plugin_name", nil, "modelcache", StatusOK},
		{"node/id", nil, "node-1", StatusOK},
		{"request/path", nil, "/v1/chat", StatusOK},
		{"request/headers/x-op", nil, "property", StatusOK},
		{"tenant", map[string][]byte{"tenant": []byte("acme")}, "acme", StatusOK},
		{"no/such/thing", nil, "", StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			st, v := prop(tt.path, tt.extra)
			if st != tt.st || v != tt.want {
				t.Fatalf("get_property(%s) = %v %q, want %v %q", tt.path, st, v, tt.st, tt.want)
			}
		})
	}
	t.Run("set_property then get", func(t *testing.T) {
		r := mustExchange(t, h, 0, Request{Headers: req("set-property", "x-path", "my.state", "x-value", "42")})
		if header(r.Headers, "x-status") != "0" || header(r.Headers, "x-get-status") != "0" || header(r.Headers, "x-value") != "42" {
			t.Fatalf("%q", r.Headers)
		}
	})
}
