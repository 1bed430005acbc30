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
-- Every body is generated per request in request() with math.random: poolId
-- uniform over 0..POOLS-1 and each of the VALUES values drawn uniformly from a
-- table of 65536 random floats in [0, 1e6) with 3 decimals, made once in
-- init() — string.format per value in request() cost wrk ~5 µs per request
-- (≈ 35 % of its per-request CPU here), which lowered every measured peak, the
-- bare-server ceiling most.
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
  local known = { add = 1, query = 1, mix = 1, ["echo-add"] = 1, ["echo-query"] = 1, get = 1 }
  if not known[mode] then
    io.stderr:write("poolq.lua: unknown mode " .. tostring(mode) .. "\n")
    os.exit(2)
  end
end

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

function request()
  if mode == "add" then
    adds = adds + 1
    return wrk.format("POST", "/add", headers, add_body())
  elseif mode == "query" then
    queries = queries + 1
    return wrk.format("POST", "/query", headers, query_body())
  elseif mode == "mix" then
    if math.random(1, 100) <= query_pct then
      queries = queries + 1
      return wrk.format("POST", "/query", headers, query_body())
    end
    adds = adds + 1
    return wrk.format("POST", "/add", headers, add_body())
  elseif mode == "echo-add" then
    return wrk.format("POST", "/echo", headers, add_body())
  elseif mode == "echo-query" then
    return wrk.format("POST", "/echo", headers, query_body())
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
