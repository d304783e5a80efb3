"""Admin API under /admin."""
