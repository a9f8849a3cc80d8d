"""Make the collection importable as ansible_collections.xdplab.offload in tests."""
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(ROOT, ".ansible", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "xdplab", "offload")

if not os.path.islink(LINK) and not os.path.isdir(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink("../../../..", LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
if os.path.join(ROOT, "tests") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "tests"))


# ---------------------------------------------------------------------------
# Wall time per stage (tests/unit, tests/integration, tests/quality, ...),
# measured around each test's setup, call and teardown, and printed before
# pytest's final line. Tests run one after another, so a stage's time is the
# sum of its tests' times.
# ---------------------------------------------------------------------------
import time  # noqa: E402

_STAGE_TIMES = {}
_TEST_STARTED = {}
_SESSION_TIMES = {}


def _stage_of(nodeid):
    parts = nodeid.split("::", 1)[0].split("/")
    if len(parts) >= 3 and parts[0] == "tests":
        return "/".join(parts[:2])
    return "/".join(parts[:-1]) or "."


def pytest_sessionstart(session):
    _SESSION_TIMES["start"] = time.monotonic()


def pytest_collection_finish(session):
    _SESSION_TIMES["collected"] = time.monotonic()


def pytest_runtest_logstart(nodeid, location):
    _TEST_STARTED[nodeid] = time.monotonic()


def pytest_runtest_logfinish(nodeid, location):
    started = _TEST_STARTED.pop(nodeid, None)
    if started is not None:
        seconds, count = _STAGE_TIMES.get(_stage_of(nodeid), (0.0, 0))
        _STAGE_TIMES[_stage_of(nodeid)] = (seconds + time.monotonic() - started, count + 1)


def _minutes(seconds):
    return "%d:%04.1f" % divmod(seconds, 60)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _STAGE_TIMES or getattr(config.option, "numprocesses", None):
        return  # nothing ran, or pytest-xdist workers ran the tests (ansible-test units)
    now = time.monotonic()
    terminalreporter.section("wall time per stage (measured)")
    start = _SESSION_TIMES.get("start", now)
    if "collected" in _SESSION_TIMES:
        terminalreporter.write_line("%-24s %9.1f s" % ("collection", _SESSION_TIMES["collected"] - start))
    for stage, (seconds, count) in _STAGE_TIMES.items():
        terminalreporter.write_line("%-24s %9.1f s  %8s  (%d tests)" % (stage, seconds, _minutes(seconds), count))
    terminalreporter.write_line("%-24s %9.1f s  %8s" % ("pytest session", now - start, _minutes(now - start)))
