"""Event-log consumer: bus -> queue -> event log table."""
