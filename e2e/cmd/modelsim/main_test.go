package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer safe for the server's logging goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-model-version", "v3", "-latency", "1ms"}, outW, &stderr)
		outW.Close()
	}()

	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("no ready line: %v (stderr %q)", err, stderr.String())
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "modelsim listening on ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("ready line = %q", line)
	}
	go io.Copy(io.Discard, outR) //nolint:errcheck

	resp, err := http.Post(url+"/v1/embeddings", "application/json", strings.NewReader(`{"model":"e","input":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("x-model-version") != "v3" {
		t.Errorf("got %d, version %q", resp.StatusCode, resp.Header.Get("x-model-version"))
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if log := stderr.String(); !strings.Contains(log, "POST /v1/embeddings 200") {
		t.Errorf("request not logged: %q", log)
	}
}

func TestRunFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"-nope"}},
		{"stray argument", []string{"extra"}},
		{"bad version", []string{"-model-version", "a\nb"}},
		{"bad dims", []string{"-dims", "0"}},
		{"bad listen", []string{"-listen", "not an address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs syncBuffer
			if err := run(context.Background(), tt.args, &out, &errs); err == nil {
				t.Errorf("run(%q) succeeded", tt.args)
			}
			if out.String() != "" {
				t.Errorf("printed %q", out.String())
			}
		})
	}
}
