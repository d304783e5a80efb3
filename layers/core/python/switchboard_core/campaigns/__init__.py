"""Campaigns: outbound contact flows that staff build, share, fork and publish.

`flow` checks a flow document (the step types, their fields, and the graph: no dangling
`next`, no unreachable step, no cycle without a wait); `models` holds a campaign's head and
its immutable versions; `store` keeps them in the `campaigns` table; `diff` compares two
versions. Running a published version is not part of this package yet (docs/campaigns.md).
"""
