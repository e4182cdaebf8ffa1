-- wrk script of make bench. The runner passes the request through the
-- environment:
--   BENCH_PATH       request path
--   BENCH_BODY_FILE  file holding the JSON body
--   BENCH_HEADERS    extra headers, "name: value" separated by "\n"
--   BENCH_UNIQUE     "1": a different body (new cache key) on every request:
--                    each N0NCE in the body is replaced by a per-request nonce
-- and reads one line "BENCHJSON {...}" with the totals and exact latency
-- percentiles (microseconds) that wrk's own --latency summary rounds.
local path = os.getenv("BENCH_PATH") or "/"
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local headers = {["Content-Type"] = "application/json"}
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name then headers[name] = value end
end
local unique = os.getenv("BENCH_UNIQUE") == "1"

wrk.method = "POST"
wrk.path = path
wrk.body = body
wrk.headers = headers

local n = 0
if unique then
  -- Every N0NCE marker in the body becomes this request's nonce.
  local seed = os.getenv("BENCH_SEED") or tostring(os.time())
  request = function()
    n = n + 1
    local b = string.gsub(body, "N0NCE", seed .. "-" .. n)
    return wrk.format("POST", path, headers, b)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
