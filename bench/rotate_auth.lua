-- wrk script: each request carries the next Authorization header from the file named by
-- AUTH_FILE (one header value a line), round and round. Both the valid-token and the
-- unknown-key runs use it, so the client does the same work for each. Every request also
-- carries its own number, so that wrk builds a new request string every time in both runs
-- (LuaJIT would otherwise reuse the one string of a single valid header, and the valid run
-- would cost wrk less than a run whose every header differs).
local headers = {}
for line in io.lines(os.getenv("AUTH_FILE")) do
    headers[#headers + 1] = line
end
assert(#headers > 0, "AUTH_FILE names no headers")
local i, n = 0, 0

request = function()
    i = i % #headers + 1
    n = n + 1
    return wrk.format(nil, nil, { ["Authorization"] = headers[i], ["X-Bench-Request"] = tostring(n) })
end
