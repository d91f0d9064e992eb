-- wrk script: POST a fixed JSON body with fixed headers, print a JSON summary at the end.
-- Why files and not arguments: wrk passes no options to Lua besides env vars, and a body
-- with quotes survives a file better than an environment variable.
--   BENCH_BODY_FILE     the request body (JSON)
--   BENCH_HEADERS_FILE  one "Name: value" per line
wrk.method = "POST"

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

wrk.body = read_file(os.getenv("BENCH_BODY_FILE"))
wrk.headers["Content-Type"] = "application/json"
local headers_file = os.getenv("BENCH_HEADERS_FILE")
if headers_file then
  for line in io.lines(headers_file) do
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then wrk.headers[name] = value end
  end
end

-- BENCH_THINK_MS > 0: each connection waits a random time (exponential, that mean) before each
-- request, so the load is a fixed offered rate instead of "as fast as the server answers".
local think_ms = tonumber(os.getenv("BENCH_THINK_MS") or "0")
if think_ms > 0 then
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  function delay()
    return math.floor(-think_ms * math.log(1 - math.random()))
  end
end

-- No response() hook: defining one makes wrk parse every body. Statuses >= 400 are
-- counted by wrk itself in summary.errors.status.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
