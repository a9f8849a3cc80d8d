# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The xdplab.offload.lab stdout callback in a real ansible-playbook run, at verbosity 0 and -v.

tests/integration/playbooks/callback_lab.yml has ok, skipped, changed and ignored-failed tasks,
three cells (steps in a test role, one rescued failure) and the real results role. The cells'
``xdplab_cell`` results come from
ansible.builtin.debug, a stand-in for the experiment role's record task (that role does not
return ``xdplab_cell`` yet); their records are written here, with made-up numbers, and are
also what the results role reports on. Names start with ``xl-cb``; the results go to a
temporary directory removed afterwards.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from lib.modrun import ROOT, VENV_BIN

PLAYBOOK = "tests/integration/playbooks/callback_lab.yml"
RUN_ID = "xl-cb-run"


def record(cell_id, **fields):
    base = {"schema": 1, "run_id": RUN_ID, "cell_id": cell_id, "experiment": "vm_drop", "program": "drop",
            "n": None, "location": "vm_driver", "mode": "driver", "loader": "object", "size": 64, "rate": 100000,
            "repetition": 1, "duration_s": 10, "status": "ok", "reason": None, "provenance": {"lab": "emulated"}}
    base.update(fields)
    return base


CELLS = [
    {"record": record("vm_drop-drop-vm_driver-s64-r100000-rep1", processed_pps=65200.0, rate_pps=1e5,
                      sent_packets=1000000, lost_packets=1000, cpu_host_share=60.2, cpu_vm_share=49.8),
     "kept": True, "resumed": 1},
    {"record": record("vm_drop-drop-vm_driver-s64-r100000-rep2", repetition=2, processed_pps=71500.0, rate_pps=1e5,
                      sent_packets=1000000, lost_packets=285000, cpu_host_share=62.9, cpu_vm_share=49.1), "resumed": 1},
    {"record": record("vm_drop-drop-nic-s64-r100000-rep1", location="nic", mode=None, status="unsupported",
                      reason="Deploy the program at the location: mode offload needs an offload-capable NIC"),
     "resumed": 1},
]


@pytest.fixture(scope="module")
def results_dir():
    path = tempfile.mkdtemp(prefix="xl-cb-results-")
    records = os.path.join(path, RUN_ID, "records")
    os.makedirs(records)
    for cell in CELLS:
        with open(os.path.join(records, cell["record"]["cell_id"] + ".json"), "w", encoding="utf-8") as handle:
            json.dump(cell["record"], handle)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run(results_dir, *options):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="xdplab.offload.lab", ANSIBLE_NOCOLOR="1",
               ANSIBLE_XDPLAB_CELL_ROLES="xl_cb_cell")
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK, "-e", "results_dir=%s" % results_dir,
           "-e", json.dumps({"xl_cb_records": CELLS})] + list(options)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc.stdout


def cell_lines(stdout):
    return [line for line in stdout.splitlines() if line.startswith("cell ")]


def check_cells(stdout):
    lines = cell_lines(stdout)
    assert len(lines) == 3, stdout[-6000:]
    assert re.fullmatch(r"cell 1/4 vm_drop vm_driver rep 1: kept from an earlier run \(65\.2 kpps processed, "
                        r"loss 0\.1 %, host 60 % / VM 50 %\) · 2:0\d elapsed, time left unknown yet", lines[0]), lines
    # One measured cell (the second) in ~125 s; two left.
    assert re.fullmatch(r"cell 2/4 vm_drop vm_driver rep 2: 71\.5 kpps processed, loss 28\.5 %, host 63 % / VM 49 % "
                        r"· 2:0\d elapsed, ~4 min left", lines[1]), lines
    assert re.fullmatch(r"cell 3/4 vm_drop nic rep 1: unsupported: mode offload needs an offload-capable NIC "
                        r"· 2:0\d elapsed, ~\d+ min left", lines[2]), lines


def check_end(stdout, results_dir):
    report = os.path.join(results_dir, RUN_ID, "report.html")
    assert os.path.isfile(report)
    tail = stdout[stdout.index("PLAY RECAP"):]
    assert "report: %s" % report in tail.splitlines(), tail
    resume = [line for line in tail.splitlines() if line.startswith("resume: ")]
    assert resume == ["resume: ansible-playbook %s -e results_dir=%s -e '{\"xl_cb_records\": %s}' -e run_id=%s"
                      % (PLAYBOOK, results_dir, json.dumps(CELLS).replace("'", "'\"'\"'"), RUN_ID)], tail


def test_verbosity_0_shows_cells_changes_failures_and_the_end_only(results_dir):
    out = run(results_dir)
    check_cells(out)
    check_end(out, results_dir)
    for noise in ("xl-cb-ok-noise", "TASK [Xl-cb ok task]", "TASK [Xl-cb skipped task]", "skipping:",
                  "included:", "ok: [localhost]", "Xl-cb write the cell's record", "Xl-cb cell step"):
        assert noise not in out, noise  # the cell's steps, their rescued failure too, are in its line
    assert "TASK [Xl-cb changed task]" in out and "changed: [localhost]" in out
    failed = out.index("TASK [Xl-cb failed task, ignored]")
    assert "fatal: [localhost]: FAILED!" in out[failed:] and "...ignoring" in out[failed:]
    assert "PLAY RECAP" in out


def test_verbose_shows_everything_the_default_callback_shows(results_dir):
    out = run(results_dir, "-v")
    check_cells(out)
    check_end(out, results_dir)
    for shown in ("xl-cb-ok-noise", "TASK [Xl-cb ok task]", "TASK [Xl-cb skipped task]", "skipping: [localhost]",
                  "included: ", "ok: [localhost]", "TASK [Xl-cb changed task]", "...ignoring",
                  "TASK [xl_cb_cell : Xl-cb write the cell's record", "TASK [xl_cb_cell : Xl-cb cell step that changes]"):
        assert shown in out, shown
    failed = out.index("TASK [xl_cb_cell : Xl-cb cell step that fails]")
    assert "fatal: [localhost]: FAILED!" in out[failed:]


def test_the_default_callback_is_one_variable_away(results_dir):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK, "-e", "results_dir=%s" % results_dir,
                           "-e", json.dumps({"xl_cb_records": CELLS})], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False, env=env)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert cell_lines(proc.stdout) == [] and "xl-cb-ok-noise" in proc.stdout and "resume: " not in proc.stdout


USER_PLAYBOOK = """---
- name: A user's play
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Noise
      ansible.builtin.debug:
        msg: xl-cb-user-noise
    - name: A cell
      ansible.builtin.debug:
        var: xdplab_cell
      vars:
        xdplab_cell: {index: 1, total: 1, run_id: xl-cb-user, started: null, resumed: 0,
                      record: {experiment: drop, location: driver, repetition: 1, status: ok, processed_pps: 7.2e6}}
"""


def test_an_installed_copy_gives_the_callback_through_the_environment(tmp_path):
    """ansible.cfg is not in the tarball: ANSIBLE_STDOUT_CALLBACK selects the callback, as README.md says."""
    from lib.gates import run as run_tool, tool, tool_env

    build, collections, workdir = tmp_path / "build", tmp_path / "collections", tmp_path / "my-lab"
    for path in (build, collections, workdir):
        path.mkdir()
    built = run_tool([tool("ansible-galaxy"), "collection", "build", "--output-path", str(build), ROOT],
                     "callback-galaxy-build", cwd=str(build), timeout=300)
    assert built.returncode == 0, built.tail()
    tarball = [str(p) for p in build.iterdir() if p.name.endswith(".tar.gz")]
    installed = run_tool([tool("ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections)] + tarball,
                         "callback-galaxy-install", cwd=str(collections), timeout=300)
    assert installed.returncode == 0, installed.tail()
    (workdir / "site.yml").write_text(USER_PLAYBOOK)
    env = tool_env(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_STDOUT_CALLBACK="xdplab.offload.lab")
    proc = subprocess.run([tool("ansible-playbook"), "-i", "localhost,", "site.yml"], cwd=str(workdir), env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "cell 1/1 drop driver rep 1: 7.2 Mpps processed" in proc.stdout.splitlines(), proc.stdout
    assert "xl-cb-user-noise" not in proc.stdout
    assert "resume: ansible-playbook site.yml -i localhost, -e run_id=xl-cb-user" in proc.stdout.splitlines()
