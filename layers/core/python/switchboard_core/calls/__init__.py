"""Live call patching: the TwiML that holds, puts through and records a live call, and the
Twilio Calls API request that redirects it (ingest answers with the first, the calls
function sends the others)."""

CALLS_PROVIDER = "calls"  # the calls function's events are published as switchboard.calls
