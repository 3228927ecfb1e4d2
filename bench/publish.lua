-- wrk's side of bench/compare.sh's publish workload P1w: a POST of one small text event on
-- each request, over keep-alive connections, the same shape as `ssecast-bench publish --body
-- text` (ssecast's POST /publish and nchan's POST /pub both publish the body as the data):
--
--   wrk -t1 -c16 -d10s --latency -s bench/publish.lua http://127.0.0.1:PORT/publish
--
-- The body is fixed (a Lua function per request would slow wrk down); it is as long as the
-- generator's `<seq> <send µs>`.
wrk.method = "POST"
wrk.body = "1234567 12345678"
wrk.headers["Content-Type"] = "text/plain"
