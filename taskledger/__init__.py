"""Composition root of taskledger: configuration, wiring, database, CLI and process roles.

The only package that reads the environment and wires `ledger`, `projections` and `api` together.
"""
