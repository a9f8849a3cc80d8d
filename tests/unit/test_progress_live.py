# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live rate line of the xdplab.offload.lab callback: a real thread tailing real files.

The progress file is written here by the test in the load generator's format
({"elapsed_s","duration_s","sent","pps"}, one JSON line a second); the rates are made up.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
import time

from ansible_collections.xdplab.offload.plugins.callback import lab


def write_lines(path, lines, partial=""):
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line) + "\n")
        handle.write(partial)


def test_last_progress_skips_a_half_written_last_line_and_garbage(tmp_path):
    path = str(tmp_path / "gen.jsonl")
    write_lines(path, [{"elapsed_s": 1, "duration_s": 30, "sent": 10, "pps": 10.0},
                       {"elapsed_s": 2, "duration_s": 30, "sent": 30, "pps": 20.0}], partial='{"elapsed_s": 3, "dur')
    assert lab.last_progress(path)["elapsed_s"] == 2
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("not json\n[1, 2]\n\x00\x01\n")
    assert lab.last_progress(path) is None
    assert lab.last_progress(str(tmp_path / "absent.jsonl")) is None


def test_the_newest_file_written_since_the_task_started_is_read(tmp_path):
    old, new = str(tmp_path / "old.jsonl"), str(tmp_path / "new.jsonl")
    write_lines(old, [{"elapsed_s": 9, "duration_s": 30, "sent": 1, "pps": 1e6}])
    os.utime(old, (time.time() - 600, time.time() - 600))  # a left-over of an earlier run
    live = lab.LiveRate(str(tmp_path), 1, print)
    assert live.poll() is None
    write_lines(new, [{"elapsed_s": 12.3, "duration_s": 30, "sent": 61e6, "pps": 5.12e6}])
    assert live.poll() == "  12/30 s  5.12 Mpps offered"


def test_the_thread_prints_every_interval_and_never_fails(tmp_path):
    shown = []
    path = str(tmp_path / "gen.jsonl")
    live = lab.LiveRate(str(tmp_path), 1, shown.append)
    live.start()
    try:
        time.sleep(0.7)  # nothing there yet: nothing printed, no error
        for second in range(1, 5):
            write_lines(path, [{"elapsed_s": second, "duration_s": 10, "sent": second * 1000, "pps": 1000.0 * second}])
            time.sleep(1.05)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("garbled\n")
        time.sleep(1.2)
        os.unlink(path)  # the generator removes it at the end
        time.sleep(0.7)
        assert live.is_alive()
    finally:
        live.stop()
    assert not live.is_alive()
    assert 2 <= len(shown) <= 4, shown
    assert all(line.startswith("  ") and line.endswith(" kpps offered") and "/10 s" in line for line in shown), shown
    assert shown == sorted(shown), shown


def test_short_windows_print_nothing(tmp_path):
    shown = []
    write_lines(str(tmp_path / "gen.jsonl"), [{"elapsed_s": 1, "duration_s": 2, "sent": 1, "pps": 1e6}])
    live = lab.LiveRate(str(tmp_path), 1, shown.append)
    live.start()
    time.sleep(1.3)
    live.stop()
    assert shown == []


def test_a_missing_directory_is_fine():
    assert lab.LiveRate("/nonexistent/xl-progress", 3, print).poll() is None


# The callback as ansible-playbook loads it (plugin loader, options from its DOCUMENTATION), in an
# interpreter of its own: this one imported the collection from sys.path, which the loader refuses.
HOOK_SCRIPT = r"""
import json, sys, time, types
from ansible.plugins.loader import callback_loader, init_plugin_loader
from ansible.playbook.task import Task
collections, progress_dir, action, live_rate = sys.argv[1:5]
init_plugin_loader([collections])
callback = callback_loader.get("xdplab.offload.lab")
callback.set_options(direct={"progress_dir": progress_dir, "live_rate_interval": 1, "live_rate": live_rate == "yes"})
callback._play = types.SimpleNamespace(strategy="linear")
shown = []
callback._display.display = lambda msg, *args, **kwargs: shown.append(msg)
task = Task.load({"name": "xl-cb", action: {}})
callback.v2_playbook_on_task_start(task, False)
started = callback._live is not None
for second in (1, 2, 3):
    with open(progress_dir + "/gen.jsonl", "w") as handle:
        handle.write(json.dumps({"elapsed_s": second, "duration_s": 10, "sent": 1, "pps": 2e6}) + "\n")
    time.sleep(1.05)
thread = callback._live
callback.v2_runner_on_skipped(types.SimpleNamespace(task=task, result={}, _result={}))
print(json.dumps({"started": started, "stopped": callback._live is None and not (thread and thread.is_alive()),
                  "shown": shown}))
"""


def run_hook(tmp_path, action, live_rate=True):
    collections = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".ansible", "collections"))
    proc = subprocess.run([sys.executable, "-c", HOOK_SCRIPT, collections, str(tmp_path), action,
                           "yes" if live_rate else "no"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_a_traffic_task_starts_the_live_line_and_its_result_stops_it(tmp_path):
    seen = run_hook(tmp_path, "xdplab.offload.traffic")
    assert seen["started"] and seen["stopped"]
    assert seen["shown"] and all(line.endswith("/10 s  2 Mpps offered") for line in seen["shown"]), seen


def test_other_tasks_and_a_disabled_line_start_no_thread(tmp_path):
    assert run_hook(tmp_path, "ansible.builtin.debug") == {"started": False, "stopped": True, "shown": []}
    assert run_hook(tmp_path, "xdplab.offload.cell", live_rate=False)["started"] is False
