# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: lab
type: stdout
short_description: Follow a lab run - one line per finished cell, a live rate line, the report at the end
version_added: 0.4.0
author:
  - xdplab.offload developers (!UNKNOWN)
description:
  - The P(ansible.builtin.default#callback) output, made for long measurement runs. At verbosity 0 it
    hides the ok and skipped results (and their task banners) and the C(included:) lines, as
    O(display_ok_hosts=false) and O(display_skipped_hosts=false) would; changed, failed and unreachable
    results are shown as the default callback shows them.
  - "One line per finished cell, from the C(xdplab_cell) result of the task that writes a cell's record:
    C(cell 12/78 vm_drop vm_driver rep 2: 65.2 kpps processed, loss 0.1 %, host 60 % / VM 50 % ·
    14:02 elapsed, ~21 min left). A cell that did not measure shows its status and reason, a latency
    cell its round-trip time p50/p99, a cell kept from an earlier run says so. The time left is learnt
    from the cells measured in this run, not from the kept ones."
  - At verbosity 0 the changed results of the steps inside a cell (tasks of the role
    P(xdplab.offload.experiment#role)), and their failures that the role rescues and records, are
    summed up by the cell's line and not printed, see O(hide_cell_steps).
  - While a task of P(xdplab.offload.traffic#module) (or C(xdplab.offload.cell)) runs, a thread reads
    the progress file the load generator writes under O(progress_dir) (one JSON line about every
    second) and prints a line every O(live_rate_interval) seconds, like xdp-bench -
    C(  12/30 s  5.12 Mpps offered) - for measuring windows of 5 s or more. A missing or garbled file
    prints nothing and never fails the run. The file is read on the controller, so the line appears
    when the load generator runs there (the emulated lab), not for a remote testbed generator.
  - When the playbook ends, after the recap, the path of C(report.html) (from the result of
    P(xdplab.offload.results_report#module)) and the command that resumes the run
    (C(ansible-playbook <playbook> <your -i and -e options> -e run_id=<id>)).
  - With C(-v) and more it prints everything the default callback prints, plus the cell and rate lines.
  - The collection's C(ansible.cfg) selects it (C(stdout_callback = xdplab.offload.lab)); from an
    installed copy, set C(ANSIBLE_STDOUT_CALLBACK=xdplab.offload.lab). C(ANSIBLE_STDOUT_CALLBACK=ansible.builtin.default)
    brings the default output back.
extends_documentation_fragment:
  - ansible.builtin.default_callback
  - ansible.builtin.result_format_callback
requirements:
  - set as the stdout callback (C(stdout_callback) in ansible.cfg or C(ANSIBLE_STDOUT_CALLBACK))
options:
  hide_cell_steps:
    description:
      - At verbosity 0, do not print the changed results of the tasks of the O(cell_roles) (by default
        P(xdplab.offload.experiment#role) - deploy, traffic, detach, record), nor their failures that a
        C(rescue) section handles (the cell is then recorded V(failed) or V(unsupported) with the reason);
        the cell's line sums them up. Other failures are always printed. With C(-v) everything is printed.
    type: bool
    default: true
    env:
      - name: ANSIBLE_XDPLAB_HIDE_CELL_STEPS
    ini:
      - section: callback_xdplab_lab
        key: hide_cell_steps
  cell_roles:
    description: The roles whose tasks are a cell's steps for O(hide_cell_steps).
    type: list
    elements: str
    default: [xdplab.offload.experiment]
    env:
      - name: ANSIBLE_XDPLAB_CELL_ROLES
    ini:
      - section: callback_xdplab_lab
        key: cell_roles
  live_rate:
    description: Print the live rate line of the load generator while a traffic task runs.
    type: bool
    default: true
    env:
      - name: ANSIBLE_XDPLAB_LIVE_RATE
    ini:
      - section: callback_xdplab_lab
        key: live_rate
  live_rate_interval:
    description: Seconds between two live rate lines (at least 1).
    type: float
    default: 3
    env:
      - name: ANSIBLE_XDPLAB_LIVE_RATE_INTERVAL
    ini:
      - section: callback_xdplab_lab
        key: live_rate_interval
  progress_dir:
    description:
      - Directory on the controller where the load generator writes its progress files (C(*.jsonl)).
        Only read, never written.
    type: path
    default: /run/xdplab/progress
    env:
      - name: ANSIBLE_XDPLAB_PROGRESS_DIR
    ini:
      - section: callback_xdplab_lab
        key: progress_dir
'''

EXAMPLES = r'''
# ansible.cfg of a directory you run the playbooks from:
# [defaults]
# stdout_callback = xdplab.offload.lab
#
# or for one run, from an installed copy of the collection:
# ANSIBLE_STDOUT_CALLBACK=xdplab.offload.lab ansible-playbook xdplab.offload.baremetal_offload -e profile=quick
#
# and the default output again:
# ANSIBLE_STDOUT_CALLBACK=ansible.builtin.default ansible-playbook ...
'''

import glob
import json
import os
import shlex
import threading
import time

from ansible import constants as C
from ansible import context
from ansible.playbook.block import Block
from ansible.playbook.task_include import TaskInclude
from ansible.plugins.callback.default import CallbackModule as DefaultCallbackModule

from ansible_collections.xdplab.offload.plugins.module_utils.progress import ProgressError, cell_line, rate_line

CELL_KEY = "xdplab_cell"
LIVE_RATE_ACTIONS = ("xdplab.offload.traffic", "xdplab.offload.cell")
REPORT_ACTIONS = ("xdplab.offload.results_report",)
QUIET_OPTIONS = ("display_ok_hosts", "display_skipped_hosts")
MIN_WINDOW_S = 5.0
TAIL_BYTES = 4096


def _data(result):
    """The result dict of a callback result (``result`` from ansible-core 2.19 on, ``_result`` before)."""
    data = getattr(result, "result", None)
    return data if isinstance(data, dict) else getattr(result, "_result", {})


def _task(result):
    return getattr(result, "task", None) or result._task


def _actions(task):
    return {getattr(task, "action", None), getattr(task, "resolved_action", None)}


def last_progress(path):
    """The last complete JSON object line of a progress file, or None (missing, empty, garbled)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            lines = handle.read().split(b"\n")
    except (OSError, IOError):
        return None
    for line in reversed(lines[:-1]):  # the part after the last newline may be half written
        try:
            value = json.loads(line.decode("utf-8"))
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def will_be_rescued(task):
    """True when the task lies in the C(block) part of an enclosing block that has a C(rescue) part."""
    child, parent = task, getattr(task, "_parent", None)
    while parent is not None:
        if isinstance(parent, Block) and parent.rescue and \
                any(getattr(entry, "_uuid", None) == child._uuid for entry in parent.block):
            return True
        child, parent = parent, getattr(parent, "_parent", None)
    return False


class LiveRate(threading.Thread):
    """Tails the newest progress file written since the task started and prints a rate line."""

    def __init__(self, directory, interval, show, since=None, min_window_s=MIN_WINDOW_S):
        super(LiveRate, self).__init__(name="xdplab-live-rate")
        self.daemon = True
        self.directory = directory
        self.interval = max(1.0, float(interval))
        self.show = show
        self.since = time.time() if since is None else since
        self.min_window_s = min_window_s
        self._stopped = threading.Event()

    def stop(self):
        self._stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=2)

    def newest_file(self):
        newest = None
        for path in glob.glob(os.path.join(self.directory, "*.jsonl")):
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            if mtime >= self.since - 1 and (newest is None or mtime > newest[0]):
                newest = (mtime, path)
        return newest[1] if newest else None

    def poll(self):
        """One line to print now, or None."""
        path = self.newest_file()
        progress = last_progress(path) if path else None
        return rate_line(progress, self.min_window_s) if progress else None

    def run(self):
        last_shown, last_line = 0.0, None
        while not self._stopped.wait(0.5):
            if time.monotonic() - last_shown < self.interval:
                continue
            try:
                line = self.poll()
                if line and line != last_line:
                    self.show(line)
                    last_shown, last_line = time.monotonic(), line
            except Exception:  # a progress line must never end the run
                continue


class CallbackModule(DefaultCallbackModule):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "xdplab.offload.lab"

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._live = None
        self._live_task = None
        self._report_html = None
        self._run_id = None
        self._playbooks = []
        self._cells_done = 0

    # --- what is hidden at verbosity 0 -----------------------------------------------------

    def _quiet(self):
        return self._display.verbosity == 0

    def get_option(self, k):
        if k in QUIET_OPTIONS and self._quiet():
            return False
        return super(CallbackModule, self).get_option(k)

    def _cell_step(self, task):
        role = getattr(task, "_role", None)
        return (self._quiet() and bool(self.get_option("hide_cell_steps"))
                and role is not None and role.get_name() in (self.get_option("cell_roles") or ()))

    def _rescued_cell_step(self, task):
        """A cell step whose failure a rescue section handles (the cell's line reports it)."""
        return self._cell_step(task) and will_be_rescued(task)

    # --- results -----------------------------------------------------------------------------

    def _notice(self, result):
        """Remember the report and the run id; print the cell's line. True when a cell line was printed."""
        task, data = _task(result), _data(result)
        self._stop_live(task)
        if _actions(task) & set(REPORT_ACTIONS) and isinstance(data.get("report_html"), str):
            self._report_html = data["report_html"]
        cell = data.get(CELL_KEY)
        if not isinstance(cell, dict):
            return False
        if cell.get("run_id"):
            self._run_id = str(cell["run_id"])
        self._cells_done += 1
        try:
            line = cell_line(cell, done=self._cells_done)
        except (ProgressError, TypeError, ValueError) as exc:
            line = "cell: cannot format %s (%s)" % (CELL_KEY, exc)
        self._display.display(line, color=C.COLOR_CHANGED if cell.get("record", {}).get("status") == "ok"
                              else C.COLOR_WARN)
        return True

    def v2_runner_on_ok(self, result):
        task = _task(result)
        celled = self._notice(result)
        if self._quiet() and (celled or self._cell_step(task) or isinstance(task, TaskInclude)):
            return
        super(CallbackModule, self).v2_runner_on_ok(result)

    def v2_runner_item_on_ok(self, result):
        celled = self._notice(result)
        if self._quiet() and (celled or self._cell_step(_task(result))):
            return
        super(CallbackModule, self).v2_runner_item_on_ok(result)

    def v2_on_file_diff(self, result):
        if self._cell_step(_task(result)):
            return
        super(CallbackModule, self).v2_on_file_diff(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._stop_live(_task(result))
        if self._rescued_cell_step(_task(result)):
            return
        super(CallbackModule, self).v2_runner_on_failed(result, ignore_errors)

    def v2_runner_item_on_failed(self, result):
        if self._rescued_cell_step(_task(result)):
            return
        super(CallbackModule, self).v2_runner_item_on_failed(result)

    def v2_runner_on_unreachable(self, result):
        self._stop_live(_task(result))
        super(CallbackModule, self).v2_runner_on_unreachable(result)

    def v2_runner_on_skipped(self, result):
        self._stop_live(_task(result))
        super(CallbackModule, self).v2_runner_on_skipped(result)

    def v2_playbook_on_include(self, included_file):
        if not self._quiet():
            super(CallbackModule, self).v2_playbook_on_include(included_file)

    # --- the live rate line ------------------------------------------------------------------

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._stop_live()
        super(CallbackModule, self).v2_playbook_on_task_start(task, is_conditional)
        if _actions(task) & set(LIVE_RATE_ACTIONS) and self.get_option("live_rate"):
            try:
                self._live = LiveRate(self.get_option("progress_dir"), self.get_option("live_rate_interval"),
                                      self._display.display)
                self._live_task = task._uuid
                self._live.start()
            except Exception as exc:  # never fail the run for the rate line
                self._display.vvv("xdplab.offload.lab: no live rate line (%s)" % exc)
                self._live = None

    def _stop_live(self, task=None):
        if self._live is not None and (task is None or task._uuid == self._live_task):
            self._live.stop()
            self._live, self._live_task = None, None

    # --- the end -----------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        self._playbooks.append(getattr(playbook, "_file_name", None))
        super(CallbackModule, self).v2_playbook_on_start(playbook)

    def resume_command(self):
        """``ansible-playbook <playbook> <the -i and -e given> -e run_id=<id>``, or None without a run id."""
        if not self._run_id:
            return None
        args = context.CLIARGS.get("args") or tuple(p for p in self._playbooks if p)
        command = ["ansible-playbook"] + list(args)
        inventory = context.CLIARGS.get("inventory")
        if inventory and list(inventory) != list(C.DEFAULT_HOST_LIST or []):
            for source in inventory:
                command += ["-i", source]
        for extra in context.CLIARGS.get("extra_vars") or ():
            if not str(extra).startswith("run_id="):
                command += ["-e", extra]
        command += ["-e", "run_id=%s" % self._run_id]
        return " ".join(shlex.quote(str(part)) for part in command)

    def v2_playbook_on_stats(self, stats):
        self._stop_live()
        super(CallbackModule, self).v2_playbook_on_stats(stats)
        if self._report_html and os.path.exists(self._report_html):
            self._display.display("report: %s" % self._report_html, color=C.COLOR_OK)
        resume = self.resume_command()
        if resume:
            self._display.display("resume: %s" % resume, color=C.COLOR_OK)
