"""Calls: puts a live call through to the responder routing chose, and falls back."""
