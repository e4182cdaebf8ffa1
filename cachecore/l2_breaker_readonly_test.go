package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// After a failover to a read-only replica (or a Redis at maxmemory with
// noeviction) that lacks the generations — the case RATIONALE names for
// creating them — reads work and every write fails (-READONLY). Each
// request then makes 3 MGETs and 2 SET NX, one after the other, each up to
// l2.timeout, and ends in l2.error. README: "webdis or Redis down, slow
// or answering garbage: the request goes on as if there were no L2, after
// at most l2.timeout … After breaker.failures consecutive failures a VM
// skips L2". Here the breaker never opens: every request pays five
// serial round trips, for good.
func TestL2ReadOnlyRedisWithoutGenerationsOpensTheBreaker(t *testing.T) {
	m := newL2Mesh(t, `,"breaker":{"failures":3,"cool_down":"5s"}`)
	c := m.p[0]
	do := func(call *Call) CallResult {
		for _, h := range call.Headers {
			if h[0] == ":path" && strings.HasPrefix(h[1], "/SET/") {
				m.wd.calls++
				return CallResult{Status: 200, Body: []byte("-READONLY You can't write against a read only replica.\r\n")}
			}
		}
		return m.wd.do(call)
	}
	var perReq []int
	var last string
	for i := 0; i < 8; i++ {
		req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
		f := c.NewFlight(req, 1, uint32(100+i))
		f.RequestHeaders(alice, false, true)
		acts := f.RequestBody([]byte(chatRequest(fmt.Sprint("p", i))), false)
		before := m.wd.calls
		var seen []string
		for len(acts) > 0 {
			a := acts[0]
			acts = acts[1:]
			switch a.Kind {
			case ActDispatch:
				if a.Call.Stream == 0 {
					continue // writes behind the response: not the client's wait
				}
				m.clock.Advance(20 * time.Millisecond) // a slow but working webdis (l2.timeout 25ms)
				acts = append(acts, a.Call.Done(do(a.Call))...)
			case ActCount:
				seen = append(seen, EventNames[a.Event])
			case ActForward:
				seen = append(seen, "forward")
				f.ResponseHeaders(200, jsonCT, OriginUpstream, false)
				_, more := f.Complete(jsonCT, []byte(chatResponse("a")), 10, nil)
				acts = append(acts, more...)
			}
		}
		perReq = append(perReq, m.wd.calls-before)
		last = strings.Join(seen, " ")
	}
	if !strings.Contains(last, "l2.breaker_open") {
		t.Fatalf("after 8 requests that each ended in l2.error the breaker (failures 3) is still closed;\n"+
			"webdis round trips on the client's path per request: %v (each up to l2.timeout)\nlast request: %q", perReq, last)
	}
}
