"""The event log on PostgreSQL: lock-free appends, readers fenced so that none ever skips an event."""
