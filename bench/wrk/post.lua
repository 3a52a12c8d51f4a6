-- post.lua: wrk sends one comment, the same bytes on every request.
-- The harness writes the JSON body to a file and names it in BENCH_BODY_FILE, so
-- that this script stays free of generated text. It defines no response()
-- function: that would make wrk parse every response in Lua and cost the load
-- generator CPU that the servers on this machine need. wrk itself counts the
-- responses that are not 2xx or 3xx, and the harness checks the server's counters.
local path = os.getenv("BENCH_BODY_FILE")
if path == nil or path == "" then
  error("BENCH_BODY_FILE is not set (run this through `go run ./bench`)")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
