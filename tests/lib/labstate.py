# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the lab left on the machine, for the playbook tests' checks and their cleanup."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os


def read_json(path):
    """A JSON object from ``path``, or {} when it is missing or unreadable."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def alive(pid, name):
    """True if ``pid`` still runs the command ``name`` (pids are reused)."""
    try:
        with open("/proc/%d/comm" % pid) as handle:
            return handle.read().strip() == name[:15]
    except OSError:
        return False


def links():
    return set(os.listdir("/sys/class/net"))


def netns():
    return set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()


def stop_recorded_daemons(state_files):
    """SIGTERM the daemons a role's state file says it started (by recorded PID), then remove the files."""
    for state in state_files:
        for entry in reversed(read_json(state).get("started", [])):
            if alive(entry["pid"], entry["name"]):
                os.kill(entry["pid"], 15)
        if os.path.exists(state):
            os.unlink(state)


def records(results_dir):
    """The records of one run's results directory, by cell id."""
    found = {}
    for path in glob.glob(os.path.join(results_dir, "records", "*.json")):
        with open(path) as handle:
            record = json.load(handle)
        found[record["cell_id"]] = record
    return found
