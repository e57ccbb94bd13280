-- wrk script for bench/api.py: cycle through a list of request paths, report machine-readable results.
--
--   wrk -t2 -c8 -d10s --latency --timeout 30s -s bench/api/urls.lua http://127.0.0.1:8000 -- paths.txt
--
-- paths.txt holds one path+query per line (e.g. /ogc/collections/x/items?bbox=...), already URL-encoded.
-- Each wrk thread walks the whole list in order, starting at a different place, so the connections ask for
-- different URLs at the same moment and every URL is asked about equally often.
-- done() prints one line "BENCHJSON {...}" with requests, duration, bytes, errors and latency percentiles
-- (microseconds, over all threads), which bench/api.py parses.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

local paths = {}
local n = 0
local i = 0

function init(args)
   local file = args[1]
   if file == nil then
      error("usage: wrk ... -s urls.lua <url> -- <paths file>")
   end
   for line in io.lines(file) do
      if line ~= "" then
         n = n + 1
         paths[n] = line
      end
   end
   if n == 0 then
      error("no paths in " .. file)
   end
   -- spread the threads over the list
   local tid = tonumber(tid) or 1
   i = math.floor((tid - 1) * n / 2) % n
end

function request()
   i = i + 1
   if i > n then
      i = 1
   end
   return wrk.format("GET", paths[i])
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "stdev": %.1f, "min": %d, "max": %d, ' ..
      '"p50": %d, "p90": %d, "p95": %d, "p99": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency.min, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99)))
end
