-- A GET load that stops after BENCH_LIMIT responses instead of after a duration (wrk's -d
-- stays the upper bound in time). Run it with ONE wrk thread (-t1): each thread has its
-- own Lua state, so the count is only exact when one thread sees every response.
--
-- Stopping the thread alone is not enough: wrk's main thread sleeps for the whole -d and
-- only then collects the threads. Its SIGINT handler ends that sleep early (that is how
-- Ctrl-C still prints a summary), so the script sends SIGINT to its own process through
-- LuaJIT's FFI. Linux gives a process-directed signal to the main thread first.
--
-- Defining response() makes wrk hand every response to Lua, which costs client CPU:
-- only the memory phase uses this script.
require "report"

local ffi = require "ffi"
ffi.cdef [[
  int getpid(void);
  int kill(int pid, int sig);
]]
local SIGINT = 2

local limit = tonumber(os.getenv("BENCH_LIMIT") or "")
assert(limit and limit > 0, "BENCH_LIMIT must be a positive number")
local seen = 0

function response(status, headers, body)
  seen = seen + 1
  if seen == limit then
    wrk.thread:stop()
    ffi.C.kill(ffi.C.getpid(), SIGINT)
  end
end
