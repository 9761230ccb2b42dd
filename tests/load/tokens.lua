-- wrk script for tests/load/run.sh: every request carries a bearer token
-- read from a file, so every row of the benchmark pays the same Lua cost.
--
--   wrk ... -s tokens.lua URL -- FILE random   a random token of FILE per request
--   wrk ... -s tokens.lua URL -- FILE once     thread N walks FILE.N (with one thread:
--                                             FILE) in order: each token is used
--                                             once (cold), then wraps
--   wrk ... -s tokens.lua URL -- FILE MODE NAME   the token in a cookie NAME
--                                             (browser mode's access cookie)
--                                             instead of Authorization: Bearer
--
-- done() prints one machine-readable line:
--   RESULT requests=N sent=N duration_us=N rps=N p50_us=N p99_us=N non2xx=N errors=N wrapped=N
-- requests counts answers; sent counts requests written, including those
-- still in flight when wrk stopped (what calls home per request divides by).

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = args[1]
  mode = args[2] or "random"
  cookie = args[3]
  if cookie == "" then
    cookie = nil
  end
  if mode == "once" then
    -- FILE.N when the tokens were split per thread, else FILE itself (-t1).
    local f = io.open(file .. "." .. id)
    if f then
      f:close()
      file = file .. "." .. id
    elseif id > 0 then
      error("no " .. file .. "." .. id .. ": mint the tokens with -split THREADS")
    end
  end
  tokens = {}
  for line in io.lines(file) do
    if #line > 0 then
      if cookie then
        tokens[#tokens + 1] = cookie .. "=" .. line
      else
        tokens[#tokens + 1] = "Bearer " .. line
      end
    end
  end
  n = #tokens
  if n == 0 then
    error("no tokens in " .. file)
  end
  i = 0
  wrapped = 0
  sent = 0
  math.randomseed(os.time() + id * 7919)
  headers = {}
end

function request()
  sent = sent + 1
  if mode == "once" then
    i = i + 1
    if i > n then
      i = 1
      wrapped = wrapped + 1
    end
  else
    i = math.random(n)
  end
  if cookie then
    headers["Cookie"] = tokens[i]
  else
    headers["Authorization"] = tokens[i]
  end
  return wrk.format(nil, nil, headers)
end

function done(summary, latency, requests)
  local wraps, sent = 0, 0
  for _, t in ipairs(threads) do
    wraps = wraps + (t:get("wrapped") or 0)
    sent = sent + (t:get("sent") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d sent=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d non2xx=%d errors=%d wrapped=%d\n",
    summary.requests, sent, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout, wraps))
end
