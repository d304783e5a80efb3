"""Ingest: POST/GET /webhooks/{provider}/{connection}."""
