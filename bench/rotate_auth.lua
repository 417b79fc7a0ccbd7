-- wrk script: each request carries the next Authorization header from the file named by
-- AUTH_FILE (one header value a line), round and round. Both the valid-token and the
-- unknown-key runs use it, so the client does the same work for each:
-- - Every request carries its own number, so that wrk builds a new request string every
--   time in both runs (LuaJIT would otherwise reuse the one string of a single valid
--   header, and the valid run would cost wrk less than a run whose every header differs).
-- - With AUTH_SENT=N, only the first N lines are sent; the rest are loaded and held all the
--   same. Each string LuaJIT holds makes every new one dearer to make: with 50,000 headers
--   loaded, wrk spends about 3 µs more on each request than with one, on the two cores it
--   shares with the server. The valid run therefore loads the 50,000 unknown headers after
--   its own and sends only its own, so both runs hold the same strings.
local headers = {}
for line in io.lines(os.getenv("AUTH_FILE")) do
    headers[#headers + 1] = line
end
assert(#headers > 0, "AUTH_FILE names no headers")
local sent = tonumber(os.getenv("AUTH_SENT") or "") or #headers
assert(sent >= 1 and sent <= #headers, "AUTH_SENT must be between 1 and the number of lines")
local i, n = 0, 0

request = function()
    i = i % sent + 1
    n = n + 1
    return wrk.format(nil, nil, { ["Authorization"] = headers[i], ["X-Bench-Request"] = tostring(n) })
end
