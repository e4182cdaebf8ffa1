package wasmhost

import (
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// Clock is the host's only source of time. Wall time answers WASI
// clock_time_get(REALTIME) and proxy_get_current_time_nanoseconds; Nanotime
// answers clock_time_get(MONOTONIC) and drives tick timers and HTTP-call
// timeouts. Injecting it is what makes TTL / stale-while-revalidate tests
// deterministic (see wazero's RATIONALE "Why default to fake time?").
type Clock interface {
	Now() time.Time
	Nanotime() int64
}

// RealClock reads the machine's clocks.
type RealClock struct{}

var processStart = time.Now()

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Nanotime returns nanoseconds since the process started (monotonic).
func (RealClock) Nanotime() int64 { return int64(time.Since(processStart)) }

// FakeClock is a Clock that only moves when told to. Wall and monotonic time
// advance together. It is safe for concurrent use.
type FakeClock struct {
	mu   sync.Mutex
	wall time.Time
	mono int64
}

// DefaultFakeTime is where a zero-configured FakeClock starts: a fixed,
// recognisable instant so logs and stored timestamps are reproducible.
var DefaultFakeTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// NewFakeClock returns a FakeClock reading start (DefaultFakeTime if zero)
// with a monotonic reading of 1s (Go's runtime treats 0 specially).
func NewFakeClock(start time.Time) *FakeClock {
	if start.IsZero() {
		start = DefaultFakeTime
	}
	return &FakeClock{wall: start, mono: int64(time.Second)}
}

// Now returns the current fake wall time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

// Nanotime returns the current fake monotonic time.
func (c *FakeClock) Nanotime() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// Advance moves both clocks forward by d (negative d is ignored: monotonic
// time never goes back).
func (c *FakeClock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.wall = c.wall.Add(d)
	c.mono += int64(d)
	c.mu.Unlock()
}

// Set moves the wall clock to t. The monotonic clock advances by the same
// amount if t is later, and stays put if t is earlier (a wall-clock step
// backwards, as NTP may do).
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	if d := t.Sub(c.wall); d > 0 {
		c.mono += int64(d)
	}
	c.wall = t
	c.mu.Unlock()
}

// newDefaultRand is the deterministic random source used when Config.Rand is
// nil: every Host starts from the same seed so runs are reproducible.
func newDefaultRand() io.Reader {
	var seed [32]byte
	copy(seed[:], "modelcache wasmhost default seed")
	return rand.NewChaCha8(seed)
}

// lockedReader serialises reads of a shared io.Reader (VMs call random_get
// from their own goroutines).
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return io.ReadFull(l.r, p)
}
