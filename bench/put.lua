-- A PUT with a JSON body (BENCH_BODY) to the URL given on the command line; headers
-- (the bearer token) come from wrk -H. Used for PUT /video/{id}/progress and its ceiling.
require "report"

wrk.method = "PUT"
wrk.body = assert(os.getenv("BENCH_BODY"), "BENCH_BODY is not set")
wrk.headers["Content-Type"] = "application/json"
