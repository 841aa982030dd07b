-- A plain GET of the URL given on the command line (headers come from wrk -H).
require "report"
