"""Read-your-writes works the same on all four facades: writes name their log position, reads wait for one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest
import requests

from tests.facades.conftest import USERS

KYLIN_V2 = {"Accept": "application/vnd.apache.kylin-v2+json"}


@dataclass(frozen=True)
class Facade:
    name: str
    write: Callable[[str, str], requests.Response]  # (server, unique name) → the write's answer
    read: tuple[str, dict[str, str]]  # path and headers of a read that lists what the write made
    error_of: Callable[[requests.Response], Any]  # the facade's error body (raises if the format is not its own)


def _olk_update() -> dict[str, Any]:
    return {"session": {"queryId": "q1", "user": "u"}, "sources": [],
            "outputIds": {"type": "PARTITIONED", "version": 1, "noMoreBufferIds": True, "buffers": {"0": 0}}}


FACADES = [
    Facade("hugegraph",
           lambda server, tag: requests.post(f"{server}/graphs/rw_{tag}/jobs/gremlin", json={"gremlin": f"g.V() // {tag}"},
                                             auth=USERS["operator"], timeout=30),
           ("/graphs/rw_{tag}/tasks", {}), lambda r: r.json()["exception"] and r.json()["message"]),
    Facade("kylin",
           lambda server, tag: requests.put(f"{server}/kylin/api/cubes/cube_{tag}/build", params={"project": f"rw_{tag}"},
                                            json={"startTime": 0, "endTime": 0, "buildType": "BUILD"},
                                            headers=KYLIN_V2, auth=USERS["operator"], timeout=30),
           ("/kylin/api/jobs?timeFilter=4&projectName=rw_{tag}", KYLIN_V2), lambda r: r.json()["exception"]),
    Facade("pandora",
           lambda server, tag: requests.post(f"{server}/api/v1/export/task", auth=USERS["operator"], timeout=30,
                                             json={"name": f"rw {tag}", "spl": "* | head 1",
                                                   "interval": {"type": "crontab", "crontab": "0 0 * * * ?"}}),
           ("/api/v1/export/task/list?prefix=rw {tag}", {}), lambda r: r.json()["error"]),
    Facade("openlookeng",
           lambda server, tag: requests.post(f"{server}/v1/task/rw_{tag}.0.0", json=_olk_update(),
                                             auth=USERS["operator"], timeout=30),
           ("/v1/task/rw_{tag}.0.0", {}), lambda r: r.headers["Content-Type"].startswith("text/plain") and r.text),
]


@pytest.mark.parametrize("facade", FACADES, ids=lambda f: f.name)
def test_a_write_names_its_position_and_a_read_waiting_for_it_sees_the_write(server: str, facade: Facade) -> None:
    tag = uuid4().hex[:10]
    written = facade.write(server, tag)
    assert written.status_code in (200, 201), written.text
    position = int(written.headers["Ledger-Position"])
    path, headers = facade.read
    read = requests.get(server + path.format(tag=tag), headers={**headers, "Ledger-Min-Position": str(position)},
                        auth=USERS["viewer"], timeout=30)
    assert read.status_code == 200, read.text
    assert tag in read.text


@pytest.mark.parametrize("facade", FACADES, ids=lambda f: f.name)
@pytest.mark.parametrize("value", ["not-a-position", "999999999999999"])
def test_a_bad_or_future_min_position_is_a_400_in_the_facades_own_format(server: str, facade: Facade,
                                                                          value: str) -> None:
    path, headers = facade.read
    read = requests.get(server + path.format(tag="none"), headers={**headers, "Ledger-Min-Position": value},
                        auth=USERS["viewer"], timeout=30)
    assert read.status_code == 400
    assert "Ledger-Min-Position" in facade.error_of(read)
