-- Shared by every wrk script of the harness (loaded with require "report"; run.py starts
-- wrk with its working directory in bench/, and LuaJIT's package.path begins with ./?.lua).
--
-- done() runs once, after every thread has finished, with the merged statistics. It
-- prints a single line, "BENCH_JSON {...}", that run.py picks out of wrk's output: more
-- robust than scraping wrk's human-readable summary, whose units change with magnitude.
-- Latencies are in microseconds. errors.status counts responses with a status >= 400;
-- connect/read/write/timeout are socket-level failures.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
