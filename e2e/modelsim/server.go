package modelsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server. The zero value is a healthy "v1" model with
// 16-dimensional embeddings and no logging.
type Options struct {
	// Defaults are the knobs at start and after Reset (POST /__sim/reset).
	// An empty Defaults.ModelVersion means DefaultModelVersion.
	Defaults Knobs
	// EmbeddingDims is the vector length when a request names no
	// dimensions; 0 means DefaultEmbeddingDims.
	EmbeddingDims int
	// EmbeddingLog is how many embeddings calls EmbeddingCalls remembers
	// (oldest dropped first); 0 means 256.
	EmbeddingLog int
	// MaxHold bounds how long FaultTimeout holds a request before giving up
	// with 504; 0 means 10 minutes.
	MaxHold time.Duration
	// Now is the clock used only for nondeterministic created timestamps;
	// nil means time.Now.
	Now func() time.Time
	// Logf, when set, receives one line per request.
	Logf func(format string, args ...any)
	// H2C makes Start serve HTTP/2 without TLS (prior knowledge) besides
	// HTTP/1.1, as a model server behind a proxy speaking HTTP/2 upstream.
	H2C bool
}

// EmbeddingCall is one embeddings request as the model received it.
type EmbeddingCall struct {
	Model string   `json:"model"`
	Items []string `json:"items"`
}

// Stats is a snapshot of the counters, as served by GET /__sim/stats.
type Stats struct {
	// Total counts model calls: POSTs to model endpoints, including those
	// answered with a fault or a 400. Control calls never count.
	Total int64 `json:"total"`
	// ByPath counts model calls per endpoint; every endpoint is present.
	ByPath map[string]int64 `json:"by_path"`
	// InFlight is the number of model calls being handled now.
	InFlight int64 `json:"in_flight"`
	// MaxInFlight is the high-water mark of InFlight since the last reset;
	// coalescing tests assert it stays 1.
	MaxInFlight int64 `json:"max_in_flight"`
	// Aborted counts model calls whose body never arrived whole: the
	// client (a proxy) sent the headers, then closed the connection
	// (HTTP/1.1) or reset the stream (HTTP/2). They are part of Total.
	Aborted int64 `json:"aborted"`
	// Conns is the number of client connections open now, MaxConns its
	// high-water mark since the last reset (only when served by Start).
	Conns    int64 `json:"conns"`
	MaxConns int64 `json:"max_conns"`
	// EmbeddingCalls are the item lists of recent embeddings calls, oldest
	// first; batching tests assert that only the missing items arrived.
	EmbeddingCalls []EmbeddingCall `json:"embedding_calls"`
	// ModelVersion is the current global version.
	ModelVersion string `json:"model_version"`
	// Knobs are the current global knobs.
	Knobs Knobs `json:"knobs"`
}

// Server is the simulated model server. Serve it with Handler (for
// httptest.NewServer) or Start. All methods are safe for concurrent use.
type Server struct {
	defaults Knobs
	dims     int
	logSize  int
	maxHold  time.Duration
	now      func() time.Time
	logf     func(string, ...any)
	h2c      bool

	mu     sync.Mutex // guards knobs, embLog, paused
	knobs  Knobs
	embLog []EmbeddingCall
	paused chan struct{} // non-nil while paused; closed by Resume
	script Script        // non-nil: answers model calls instead of the model

	total       atomic.Int64
	byPath      map[string]*atomic.Int64 // fixed keys: ModelPaths
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
	aborted     atomic.Int64
	conns       atomic.Int64
	maxConns    atomic.Int64
	seq         atomic.Uint64 // call numbers for nondeterministic answers

	// notify is closed and replaced whenever a counter changes, so waiters
	// (WaitCalls, WaitInFlight) need no polling.
	notifyMu sync.Mutex
	notify   chan struct{}

	done      chan struct{} // closed by Close/Shutdown: releases held calls
	closeOnce sync.Once

	srvMu sync.Mutex
	srv   *http.Server
	ln    net.Listener
}

// New returns a Server. It panics if opts.Defaults are invalid, since that
// is a mistake in the test or flag wiring, not a runtime condition; call
// Defaults.Validate first to handle it gracefully.
func New(opts Options) *Server {
	if opts.Defaults.ModelVersion == "" {
		opts.Defaults.ModelVersion = DefaultModelVersion
	}
	if err := opts.Defaults.Validate(); err != nil {
		panic("modelsim: invalid default knobs: " + err.Error())
	}
	s := &Server{
		defaults: opts.Defaults,
		knobs:    opts.Defaults,
		dims:     opts.EmbeddingDims,
		logSize:  opts.EmbeddingLog,
		maxHold:  opts.MaxHold,
		now:      opts.Now,
		logf:     opts.Logf,
		h2c:      opts.H2C,
		byPath:   make(map[string]*atomic.Int64, len(ModelPaths)),
		notify:   make(chan struct{}),
		done:     make(chan struct{}),
	}
	if s.dims <= 0 {
		s.dims = DefaultEmbeddingDims
	}
	if s.logSize <= 0 {
		s.logSize = 256
	}
	if s.maxHold <= 0 {
		s.maxHold = 10 * time.Minute
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, p := range ModelPaths {
		s.byPath[p] = new(atomic.Int64)
	}
	return s
}

// Script answers one model call in place of the simulated model, for tests
// of hostile upstreams: it gets the call after it was counted and its body
// read, and writes whatever it likes (any status, headers, body, or an abort
// by panicking with http.ErrAbortHandler). It reports false to let the
// simulated model answer as usual.
type Script func(w http.ResponseWriter, r *http.Request, body []byte) bool

// SetScript installs f (nil removes it) for every later model call.
func (s *Server) SetScript(f Script) {
	s.mu.Lock()
	s.script = f
	s.mu.Unlock()
}

func (s *Server) scripted() Script {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.script
}

// Handler returns the HTTP handler serving the model and control endpoints.
func (s *Server) Handler() http.Handler { return s }

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
// It returns the base URL, such as "http://127.0.0.1:41234".
func (s *Server) Start(addr string) (string, error) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		return "", errors.New("modelsim: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second, ConnState: s.connState}
	if s.h2c {
		s.srv.Protocols = new(http.Protocols)
		s.srv.Protocols.SetHTTP1(true)
		s.srv.Protocols.SetUnencryptedHTTP2(true)
	}
	go s.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Close
	return "http://" + ln.Addr().String(), nil
}

// Addr is the listening address after Start, else nil.
func (s *Server) Addr() net.Addr {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// URL is the base URL after Start, else "".
func (s *Server) URL() string {
	if a := s.Addr(); a != nil {
		return "http://" + a.String()
	}
	return ""
}

// Close aborts held calls (timeout fault, pause, latency), closes the
// listener and all connections. It is safe to call more than once and when
// only Handler was used.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// Shutdown aborts held calls, then lets in-progress answers finish until ctx
// ends, as http.Server.Shutdown does.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.done) })
	s.srvMu.Lock()
	srv := s.srv
	s.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// Knobs returns the current global knobs.
func (s *Server) Knobs() Knobs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.knobs
}

// SetKnobs replaces the global knobs; an empty ModelVersion means the
// default version. Invalid knobs are rejected and leave the old ones in
// place.
func (s *Server) SetKnobs(k Knobs) error {
	return s.UpdateKnobs(func(cur *Knobs) { *cur = k })
}

// UpdateKnobs applies f to a copy of the global knobs and installs the
// result if valid, atomically with respect to model calls.
func (s *Server) UpdateKnobs(f func(*Knobs)) error {
	return s.update(func(k *Knobs) error { f(k); return nil })
}

// update installs f's edit of the knobs unless f fails or the result is
// invalid.
func (s *Server) update(f func(*Knobs) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.knobs
	if err := f(&k); err != nil {
		return err
	}
	if k.ModelVersion == "" {
		k.ModelVersion = s.defaults.ModelVersion
	}
	if err := k.Validate(); err != nil {
		return err
	}
	s.knobs = k
	return nil
}

// ModelVersion is the current global model version.
func (s *Server) ModelVersion() string { return s.Knobs().ModelVersion }

// Calls is the number of model calls to path (one of the Path constants);
// 0 for any other path.
func (s *Server) Calls(path string) int64 {
	if c, ok := s.byPath[path]; ok {
		return c.Load()
	}
	return 0
}

// TotalCalls is the number of model calls to all endpoints.
func (s *Server) TotalCalls() int64 { return s.total.Load() }

// InFlight is the number of model calls being handled now.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// MaxInFlight is the most model calls handled at once since the last reset.
func (s *Server) MaxInFlight() int64 { return s.maxInFlight.Load() }

// EmbeddingCalls returns the item lists of the remembered embeddings calls,
// oldest first (see Options.EmbeddingLog).
func (s *Server) EmbeddingCalls() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]string, len(s.embLog))
	for i, c := range s.embLog {
		out[i] = append([]string(nil), c.Items...)
	}
	return out
}

// Stats returns a snapshot of counters, embeddings log and knobs.
func (s *Server) Stats() Stats {
	st := Stats{
		Total:       s.total.Load(),
		ByPath:      make(map[string]int64, len(s.byPath)),
		InFlight:    s.inFlight.Load(),
		MaxInFlight: s.maxInFlight.Load(),
		Aborted:     s.aborted.Load(),
		Conns:       s.conns.Load(),
		MaxConns:    s.maxConns.Load(),
	}
	for p, c := range s.byPath {
		st.ByPath[p] = c.Load()
	}
	s.mu.Lock()
	st.EmbeddingCalls = make([]EmbeddingCall, len(s.embLog))
	for i, c := range s.embLog {
		st.EmbeddingCalls[i] = EmbeddingCall{Model: c.Model, Items: append([]string(nil), c.Items...)}
	}
	st.Knobs = s.knobs
	st.ModelVersion = s.knobs.ModelVersion
	s.mu.Unlock()
	return st
}

// ResetCounters zeroes the call counters and the embeddings log. The
// high-water mark restarts from the calls in flight now.
func (s *Server) ResetCounters() {
	s.total.Store(0)
	for _, c := range s.byPath {
		c.Store(0)
	}
	s.maxInFlight.Store(s.inFlight.Load())
	s.aborted.Store(0)
	s.maxConns.Store(s.conns.Load())
	s.mu.Lock()
	s.embLog = nil
	s.mu.Unlock()
	s.changed()
}

// Reset restores the default knobs, resumes a paused server and resets the
// counters: the state of a fresh Server, minus open connections.
func (s *Server) Reset() {
	s.mu.Lock()
	s.knobs = s.defaults
	s.mu.Unlock()
	s.Resume()
	s.ResetCounters()
}

// Pause makes model calls wait, after they are counted and in flight, until
// Resume. Coalescing tests use it to hold the leader's upstream call while
// followers pile up, without sleeping. Knobs are read when a call resumes,
// so faults configured during the pause apply to the held calls.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused == nil {
		s.paused = make(chan struct{})
	}
}

// Resume releases the calls held by Pause.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused != nil {
		close(s.paused)
		s.paused = nil
	}
}

// WaitCalls blocks until at least n model calls reached path ("" for all
// endpoints), or ctx ends.
func (s *Server) WaitCalls(ctx context.Context, path string, n int64) error {
	return s.waitUntil(ctx, func() bool {
		if path == "" {
			return s.TotalCalls() >= n
		}
		return s.Calls(path) >= n
	})
}

// WaitInFlight blocks until exactly n model calls are in flight, or ctx
// ends. With Pause, it tells a test that its requests reached the model.
func (s *Server) WaitInFlight(ctx context.Context, n int64) error {
	return s.waitUntil(ctx, func() bool { return s.InFlight() == n })
}

func (s *Server) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		s.notifyMu.Lock()
		ch := s.notify
		s.notifyMu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("modelsim: wait: %w", ctx.Err())
		}
	}
}

func (s *Server) changed() {
	s.notifyMu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.notifyMu.Unlock()
}

// begin counts a model call and marks it in flight.
func (s *Server) begin(path string) uint64 {
	s.total.Add(1)
	s.byPath[path].Add(1)
	n := s.inFlight.Add(1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	seq := s.seq.Add(1)
	s.changed()
	return seq
}

// connState tracks open client connections.
func (s *Server) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		raise(&s.maxConns, s.conns.Add(1))
	case http.StateClosed, http.StateHijacked:
		s.conns.Add(-1)
	default:
		return
	}
	s.changed()
}

// raise makes m at least n.
func raise(m *atomic.Int64, n int64) {
	for {
		v := m.Load()
		if n <= v || m.CompareAndSwap(v, n) {
			return
		}
	}
}

// abort counts a model call whose body never arrived.
func (s *Server) abort() {
	s.aborted.Add(1)
	s.changed()
}

// Aborted is the number of model calls whose body never arrived (see
// Stats.Aborted).
func (s *Server) Aborted() int64 { return s.aborted.Load() }

// WaitAborted blocks until at least n model calls were aborted before
// their body arrived, or ctx ends.
func (s *Server) WaitAborted(ctx context.Context, n int64) error {
	return s.waitUntil(ctx, func() bool { return s.Aborted() >= n })
}

func (s *Server) end() {
	s.inFlight.Add(-1)
	s.changed()
}

// takeKnobs returns the knobs for one model call, consuming one fail_next.
func (s *Server) takeKnobs() Knobs {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.knobs
	if s.knobs.FailNext > 0 {
		if k.Status == 0 && k.Fault == FaultNone {
			k.Status = http.StatusInternalServerError
		}
		s.knobs.FailNext--
		if s.knobs.FailNext == 0 {
			s.knobs.Status, s.knobs.Fault = 0, FaultNone
		}
	}
	return k
}

func (s *Server) logEmbedding(c *EmbeddingCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.embLog) >= s.logSize {
		s.embLog = append(s.embLog[:0:0], s.embLog[len(s.embLog)-s.logSize+1:]...)
	}
	s.embLog = append(s.embLog, *c)
}

func (s *Server) pausedCh() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}
