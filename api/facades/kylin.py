"""The kylin facade (not built yet)."""

from __future__ import annotations

from api.facades.common import FacadeDeps


def routes(deps: FacadeDeps) -> list[tuple[str, object]]:
    """(URI template, resource) pairs this facade serves."""
    return []
