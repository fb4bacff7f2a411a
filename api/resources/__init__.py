"""Falcon resources of the native API: parse (done by the route gate), one ledger or view call, serialise."""
