// Command modelsim serves the deterministic model simulator (package
// e2e/modelsim) for Envoy end-to-end runs, benchmarks and the demo.
//
//	go run ./e2e/cmd/modelsim -listen 127.0.0.1:8000 -latency 200ms
//
// It prints "modelsim listening on http://ADDR" on stdout once it accepts
// connections, logs one line per request on stderr (unless -quiet), and
// shuts down cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "modelsim:", err)
		os.Exit(1)
	}
}

// run is main without the process: it serves until ctx ends, which makes
// the flag handling and the ready line testable.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("modelsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8000", "address to listen on (port 0 picks a free one)")
	latency := fs.Duration("latency", 0, "latency added before every model response (global latency_ms knob)")
	chunkDelay := fs.Duration("chunk-delay", 0, "delay between stream events (global chunk_delay_ms knob)")
	version := fs.String("model-version", modelsim.DefaultModelVersion, "model version: x-model-version and the seed of every answer")
	dims := fs.Int("dims", modelsim.DefaultEmbeddingDims, "embedding dimensions when a request names none")
	quiet := fs.Bool("quiet", false, "do not log requests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	opts := modelsim.Options{
		Defaults: modelsim.Knobs{
			ModelVersion: *version,
			LatencyMS:    int(*latency / time.Millisecond),
			ChunkDelayMS: int(*chunkDelay / time.Millisecond),
		},
		EmbeddingDims: *dims,
	}
	if err := opts.Defaults.Validate(); err != nil {
		return err
	}
	if *dims < 1 {
		return fmt.Errorf("-dims: must be >= 1, got %d", *dims)
	}
	if !*quiet {
		opts.Logf = log.New(stderr, "modelsim: ", log.LstdFlags|log.Lmicroseconds).Printf
	}
	sim := modelsim.New(opts)
	url, err := sim.Start(*listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "modelsim listening on %s\n", url)

	<-ctx.Done()
	// Held calls (timeout fault, pause) are aborted at once; answers in
	// progress get a few seconds to finish.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sim.Shutdown(sctx); err != nil {
		sim.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
