-- A GET load where each connection waits BENCH_PAUSE_MS after an answer before asking
-- again: a steady stream of users rather than clients asking as fast as they are served.
-- Eight connections pausing 8 ms ask for at most 1000 requests a second.
require "report"

local pause = tonumber(os.getenv("BENCH_PAUSE_MS") or "")
assert(pause and pause >= 0, "BENCH_PAUSE_MS must be a number of milliseconds")

function delay()
  return pause
end
