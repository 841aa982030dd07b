-- The login storm: every connection POSTs /auth/login again as soon as it has an answer.
-- The JSON body comes from the BENCH_LOGIN_BODY environment variable set by run.py.
require "report"

wrk.method = "POST"
wrk.body = assert(os.getenv("BENCH_LOGIN_BODY"), "BENCH_LOGIN_BODY is not set")
wrk.headers["Content-Type"] = "application/json"
