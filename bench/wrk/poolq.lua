-- wrk script for `npm run bench:http` (bench/http-load.ts). One file, several
-- request shapes, chosen by the first argument after `--`:
--   wrk -t1 -c32 -d5s -s bench/wrk/poolq.lua http://127.0.0.1:PORT -- MODE [POOLS] [VALUES] [QUERY_PCT]
-- MODE:
--   add         POST /add   {"poolId": r, "poolValues": [VALUES random floats]}
--   query       POST /query {"poolId": r, "percentile": 99.5}
--   mix         QUERY_PCT % query, the rest add (default 90 % queries / 10 % appends)
--   echo-add    POST /echo  with an add-shaped body   (the bare-server POST ceiling)
--   echo-query  POST /echo  with a query-shaped body
--   get         GET /
-- Bodies: poolId uniform over 0..POOLS-1 and each of the VALUES values drawn
-- uniformly from a table of 65536 random floats in [0, 1e6) with 3 decimals,
-- made once in init(); 4096 requests of each kind are prebuilt (see request()).
-- done() prints one line starting with WRK_JSON followed by a JSON object:
-- requests/s, latency percentiles in microseconds, non-2xx count (wrk counts
-- statuses >= 400 as errors.status) and socket errors (connect+read+write+timeout).

local mode = "add"
local pools = 1000
local nvalues = 10
local query_pct = 90
local headers = { ["Content-Type"] = "application/json" }
local get_request = nil
-- globals (not locals) so that done() can read them with thread:get()
adds = 0
queries = 0
local NV = 65536
local value_strings = {}

local function add_body()
  local t = {}
  for i = 1, nvalues do
    t[i] = value_strings[math.random(1, NV)]
  end
  return '{"poolId":' .. math.random(0, pools - 1) .. ',"poolValues":[' .. table.concat(t, ",") .. ']}'
end

local function query_body()
  return '{"poolId":' .. math.random(0, pools - 1) .. ',"percentile":99.5}'
end

-- Requests are prebuilt in init(): PREBUILT of each kind, formatted once, so
-- request() only picks one. Building and formatting a body per request cost wrk
-- most of its CPU, and wrk (one thread, one core) was the ceiling of every
-- bare-server row. The bodies still carry random pool ids (uniform over POOLS)
-- and random values; PREBUILT distinct ones are plenty for a server that
-- cannot tell them from fresh ones.
local PREBUILT = 4096
local add_requests, query_requests, echo_add_requests, echo_query_requests = {}, {}, {}, {}

local function prebuild()
  for i = 1, PREBUILT do
    local a = add_body()
    local q = query_body()
    add_requests[i] = wrk.format("POST", "/add", headers, a)
    query_requests[i] = wrk.format("POST", "/query", headers, q)
    echo_add_requests[i] = wrk.format("POST", "/echo", headers, a)
    echo_query_requests[i] = wrk.format("POST", "/echo", headers, q)
  end
end

function init(args)
  mode = args[1] or mode
  pools = tonumber(args[2] or pools)
  nvalues = tonumber(args[3] or nvalues)
  query_pct = tonumber(args[4] or query_pct)
  -- distinct streams per thread and per run
  math.randomseed(os.time() * 1000 + math.floor((os.clock() * 1e6) % 1000))
  for i = 1, NV do
    value_strings[i] = string.format("%.3f", math.random() * 1e6)
  end
  get_request = wrk.format("GET", "/")
  prebuild()
  local known = { add = 1, query = 1, mix = 1, ["echo-add"] = 1, ["echo-query"] = 1, get = 1 }
  if not known[mode] then
    io.stderr:write("poolq.lua: unknown mode " .. tostring(mode) .. "\n")
    os.exit(2)
  end
end

function request()
  local i = math.random(1, PREBUILT)
  if mode == "add" then
    adds = adds + 1
    return add_requests[i]
  elseif mode == "query" then
    queries = queries + 1
    return query_requests[i]
  elseif mode == "mix" then
    if math.random(1, 100) <= query_pct then
      queries = queries + 1
      return query_requests[i]
    end
    adds = adds + 1
    return add_requests[i]
  elseif mode == "echo-add" then
    return echo_add_requests[i]
  elseif mode == "echo-query" then
    return echo_query_requests[i]
  end
  return get_request
end

-- keep a handle on every thread so done() can read its counters
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local total_adds, total_queries = 0, 0
  for _, thread in ipairs(threads) do
    total_adds = total_adds + (thread:get("adds") or 0)
    total_queries = total_queries + (thread:get("queries") or 0)
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"durationS":%.4f,"rps":%.2f,"bytes":%d,' ..
    '"meanUs":%.2f,"p50Us":%d,"p90Us":%d,"p99Us":%d,"p999Us":%d,"maxUs":%d,' ..
    '"non2xx":%d,"socketErrors":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"generatedAdds":%d,"generatedQueries":%d}\n',
    summary.requests, secs, summary.requests / secs, summary.bytes,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout,
    e.connect, e.read, e.write, e.status, e.timeout,
    total_adds, total_queries))
end
