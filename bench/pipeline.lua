-- HTTP/1.1 pipelining for wrk: each connection sends DEPTH GET requests
-- for the URL's path in one write, reads the DEPTH responses, then sends
-- the next batch (wrk counts every response as a request done).
--
--     wrk -t1 -c50 -d3s -s bench/pipeline.lua URL -- DEPTH [BODY]
--
-- Every response must be a 200 (and, when BODY is given, carry exactly that
-- body): the others are counted, and done() prints
-- "pipeline: depth=D responses=N bad=B" for bench/run.py to check.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   depth = tonumber(args[1]) or 16
   expected = args[2]
   responses = 0
   bad = 0
   local batch = {}
   for i = 1, depth do
      batch[i] = wrk.format("GET", wrk.path)
   end
   pipeline = table.concat(batch)
end

function request()
   return pipeline
end

function response(status, headers, body)
   responses = responses + 1
   if status ~= 200 or (expected ~= nil and body ~= expected) then
      bad = bad + 1
   end
end

function done(summary, latency, requests)
   local total, wrong, deep = 0, 0, 0
   for _, thread in ipairs(threads) do
      total = total + thread:get("responses")
      wrong = wrong + thread:get("bad")
      deep = thread:get("depth")
   end
   io.write(string.format("pipeline: depth=%d responses=%d bad=%d\n", deep, total, wrong))
end
