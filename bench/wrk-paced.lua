-- wrk, paced: each connection waits 10 ms after every response before sending the next request, so
-- 10 connections offer about 1,000 req/s (a little less: the response time adds to each cycle). The
-- latency wrk records runs from the write of a request to its response, not counting the wait.
-- Prints the JSON line of bench/wrk-report.lua, loaded from beside this file.
dofile((debug.getinfo(1, 'S').source:match('^@(.*/)') or './') .. 'wrk-report.lua')

function delay()
  return 10
end
