-- wrk, paced: each connection waits 10 ms after every response before sending the next request, so
-- 10 connections offer about 1,000 req/s (a little less: the response time adds to each cycle). The
-- latency wrk records runs from the write of a request to its response, not counting the wait.
-- Prints one JSON line like bench/wrk-report.lua.
function delay()
  return 10
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"seconds":%f,"errors":%d,"p50":%d,"p99":%d}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
