"""Lambda authorizer for the admin API."""
