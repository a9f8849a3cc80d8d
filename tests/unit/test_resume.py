"""Resume: a cell is skipped only when its record is a valid record of the same cell."""
import base64
import json

import pytest

from ansible_collections.xdplab.offload.plugins.filter.resume_verdict import resume_verdict
from ansible_collections.xdplab.offload.plugins.module_utils.resume import verdict

CELL = "drop-drop-driver-s64-r0-d2-rep1"


def record(**fields):
    rec = {"schema": 1, "cell_id": CELL, "experiment": "drop", "program": "drop", "location": "driver",
           "status": "ok", "n": None, "size": 64, "rate": 0, "repetition": 1}
    rec.update(fields)
    return json.dumps(rec)


def slurped(text):
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    return {"content": base64.b64encode(data).decode("ascii"), "encoding": "base64", "source": "/x"}


@pytest.mark.parametrize("content,reason", [
    ("", "empty"),
    ("  \n", "empty"),
    (record()[:40], "not valid JSON"),
    ("{corrupt", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    ("[1, 2]", "not a valid record"),
    (record(status="weird"), "not a valid record"),
    (record(schema=99), "not a valid record"),
    (record(cell_id="other-cell"), "of cell other-cell"),
])
def test_broken_records_run_again(content, reason):
    got = resume_verdict(slurped(content), CELL)
    assert got["run"] is True and reason in got["reason"], got


def test_missing_or_unreadable_records_run():
    assert resume_verdict(None, CELL)["run"] is True
    assert resume_verdict({}, CELL)["reason"] == "no record yet"
    assert resume_verdict({"failed": True, "msg": "Permission denied"}, CELL)["run"] is True
    assert verdict("not base64!", CELL, encoding="base64")["run"] is True


@pytest.mark.parametrize("status,retry,runs", [
    ("ok", False, False), ("ok", True, False),
    ("unsupported", False, False), ("unsupported", True, False),
    ("failed", False, False), ("failed", True, True),
])
def test_valid_records_are_kept_except_failed_ones_with_retry(status, retry, runs):
    got = resume_verdict(slurped(record(status=status)), CELL, retry_failed=retry)
    assert got["run"] is runs and got["status"] == status
