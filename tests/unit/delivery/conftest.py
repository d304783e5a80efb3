"""Fixtures of the delivery tests (defined in support.py, with the helpers they share)."""

from tests.unit.delivery.support import receiver, world  # noqa: F401 - pytest fixtures
