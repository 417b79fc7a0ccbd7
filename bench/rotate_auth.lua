-- wrk script: each request carries the next Authorization header from the file named by
-- AUTH_FILE (one header value a line), round and round. Both the valid-token and the
-- unknown-key runs use it, so the client does the same work for each.
local headers = {}
for line in io.lines(os.getenv("AUTH_FILE")) do
    headers[#headers + 1] = line
end
assert(#headers > 0, "AUTH_FILE names no headers")
local i = 0

request = function()
    i = i % #headers + 1
    return wrk.format(nil, nil, { ["Authorization"] = headers[i] })
end
