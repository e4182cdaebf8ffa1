package wasmhost

import (
	"sort"
	"sync"
)

// sharedData is cpp-host's SharedData (src/shared_data.cc): one map per
// vm_id behind one mutex, and one 32-bit CAS counter for the whole process
// that skips 0. There is deliberately no delete: no hostcall reaches
// SharedData::remove in Envoy.
type sharedData struct {
	mu      sync.Mutex
	nextCas uint32
	data    map[string]map[string]sharedEntry // vm_id → key → entry
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

func newSharedData() *sharedData {
	return &sharedData{nextCas: 1, data: map[string]map[string]sharedEntry{}}
}

// casLocked returns a fresh CAS value; 0 is never handed out because cas 0
// means "unconditional" to proxy_set_shared_data.
func (s *sharedData) casLocked() uint32 {
	c := s.nextCas
	s.nextCas++
	if s.nextCas == 0 {
		s.nextCas = 1
	}
	return c
}

func (s *sharedData) get(vmID, key string) ([]byte, uint32, Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.data[vmID][key]
	if !ok {
		return nil, 0, StatusNotFound
	}
	// A copy, as the host copies values into the VM on every get.
	return append([]byte(nil), e.value...), e.cas, StatusOK
}

// set follows SharedData::set exactly: a non-zero cas must match an existing
// entry, but a missing key is created whatever cas says (there is no
// create-only primitive), and every successful set gets a new cas.
func (s *sharedData) set(vmID, key string, value []byte, cas uint32) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.data[vmID]
	if m == nil {
		m = map[string]sharedEntry{}
		s.data[vmID] = m
	}
	if e, ok := m[key]; ok && cas != 0 && cas != e.cas {
		return StatusCasMismatch
	}
	m[key] = sharedEntry{value: append([]byte(nil), value...), cas: s.casLocked()}
	return StatusOK
}

func (s *sharedData) keys(vmID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.data[vmID]))
	for k := range s.data[vmID] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *sharedData) bytes(vmID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, e := range s.data[vmID] {
		n += len(k) + len(e.value)
	}
	return n
}

// Threads. Every VM runs on one simulated Envoy thread; queue owners are
// recorded by thread, because cpp-host delivers queue-ready by posting to the
// registrant's dispatcher and then looking up that thread's VM by vm_key
// (src/shared_queue.cc enqueue → getThreadLocalWasm). The canary runs on the
// main thread.
const (
	// MainVM is the index of the main-thread VM in Tick, DrainVM and HTTPCall.VM.
	MainVM = -1
	// canaryVM is the index of the throw-away configuration canary.
	canaryVM = -2
)

// sharedQueues is cpp-host's SharedQueue (src/shared_queue.cc).
type sharedQueues struct {
	mu        sync.Mutex
	nextToken uint32
	tokens    map[[2]string]uint32 // (vm_id, name) → token
	queues    map[uint32]*sharedQueue
}

type sharedQueue struct {
	vmID, name  string
	ownerThread int    // MainVM or a worker index
	ownerCtx    uint32 // root context id of the registrant
	items       [][]byte
}

func newSharedQueues() *sharedQueues {
	return &sharedQueues{nextToken: 1, tokens: map[[2]string]uint32{}, queues: map[uint32]*sharedQueue{}}
}

// register creates the queue or, if it exists, hands ownership to the caller
// while keeping queued items: the last registrant gets every notification.
func (q *sharedQueues) register(vmID, name string, thread int, rootCtx uint32) uint32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := [2]string{vmID, name}
	tok, ok := q.tokens[key]
	if !ok {
		for {
			tok = q.nextToken
			q.nextToken++
			if tok != 0 && q.queues[tok] == nil {
				break
			}
		}
		q.tokens[key] = tok
		q.queues[tok] = &sharedQueue{vmID: vmID, name: name}
	}
	sq := q.queues[tok]
	sq.ownerThread, sq.ownerCtx = thread, rootCtx
	return tok
}

func (q *sharedQueues) resolve(vmID, name string) (uint32, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	tok, ok := q.tokens[[2]string{vmID, name}]
	return tok, ok
}

// enqueue appends and reports where the one queue-ready notification for
// this item must be posted.
func (q *sharedQueues) enqueue(token uint32, data []byte) (thread int, ctx uint32, st Status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sq := q.queues[token]
	if sq == nil {
		return 0, 0, StatusNotFound
	}
	sq.items = append(sq.items, append([]byte(nil), data...))
	return sq.ownerThread, sq.ownerCtx, StatusOK
}

func (q *sharedQueues) dequeue(token uint32) ([]byte, Status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sq := q.queues[token]
	if sq == nil {
		return nil, StatusNotFound
	}
	if len(sq.items) == 0 {
		return nil, StatusEmpty
	}
	item := sq.items[0]
	sq.items[0] = nil
	sq.items = sq.items[1:]
	return item, StatusOK
}

func (q *sharedQueues) length(token uint32) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if sq := q.queues[token]; sq != nil {
		return len(sq.items)
	}
	return 0
}

// metrics is the process-wide stats store: metric ids are per VM (Envoy's
// Wasm::counters_ etc.) but a name maps to one stat shared by all VMs, as
// Envoy's stats scope does. Names are kept as the plugin defined them,
// without Envoy's "wasmcustom." prefix.
type metrics struct {
	mu         sync.Mutex
	counters   map[string]uint64
	gauges     map[string]int64
	histograms map[string][]uint64
}

type metricRef struct {
	typ  MetricType
	name string
}

func newMetrics() *metrics {
	return &metrics{counters: map[string]uint64{}, gauges: map[string]int64{}, histograms: map[string][]uint64{}}
}

func (m *metrics) define(typ MetricType, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch typ {
	case MetricCounter:
		if _, ok := m.counters[name]; !ok {
			m.counters[name] = 0
		}
	case MetricGauge:
		if _, ok := m.gauges[name]; !ok {
			m.gauges[name] = 0
		}
	case MetricHistogram:
		if _, ok := m.histograms[name]; !ok {
			m.histograms[name] = nil
		}
	}
}

// increment follows Envoy Context::incrementMetric: counters only go up
// (delta ≤ 0 is BAD_ARGUMENT), gauges add a signed delta, histograms cannot
// be incremented.
func (m *metrics) increment(r metricRef, delta int64) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch r.typ {
	case MetricCounter:
		if delta <= 0 {
			return StatusBadArgument
		}
		m.counters[r.name] += uint64(delta)
	case MetricGauge:
		m.gauges[r.name] += delta
	default:
		return StatusBadArgument
	}
	return StatusOK
}

// record follows Envoy Context::recordMetric: a counter adds, a gauge is
// set, a histogram records the value.
func (m *metrics) record(r metricRef, v uint64) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch r.typ {
	case MetricCounter:
		m.counters[r.name] += v
	case MetricGauge:
		m.gauges[r.name] = int64(v)
	case MetricHistogram:
		m.histograms[r.name] = append(m.histograms[r.name], v)
	}
	return StatusOK
}

// get follows Envoy Context::getMetric: histograms cannot be read back.
func (m *metrics) get(r metricRef) (uint64, Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch r.typ {
	case MetricCounter:
		return m.counters[r.name], StatusOK
	case MetricGauge:
		return uint64(m.gauges[r.name]), StatusOK
	}
	return 0, StatusBadArgument
}
