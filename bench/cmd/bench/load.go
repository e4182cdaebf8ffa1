package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The Go load generator: for scenarios that must look at every response
// (Cache-Status, completion times) rather than count them, at a fixed rate
// (open loop, so a slow response does not slow the offered load).

func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true,
			IdleConnTimeout: 5 * time.Minute},
		Timeout: 60 * time.Second,
	}
}

// reply is what one request saw.
type reply struct {
	Start   time.Time
	Done    time.Time
	Status  int
	Cache   string // Cache-Status, X-Cache-Status or x-cache: whichever the system sends
	Err     error
	BodyLen int
}

func (p reply) Latency() time.Duration { return p.Done.Sub(p.Start) }

// The load runs long enough for the runner's allocations to matter: collect
// garbage less often (the heap stays small either way).
func init() { debug.SetGCPercent(400) }

func post(ctx context.Context, c *http.Client, url string, body []byte, headers ...string) reply {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return reply{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	p := reply{Start: time.Now()}
	res, err := c.Do(req)
	if err != nil {
		p.Done, p.Err = time.Now(), err
		return p
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	p.Done = time.Now()
	p.Status, p.Err, p.BodyLen = res.StatusCode, err, int(n)
	p.Cache = res.Header.Get("Cache-Status")
	if p.Cache == "" {
		p.Cache = res.Header.Get("X-Cache-Status")
	}
	if p.Cache == "" {
		p.Cache = res.Header.Get("X-Cache")
	}
	return p
}

// warmConns opens n keep-alive connections (one client each), so a burst
// measures the proxy rather than connection setup; with Envoy
// --concurrency 2 the kernel spreads them over both workers.
func warmConns(ctx context.Context, base string, n int) ([]*http.Client, error) {
	cs := make([]*http.Client, n)
	for i := range cs {
		cs[i] = newClient(1)
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/warm/", nil)
		res, err := cs[i].Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	return cs, nil
}

// burst sends one request per client, all released at once.
func burst(ctx context.Context, clients []*http.Client, url string, body []byte, headers ...string) []reply {
	out := make([]reply, len(clients))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *http.Client) {
			defer wg.Done()
			<-start
			out[i] = post(ctx, c, url, body, headers...)
		}(i, c)
	}
	time.Sleep(20 * time.Millisecond) // every goroutine parked on start
	close(start)
	wg.Wait()
	return out
}

// request is one request of an open-loop load.
type request struct {
	URL  string
	Body []byte
}

// sample is one open-loop reply, kept small and pointer-free: a soak holds
// a million of them, and the runner's own garbage collector must not add
// pauses to the latencies it measures (it shares CPU 1 with the origin).
type sample struct {
	At     int64 // ns from the load's start to the request's start
	LatUS  int32
	Status int16
	Class  uint8 // classify's verdict on the cache header
	Err    bool
}

// Reply classes (see classify).
const (
	clsFresh  uint8 = iota // served from cache, fresh
	clsStale               // served from cache while it is being refreshed
	clsMiss                // waited for the origin (a coalesced follower too)
	clsLeader              // went to the origin itself
)

// openLoop offers rate requests per second for d; next(i) picks the i-th
// request's path and body; class maps each reply's cache header to a class.
// It returns every reply in send order, the start time and the number of
// requests started more than 10 ms late.
func openLoop(ctx context.Context, rate int, d time.Duration, conns int, headers []string,
	next func(i int) request, class func(cache string) uint8) ([]sample, time.Time, int64) {
	n := int(float64(rate) * d.Seconds())
	out := make([]sample, n)
	client := newClient(conns)
	jobs := make(chan int, conns)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				rq := next(i)
				p := post(ctx, client, rq.URL, rq.Body, headers...)
				out[i] = sample{At: int64(p.Start.Sub(t0)), LatUS: int32(p.Latency().Microseconds()),
					Status: int16(p.Status), Class: class(p.Cache), Err: p.Err != nil}
			}
		}()
	}
	var late atomic.Int64
	interval := time.Second / time.Duration(rate)
	sent := 0
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := t0.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		} else if wait < -10*time.Millisecond {
			late.Add(1)
		}
		jobs <- i
		sent++
	}
	close(jobs)
	wg.Wait()
	client.CloseIdleConnections()
	return out[:sent], t0, late.Load()
}

// latencies returns the sorted latencies (µs) of the samples that pass keep.
func latencies(ss []sample, keep func(sample) bool) []float64 {
	var v []float64
	for _, p := range ss {
		if keep != nil && !keep(p) {
			continue
		}
		v = append(v, float64(p.LatUS))
	}
	sort.Float64s(v)
	return v
}

func failures(ss []sample) int {
	n := 0
	for _, p := range ss {
		if p.Err || p.Status != 200 {
			n++
		}
	}
	return n
}

// since keeps the samples started at least from after the load's start.
func since(ss []sample, from time.Duration) []sample {
	var out []sample
	for _, p := range ss {
		if p.At >= int64(from) {
			out = append(out, p)
		}
	}
	return out
}

// rawResult is the size of one response as it crossed the socket.
type rawResult struct {
	headerBytes int // status line and headers, up to the blank line
	bodyBytes   int
}

// rawPost sends one HTTP/1.1 request on a fresh connection and measures the
// response's header and body bytes as sent.
func rawPost(url string, body []byte, headers ...string) (rawResult, error) {
	var res rawResult
	hostPath := strings.TrimPrefix(url, "http://")
	host, path, _ := strings.Cut(hostPath, "/")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "POST /%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n", path, host, len(body))
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := conn.Write(append([]byte(b.String()), body...)); err != nil {
		return res, err
	}
	all, err := io.ReadAll(conn)
	if err != nil && len(all) == 0 {
		return res, err
	}
	i := bytes.Index(all, []byte("\r\n\r\n"))
	if i < 0 {
		return res, fmt.Errorf("no header end in %q", all)
	}
	res.headerBytes = i + 4
	res.bodyBytes = len(all) - i - 4
	return res, nil
}
