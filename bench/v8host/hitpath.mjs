// Profiles the filter's hit path inside V8 — the engine Envoy runs it in —
// without Envoy: a minimal proxy-wasm host in JavaScript loads the real
// build/modelcache.wasm, stores one answer, then replays the callbacks Envoy
// makes for a cache hit (context create, request headers, request body with
// the local reply, response headers and body of that reply, log, done,
// delete) and reports the time per hit and the host calls made. With mode
// "pass" the request is for a path no route caches (the filter's cost on
// traffic it leaves alone); "bypass" sends cache-control: no-store (S4's
// bypass); with "miss-nostore" every request is new and
// the upstream answers with cache-control: no-store (S4's uncacheable
// miss under a model with no answer stored; "miss-nostore-stored" stores
// the first answer, and "miss-nostore-full" fills a table of S4's size
// first, the state S4's row runs in). The embed-* modes replay S9's embeddings
// requests instead (store 4096×4, 64-dimensional float vectors): embed-new
// 32 new items, embed-cached 32 cached items, embed-partial 64 items of
// which 32 cached; the upstream's answer (built in JavaScript from the
// forwarded body) is part of the time, the same for every module. Run with
// `node --prof` (or --cpu-prof) to see which wasm functions the time goes to.
//
//   node --no-liftoff --experimental-wasm-branch-hinting bench/v8host/hitpath.mjs build/modelcache.wasm [iterations] [bodyKiB] [hit|pass|bypass|miss-nostore|miss-nostore-stored|miss-nostore-full|embed-new|embed-cached|embed-partial]
//
// (Node.js 20's V8 reads the module's branch hints only with that flag;
// Envoy's does by default: RATIONALE, "Go's cold branches are hinted out
// of line".)
//
// A floor module (bench/floorfilter, built in the mode's floor) runs the
// same way, for its side of the comparison; COLD=1 times each request
// with the caches cold (below).
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';
import { getHeapStatistics } from 'node:v8';

const [file = 'build/modelcache.wasm', itersArg = '200000', kibArg = '1', mode = 'hit'] = process.argv.slice(2);
// A mode it does not know would run as something else and be measured as
// the mode named: refused. (instructions.py reads this line for its own
// check: keep it one line.)
const modes = ['hit', 'pass', 'bypass', 'miss-nostore', 'miss-nostore-stored', 'miss-nostore-full', 'embed-new', 'embed-cached', 'embed-partial'];
if (!modes.includes(mode)) {
  console.error(`hitpath.mjs: unknown mode ${mode} (one of ${modes.join(', ')})`);
  process.exit(2);
}
const iterations = Number(itersArg);
const embed = mode.startsWith('embed-');
// miss-nostore-full fills a table of S4's size (envoy/bench/cache.yaml)
// with stored answers first, as S4's miss + store row leaves the route's.
const fillTable = mode === 'miss-nostore-full';
const config = JSON.stringify(embed
  ? { store: { buckets: 4096, ways: 4 }, routes: [{ name: 'embed', kind: 'embeddings', path_prefix: '/v1/embeddings', ttl: '24h' }] }
  : { ...(fillTable ? { store: { buckets: 4096, ways: 4 } } : {}), routes: [{ name: 'chat', kind: 'chat', path_prefix: '/v1/chat/completions', ttl: '1h' }] });
// Embeddings: the batch of request n, and the upstream's answer to a body.
const embShape = { 'embed-new': [32, 0], 'embed-cached': [32, 32], 'embed-partial': [64, 32] }[mode] ?? [0, 0];
const embBatch = (n) => JSON.stringify({ model: 'bench-embed', input: Array.from({ length: embShape[0] }, (_, i) => i < embShape[1]
  ? `a shared passage about shipping policies and return windows, chunk ${i}` : `a new passage about order status ${n}, chunk ${i}`),
encoding_format: 'float' });
let seed = 0x9e3779b9;
const vectors = Array.from({ length: 64 }, () => '[' + Array.from({ length: 64 }, () => {
  seed = (seed * 1103515245 + 12345) >>> 0; return ((seed / 2 ** 31) - 1).toFixed(8);
}).join(',') + ']');
const embAnswer = (body) => {
  const input = JSON.parse(body).input;
  return '{"object":"list","data":[' + input.map((it, i) => `{"object":"embedding","index":${i},"embedding":${vectors[it.length % 64]}}`).join(',') +
    `],"model":"bench-embed","usage":{"prompt_tokens":${input.length},"total_tokens":${input.length}}}`;
};
// REQ_FILE=bench/payloads/request.json uses the benchmark's 1.6 KB request.
const reqBody = process.env.REQ_FILE ? readFileSync(process.env.REQ_FILE, 'utf8')
  : JSON.stringify({ model: 'sim-chat', messages: [{ role: 'user', content: 'What is the capital of France?' }] });
const answer = JSON.stringify({ id: 'x', object: 'chat.completion', model: 'sim-chat',
  choices: [{ index: 0, message: { role: 'assistant', content: 'P'.repeat(Number(kibArg) * 1024 - 120) }, finish_reason: 'stop' }] });
const reqHeaders = [[':method', 'POST'], [':path', mode === 'pass' ? '/v1/other' : embed ? '/v1/embeddings' : '/v1/chat/completions'], [':authority', 'models'], [':scheme', 'http'],
  ['content-type', 'application/json'], ['authorization', 'Bearer tenant-a'], ['user-agent', 'bench'], ['accept', '*/*'],
  ['content-length', String(reqBody.length)], ['x-request-id', '1b4e28ba-2fa1-11d2-883f-0016d3cca427']];
const respHeaders = [[':status', '200'], ['content-type', 'application/json'], ['content-length', String(answer.length)]];
const missNoStore = mode.startsWith('miss-nostore');
// miss-nostore-stored: the first answer is stored (no no-store), so the
// misses after it run under a model with an answer stored, as S4's do
// once its miss + store row has run on the same route; miss-nostore-full
// stores twice the table's slots' worth first, so that a miss's reads find
// other keys' entries, as S4's do (those exchanges are not counted, in
// the time nor by instructions.py, which zeroes its counts after them).
const storedFirst = mode === 'miss-nostore-stored' || fillTable;
if (mode === 'bypass') reqHeaders.push(['cache-control', 'no-store']);
if (missNoStore && !storedFirst) respHeaders.push(['cache-control', 'no-store']);
const reqObj = JSON.parse(reqBody);

const enc = new TextEncoder(), dec = new TextDecoder();
let ex, mem;
const calls = new Map();
const count = (name) => calls.set(name, (calls.get(name) ?? 0) + 1);
const u8 = () => new Uint8Array(mem.buffer);
const dv = () => new DataView(mem.buffer);
const str = (p, n) => dec.decode(u8().subarray(p, p + n));
function give(bytes, ptrPtr, sizePtr) { // return data the proxy-wasm way
  if (bytes.length === 0) { dv().setUint32(ptrPtr, 0, true); dv().setUint32(sizePtr, 0, true); return 0; }
  const p = ex.proxy_on_memory_allocate(bytes.length);
  u8().set(bytes, p);
  dv().setUint32(ptrPtr, p, true); dv().setUint32(sizePtr, bytes.length, true);
  return 0;
}
function pairs(list) {
  const parts = list.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  let size = 4 + 8 * parts.length;
  for (const [k, v] of parts) size += k.length + v.length + 2;
  const b = new Uint8Array(size), d = new DataView(b.buffer);
  d.setUint32(0, parts.length, true);
  let off = 4 + 8 * parts.length;
  parts.forEach(([k, v], i) => {
    d.setUint32(4 + 8 * i, k.length, true); d.setUint32(8 + 8 * i, v.length, true);
    b.set(k, off); off += k.length + 1; b.set(v, off); off += v.length + 1;
  });
  return b;
}
const shared = new Map(); let casCounter = 1;
const metricNames = [], metricValues = new Map();
const metric = (name) => Number(metricValues.get(name) ?? 0n);
let reqBodyBytes = enc.encode(reqBody), respBodyBytes = enc.encode(answer), upstreamBody = null;
let stage = 'request', localReplies = 0;
let reqPairs = pairs(reqHeaders), respPairs = pairs(respHeaders);
const cfg = enc.encode(config), viaUpstream = enc.encode('via_upstream');
const env = {
  proxy_log: () => (count('proxy_log'), 0),
  proxy_get_log_level: (p) => (dv().setUint32(p, 2, true), 0),
  proxy_set_tick_period_milliseconds: () => 0,
  proxy_set_effective_context: () => 0,
  proxy_done: () => 0,
  proxy_get_buffer_status: () => 1,
  proxy_get_buffer_bytes: (type, start, max, pp, sp) => {
    count('proxy_get_buffer_bytes');
    if (type === 7) return give(cfg, pp, sp);
    if (type === 0) return give(reqBodyBytes, pp, sp);
    if (type === 1) return give(respBodyBytes, pp, sp);
    return 1;
  },
  proxy_set_buffer_bytes: (type, start, size, p, n) => { // an embeddings batch cut to its missing items
    count('proxy_set_buffer_bytes');
    if (type === 0) upstreamBody = str(p, n);
    return 0;
  },
  proxy_get_header_map_pairs: (type, pp, sp) => (count('proxy_get_header_map_pairs'), give(type === 0 ? reqPairs : respPairs, pp, sp)),
  proxy_set_header_map_pairs: () => 0,
  proxy_get_header_map_size: () => 0,
  proxy_get_header_map_value: (type, kp, kl, pp, sp) => {
    count('proxy_get_header_map_value');
    const k = str(kp, kl), kv = (type === 0 ? reqHeaders : respHeaders).find(([n]) => n === k);
    return kv ? give(enc.encode(kv[1]), pp, sp) : 1;
  },
  proxy_add_header_map_value: () => (count('proxy_add_header_map_value'), 0),
  proxy_replace_header_map_value: () => (count('proxy_replace_header_map_value'), 0),
  proxy_remove_header_map_value: () => (count('proxy_remove_header_map_value'), 0),
  proxy_continue_stream: () => 0,
  proxy_close_stream: () => 0,
  proxy_send_local_response: () => (count('proxy_send_local_response'), localReplies++, 0),
  proxy_get_status: () => 1,
  proxy_http_call: () => 2,
  proxy_get_shared_data: (kp, kl, vpp, vsp, casp) => {
    count('proxy_get_shared_data');
    const e = shared.get(str(kp, kl));
    if (!e) return 1;
    dv().setUint32(casp, e.cas, true);
    return give(e.value, vpp, vsp);
  },
  proxy_set_shared_data: (kp, kl, vp, vl, cas) => {
    count('proxy_set_shared_data');
    const k = str(kp, kl), e = shared.get(k);
    if (e && cas !== 0 && cas !== e.cas) return 8;
    shared.set(k, { value: u8().slice(vp, vp + vl), cas: casCounter++ });
    return 0;
  },
  proxy_register_shared_queue: (np, nl, idp) => (dv().setUint32(idp, 1, true), 0),
  proxy_resolve_shared_queue: () => 1,
  proxy_enqueue_shared_queue: () => 0,
  proxy_dequeue_shared_queue: () => 7,
  proxy_define_metric: (t, np, nl, idp) => (metricNames.push(str(np, nl)), dv().setUint32(idp, metricNames.length - 1, true), 0),
  proxy_increment_metric: (id, delta) => (count('proxy_increment_metric'), metricValues.set(metricNames[id], (metricValues.get(metricNames[id]) ?? 0n) + delta), 0),
  proxy_record_metric: () => (count('proxy_record_metric'), 0),
  proxy_get_metric: () => 0,
  proxy_get_property: (kp, kl, pp, sp) => { // Envoy's code details of an upstream's answer
    count('proxy_get_property');
    return str(kp, kl).includes('code_details') ? give(viaUpstream, pp, sp) : 1;
  },
  proxy_set_property: () => 0,
};
const wasi = new WASI({ version: 'preview1', args: [], env: {} });
const wasiImport = wasi.wasiImport;
const countingWasi = Object.fromEntries(Object.entries(wasiImport).map(([k, f]) => [k, (...a) => (count('wasi.' + k), f(...a))]));
const mod = await WebAssembly.compile(readFileSync(file));
const inst = await WebAssembly.instantiate(mod, { env, wasi_snapshot_preview1: countingWasi });
ex = inst.exports; mem = ex.memory;
wasi.initialize(inst);
ex.proxy_on_context_create(1, 0);
if (!ex.proxy_on_vm_start(1, 0) || !ex.proxy_on_configure(1, cfg.length)) throw new Error('configure failed');

let ctx = 2, exchanges = 0;
function exchange() {
  const id = ctx++;
  exchanges++;
  if (embed) { // a new batch each time
    reqBodyBytes = enc.encode(embBatch(id));
    reqHeaders[8][1] = String(reqBodyBytes.length);
    reqPairs = pairs(reqHeaders);
    upstreamBody = null;
  } else if (missNoStore) { // a new question each time
    const o = structuredClone(reqObj);
    o.messages[o.messages.length - 1].content += ' #' + id;
    reqBodyBytes = enc.encode(JSON.stringify(o));
    reqHeaders[8][1] = String(reqBodyBytes.length);
    reqPairs = pairs(reqHeaders);
  }
  ex.proxy_on_context_create(id, 1);
  ex.proxy_on_request_headers(id, reqHeaders.length, 0);
  const before = localReplies;
  const action = ex.proxy_on_request_body(id, reqBodyBytes.length, 1);
  if (localReplies === before) { // miss: forwarded; play the upstream's answer
    if (embed) {
      respBodyBytes = enc.encode(embAnswer(upstreamBody ?? dec.decode(reqBodyBytes)));
      respHeaders[2][1] = String(respBodyBytes.length);
      respPairs = pairs(respHeaders);
    }
    ex.proxy_on_response_headers(id, respHeaders.length, 0);
    ex.proxy_on_response_body(id, respBodyBytes.length, 1);
  } else { // Envoy runs the local reply through the filter's encoder callbacks
    ex.proxy_on_response_headers(id, 3, 0);
    ex.proxy_on_response_body(id, respBodyBytes.length, 1);
  }
  ex.proxy_on_log(id); ex.proxy_on_done(id); ex.proxy_on_delete(id);
  return localReplies > before;
}
if (exchange()) throw new Error('first request should miss');
if (fillTable) {
  for (let i = 0; i < 2 * 4096 * 4; i++) exchange();
  exchanges = 1;
  // The fill ends here: instructions.py has callgrind zero its counts when
  // this call enters Node.js's C++ (UpdateHeapStatisticsBuffer), so the
  // fill's stores are neither counted nor taken for the miss's lines.
  getHeapStatistics();
}
if (storedFirst) {
  respHeaders.push(['cache-control', 'no-store']);
  respPairs = pairs(respHeaders);
}
if (embed) {
  if (exchange() !== (mode === 'embed-cached')) throw new Error('unexpected second answer');
} else if (exchange() !== (mode === 'hit')) throw new Error('second request should ' + (mode === 'hit' ? 'hit' : 'pass through'));
for (let i = 0, n = embed ? 1500 : 20000; i < n; i++) exchange(); // warm up TurboFan
// DIRTY=1: instead of timing, count the 64-byte lines of the module's
// memory that each of 30 exchanges changes (the Go stack, its heap, the
// buffers the host fills), and stop. A line written with the value it held
// does not count, so this is a floor on the data a request writes.
if (process.env.DIRTY === '1') {
  const per = [];
  for (let k = 0; k < 30; k++) {
    const a = new Uint32Array(mem.buffer.slice(0));
    exchange();
    const b = new Uint32Array(mem.buffer);
    let d = 0;
    for (let i = 0; i < a.length; i += 16) {
      for (let j = i; j < i + 16; j++) if (a[j] !== b[j]) { d++; break; }
    }
    per.push(d);
  }
  per.sort((x, y) => x - y);
  console.log(`${mode}: memory lines of 64 bytes changed per exchange: median ${per[15]} (${per[0]}…${per[29]})`);
  process.exit(0);
}
ex.proxy_on_tick(1); // flushes the runtime's counters (modelcache.vm_*)
const allocs0 = metric('modelcache.vm_heap_allocs'), gcs0 = metric('modelcache.vm_gc_cycles');
calls.clear();
// COLD=1: before each request, other code and data run (1 MiB of memory
// written, 1,000 small JavaScript functions called: more than this
// machine's L1 and L2 caches, 64 KiB + 512 KiB per core), as the kernel's
// network stack and Envoy's own code do between two requests that arrive
// one per wake-up; only the requests are timed. What a module costs cold
// grows with the code and memory its path touches, which a warm loop
// hides. COLD_KIB and COLD_FNS change the amounts.
const cold = process.env.COLD === '1';
const junk = new Uint8Array(cold ? Number(process.env.COLD_KIB ?? 1024) << 10 : 0);
const evictors = Array.from({ length: cold ? Number(process.env.COLD_FNS ?? 1000) : 0 }, (_, k) => new Function('x',
  `let a = x ^ ${k}; for (let i = 0; i < 3; i++) { a = (a * ${k * 7 + 13} + ${k}) | 0; ` +
  `if (a & ${1 << (k % 20)}) a ^= ${k * 31}; else a += ${k * 17}; a = Math.imul(a, ${k | 1}) >>> ${k % 7}; } return a;`));
let evicted = 0;
function evict() {
  for (let j = 0; j < junk.length; j += 64) junk[j]++;
  for (const f of evictors) evicted = f(evicted);
}
if (cold) for (let i = 0; i < 200; i++) evict(); // warm up the evictors themselves
let hits = 0, ns = 0;
if (cold) {
  for (let i = 0; i < iterations; i++) {
    evict();
    const t = process.hrtime.bigint();
    hits += exchange() ? 1 : 0;
    ns += Number(process.hrtime.bigint() - t);
  }
} else {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) hits += exchange() ? 1 : 0;
  ns = Number(process.hrtime.bigint() - t0);
}
ns /= iterations;
console.log(`${mode} path in V8${cold ? ' (cold)' : ''}: ${(ns / 1000).toFixed(2)} µs per request (${hits}/${iterations} hits, ${kibArg} KiB answer)`);
const perRequest = Object.fromEntries([...calls].map(([k, v]) => [k, +(v / iterations).toFixed(2)]));
ex.proxy_on_tick(1);
console.log(`Go heap allocations per request: ${((metric('modelcache.vm_heap_allocs') - allocs0) / iterations).toFixed(2)}, GC cycles per 10k requests: ${((metric('modelcache.vm_gc_cycles') - gcs0) * 10000 / iterations).toFixed(2)}`);
console.log('host calls per request:', perRequest);
console.log(`exchanges run: ${exchanges} (warm-up included; v8host/instructions.py divides by it)`);
