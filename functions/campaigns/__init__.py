"""The campaign function: runs campaigns (layers/core/python/switchboard_core/campaigns/runner.py)."""
