"""The body of `POST …/jobs/gremlin` (GremlinAPI.GremlinRequest), checked the way HugeGraph checks it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import falcon

from api.facades.hugegraph.wire import bad_argument
from api.parsing import read_json

MAX_NAME_BYTES = 256
FIELDS = ("gremlin", "bindings", "language", "aliases")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class GremlinRequest:
    gremlin: str
    bindings: dict[str, Any] = field(default_factory=dict)
    language: str = "gremlin-groovy"

    def name(self) -> str:
        """HugeGraph names the job after the script's first line, cut to 256 UTF-8 bytes."""
        first_line = _LINE_BREAK.split(self.gremlin, maxsplit=1)[0]
        return first_line.encode("utf-8")[:MAX_NAME_BYTES].decode("utf-8", "ignore")

    def task_input(self, graph: str) -> dict[str, Any]:
        """What HugeGraph stores as the task input: the request plus the alias of the graph."""
        return {"gremlin": self.gremlin, "bindings": self.bindings, "language": self.language,
                "aliases": {graph: "graph"}}


def gremlin_request(req: falcon.Request) -> GremlinRequest:
    data = read_json(req)
    if not data and not req.content_length:
        raise bad_argument("The request body can't be empty")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise bad_argument(f"Unrecognized field \"{unknown[0]}\", known fields: {', '.join(FIELDS)}")
    gremlin, language = data.get("gremlin"), data.get("language", "gremlin-groovy")
    bindings, aliases = data.get("bindings") or {}, data.get("aliases") or {}
    if gremlin is None:
        raise bad_argument("The gremlin parameter can't be null")
    if language is None:
        raise bad_argument("The language parameter can't be null")
    for name, value, kind in (("gremlin", gremlin, str), ("language", language, str),
                              ("bindings", bindings, dict), ("aliases", aliases, dict)):
        if not isinstance(value, kind):
            raise bad_argument(f"The {name} parameter must be a JSON {'string' if kind is str else 'object'}")
    if aliases:
        raise bad_argument("There is no need to pass gremlin aliases")
    return GremlinRequest(gremlin, bindings, language)
