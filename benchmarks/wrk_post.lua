-- wrk script for serving_throughput.py: POST the JSON bodies of a file (one per line) round robin,
-- count answers the benchmark refuses (status other than 200, or a body without the text it must hold)
-- and print one JSON line of results. Arguments after wrk's `--`: the bodies file, then optionally the
-- text every accepted body holds. The Authorization header comes from the BENCH_AUTHORIZATION variable,
-- so the key is not on a command line.

local bodies, count, next_body = {}, 0, 0
refused = 0 -- global: done() reads it from every thread
local must_hold = nil
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    count = count + 1
    bodies[count] = line
  end
  must_hold = args[2]
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")
end

function request()
  next_body = next_body % count + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end

function response(status, headers, body)
  if status ~= 200 or (must_hold and not string.find(body, must_hold, 1, true)) then
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local refused_total = 0
  for _, thread in ipairs(threads) do
    refused_total = refused_total + thread:get("refused")
  end
  local e = summary.errors
  io.write(string.format(
    '{"completed": %d, "refused": %d, "socket_errors": %d, "duration_us": %d, '
      .. '"p50_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, refused_total, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max
  ))
end
