"""The native HTTP API of taskledger (`/ledger/v1`): falcon resources over the ledger and its read views.

Build it with `api.app.create_app(ledger, view, auth)`; see api/README.md for the decisions it embodies.
"""
