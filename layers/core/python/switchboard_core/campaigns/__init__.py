"""Campaigns: outbound contact flows that staff build, share, fork and publish.

`flow` checks a flow document (the step types, their fields, and the graph: no dangling
`next`, no unreachable step, no cycle without a wait); `models` holds a campaign's head and
its immutable versions; `store` keeps them in the `campaigns` table; `diff` compares two
versions. `engine` runs a version's flow as pure logic (`runs` holds a run's state, inputs
and actions; `guards` the opt-out, quiet-hours and frequency-cap checks). `run_store` keeps
runs in the `campaign_runs` table and `runner` applies the campaign function's inputs to them,
doing the engine's actions (docs/campaigns.md).
"""
