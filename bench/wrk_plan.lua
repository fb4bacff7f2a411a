-- wrk script driven by a plan file that bench/run.py writes (path in BENCH_WRK_PLAN).
--
-- The plan gives one list of requests per wrk thread. bench/run.py runs wrk with as many threads
-- as connections (-t N -c N), so a thread's list belongs to exactly one connection: no two
-- connections ever write the same task. Each thread cycles through its own list (round-robin).
-- done() prints one machine-readable line that bench/run.py parses.

local plan = dofile(os.getenv("BENCH_WRK_PLAN"))
local started = 0

function setup(thread)
   started = started + 1
   thread:set("thread_index", started)
end

local prepared, count, cursor

function init(args)
   local entries = plan.threads[((thread_index - 1) % #plan.threads) + 1]
   prepared = {}
   for k, entry in ipairs(entries) do
      local headers = {}
      for name, value in pairs(plan.headers) do headers[name] = value end
      prepared[k] = wrk.format(plan.method, entry.path, headers, entry.body)
   end
   count = #prepared
   -- Threads start at different offsets so reads spread over the rows from the first request.
   cursor = (thread_index - 1) % count
end

function request()
   cursor = cursor % count + 1
   return prepared[cursor]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
