"""Where Switchboard runs: one topology (topology.py), two backends (aws/ for the CDK app,
local/ for the embedded runtime)."""
