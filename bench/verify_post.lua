-- wrk script: every request is POST /keys/verify with the JSON body in VERIFY_BODY, as a
-- backend asks about the key its own client sent.
wrk.method = "POST"
wrk.body = assert(os.getenv("VERIFY_BODY"), "VERIFY_BODY names no body")
wrk.headers["Content-Type"] = "application/json"
