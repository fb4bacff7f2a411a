"""Operator tools over the event store: audit, replay, verify, export and import (DESIGN §6)."""
