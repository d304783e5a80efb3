"""Routing: contacts, conversations, sensing and assignment (issue 4, in progress)."""
