# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as users get it: build the tarball, install it into an empty
collections path, and use the installed copy, never the work tree.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import uuid

import pytest
import yaml

from lib.gates import ROOT, run, tool, tool_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as _handle:
    GALAXY = yaml.safe_load(_handle)
FQCN = "%s.%s" % (GALAXY["namespace"], GALAXY["name"])


def _source_files(pattern):
    """Files of the work tree matching ``pattern`` (relative to the root)."""
    return sorted(os.path.relpath(path, ROOT) for path in glob.glob(os.path.join(ROOT, pattern), recursive=True)
                  if os.path.isfile(path))


def _is_build_output(path):
    return bool(re.search(r"(^|/)build(/|$)|\.(o|so|a|pyc)$|(^|/)__pycache__(/|$)", path))


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("galaxy-build"))
    result = run([tool("ansible-galaxy"), "collection", "build", "--output-path", out, ROOT],
                 "galaxy-build", cwd=out, timeout=300)
    assert result.returncode == 0, result.tail()
    built = glob.glob(os.path.join(out, "%s-%s-*.tar.gz" % (GALAXY["namespace"], GALAXY["name"])))
    assert len(built) == 1, "expected one tarball in %s, found %s" % (out, built)
    return built[0]


@pytest.fixture(scope="module")
def members(tarball):
    with tarfile.open(tarball) as tar:
        return set(member.name for member in tar.getmembers() if member.isfile())


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory):
    """The tarball installed into an otherwise empty collections path; returns that path."""
    path = str(tmp_path_factory.mktemp("collections"))
    # --offline: dependencies (community.general) come from what is installed (the ansible package).
    result = run([tool("ansible-galaxy"), "collection", "install", "--offline", "-p", path, tarball],
                 "galaxy-install", cwd=path, timeout=300)
    assert result.returncode == 0, result.tail()
    assert os.path.isdir(os.path.join(path, "ansible_collections", GALAXY["namespace"], GALAXY["name"]))
    return path


def installed_env(collections_path):
    """Only the installed copy: its path alone, no ansible.cfg of the work tree."""
    return tool_env(ANSIBLE_COLLECTIONS_PATH=collections_path)


def test_tarball_ships_the_bpf_sources_headers_and_makefiles(members):
    expected = [p for p in _source_files("bpf/**/*") if not _is_build_output(p)]
    assert "bpf/Makefile" in expected and any(p.endswith(".bpf.c") for p in expected)
    assert any(p.startswith("bpf/include/") and p.endswith(".h") for p in expected)
    missing = [p for p in expected if p not in members]
    assert missing == [], "bpf sources missing from the tarball: %s" % missing


def test_tarball_ships_roles_plugins_playbooks_and_metadata(members):
    expected = ["MANIFEST.json", "FILES.json", "meta/runtime.yml", "COPYING"]
    expected += _source_files("roles/*/*/*.yml") + _source_files("roles/*/templates/**/*") + \
        _source_files("roles/*/files/**/*")
    expected += [p for p in _source_files("plugins/**/*.py") if not _is_build_output(p)]
    expected += _source_files("playbooks/*.yml") + _source_files("changelogs/*.yaml")
    assert any(p.startswith("roles/") for p in expected) and any(p.startswith("plugins/modules/") for p in expected)
    missing = [p for p in expected if p not in members]
    assert missing == [], "missing from the tarball: %s" % missing


def test_tarball_has_no_build_outputs_or_local_state(members):
    unwanted = sorted(p for p in members if _is_build_output(p) or p.split("/")[0] in (
        ".venv", ".ansible", ".git", "results", ".pytest_cache", ".ci") or p.startswith("tests/output/"))
    assert unwanted == [], "the tarball carries files that are not part of the collection: %s" % unwanted[:40]


SMOKE = r"""
- name: Smoke test of the installed collection
  hosts: localhost
  gather_facts: false
  vars:
    installed: "{{ lookup('ansible.builtin.env', 'XL_INSTALLED') }}"
    matrix:
      drop:
        programs: [drop]
        locations: [driver, generic]
        sizes: [64]
        repetitions: 2
        duration: 1
    cells: "{{ lookup('xdplab.offload.matrix', matrix, wantlist=True) }}"
  tasks:
    - name: The matrix lookup expands the cartesian product with unique stable ids
      ansible.builtin.assert:
        that:
          - cells | length == 4
          - cells | map(attribute='id') | unique | length == 4
          - cells | map(attribute='location') | unique | sort == ['driver', 'generic']

    - name: The counter_delta filter subtracts per key
      ansible.builtin.assert:
        that: "({'rx': 15, 'tx': 7} | xdplab.offload.counter_delta({'rx': 5, 'tx': 7})) == {'rx': 10, 'tx': 0}"

    - name: Read the loopback interface's counters
      xdplab.offload.link_stats:
        interface: lo
      register: lo

    - name: link_stats reports lo with its counters
      ansible.builtin.assert:
        that:
          - lo.interface == 'lo'
          - lo.ifindex == 1
          - lo.stats.rx_packets is integer

    - name: Plan attaching the shipped drop program (check mode compiles, loads and attaches nothing)
      xdplab.offload.xdp_program:
        interface: lo
        program: drop
        mode: generic
        bpf_dir: "{{ installed }}/bpf"
        build_dir: "{{ lookup('ansible.builtin.env', 'XL_BUILD_DIR') }}"
      check_mode: true
      register: prog

    - name: The program was read from the installed bpf/ sources and would be attached
      ansible.builtin.assert:
        that:
          - prog is changed
          - prog.tag is none
          - prog.tag_known is false
          - prog.program_hash is match('^[0-9a-f]{64}$')
          - prog.prog_id is none

    - name: The lab_wire role runs from the installed copy (check mode, nothing is made)
      ansible.builtin.include_role:
        name: xdplab.offload.lab_wire
        apply:
          check_mode: true
      vars:
        lab_wire_lg_netns: xl-pk-lg
        lab_wire_dut_netns: xl-pk-dut
        lab_wire_lg_interface: xl-pkl0
        lab_wire_dut_interface: xl-pkd0

    - name: The role would create the wire
      ansible.builtin.assert:
        that:
          - lab_wire_result is changed
          - lab_wire_result.changes | length > 0
"""


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="xdp_program loads a BPF program (root)")
def test_smoke_playbook_runs_against_the_installed_copy(installed, tmp_path):
    coll_dir = os.path.join(installed, "ansible_collections", GALAXY["namespace"], GALAXY["name"])
    playbook = tmp_path / "smoke.yml"
    playbook.write_text(SMOKE)
    build_dir = tmp_path / "bpf-build"
    env = installed_env(installed)
    env.update(XL_INSTALLED=coll_dir, XL_BUILD_DIR=str(build_dir))
    result = run([tool("ansible-playbook"), "-i", "localhost,", "-c", "local",
                  "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)],
                 "packaging-smoke", cwd=str(tmp_path), env=env, timeout=600)
    assert result.returncode == 0, result.tail()
    assert re.search(r"localhost\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", result.output)
    # Nothing attached to lo and no wire left behind.
    link = json.loads(subprocess.run(["ip", "-json", "link", "show", "lo"], capture_output=True,
                                     text=True, check=True).stdout)[0]
    assert "xdp" not in link, "the check-mode smoke test attached a program to lo: %s" % link.get("xdp")
    assert not build_dir.exists(), "check mode compiled into %s" % build_dir
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "xl-pk-" not in netns


def _lab_wire_links():
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split()
    return sorted({link["ifname"] for link in links} & {"xl-lg0", "xl-dut0"} | set(netns) & {"xl-lg", "xl-dut"})


ONE_CELL = {"drop": {"programs": ["drop"], "locations": ["driver"], "sizes": [64], "duration": 1,
                     "repetitions": 1}}


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="the bare-metal playbook builds the emulated lab (root)")
def test_the_installed_playbooks_run_from_a_users_directory_and_leave_results_there(installed, tmp_path):
    """As a user of another lab: the installed copy, its shipped inventory, a working directory of
    their own. The bare-metal playbook measures one cell (its programs built from the installed
    bpf/), writes the record and summary.csv under ./results of that directory, never inside the
    collection, records the installed version, and removes the wire when it ends."""
    if _lab_wire_links():
        pytest.skip("the emulated lab's wire is up (%s); this test builds and removes it itself" % _lab_wire_links())
    coll_dir = os.path.join(installed, "ansible_collections", GALAXY["namespace"], GALAXY["name"])
    inventory = os.path.join(coll_dir, "inventory", "emulated.yml")
    workdir = tmp_path / "my-lab"
    workdir.mkdir()
    env = installed_env(installed)
    syntax = run([tool("ansible-playbook"), "-i", inventory, "--syntax-check", FQCN + ".vm_offload"],
                 "packaging-vm-syntax", cwd=str(workdir), env=env, timeout=300)
    assert syntax.returncode == 0, syntax.tail()
    run_id = "xl-pkg-%s" % uuid.uuid4().hex[:8]
    extra = {"profile": "quick", "experiments": ONE_CELL, "run_id": run_id}
    try:
        result = run([tool("ansible-playbook"), "-i", inventory, FQCN + ".baremetal_offload", "-e", json.dumps(extra)],
                     "packaging-baremetal", cwd=str(workdir), env=env, timeout=1500)
        assert result.returncode == 0, result.tail()
        run_dir = workdir / "results" / run_id
        records = sorted(glob.glob(str(run_dir / "records" / "*.json")))
        assert len(records) == 1, records
        with open(records[0], encoding="utf-8") as handle:
            record = json.load(handle)
        assert record["status"] == "ok", record.get("reason")
        assert record["location"] == "driver" and record["processed_pps"] > 0
        assert record["provenance"]["collection_version"] == str(GALAXY["version"])
        assert (run_dir / "summary.csv").is_file()
        assert not os.path.exists(os.path.join(coll_dir, "results")), "results landed inside the installed collection"
        assert _lab_wire_links() == [], "the run left the wire behind"
    finally:
        shutil.rmtree(os.path.join("/opt/xdplab/results", run_id), ignore_errors=True)
        if _lab_wire_links():
            run([tool("ansible-playbook"), "-i", inventory, FQCN + ".teardown"], "packaging-teardown",
                cwd=str(workdir), env=env, timeout=600)


def _plugin_names(coll_dir, kind):
    if kind == "role":
        return sorted(os.path.basename(p) for p in glob.glob(os.path.join(coll_dir, "roles", "*"))
                      if os.path.isdir(p))
    if kind == "filter":
        return None  # names come from each file's FilterModule; ansible-doc lists them
    files = glob.glob(os.path.join(coll_dir, "plugins", {"module": "modules"}.get(kind, kind), "*.py"))
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in files
                  if not os.path.basename(p).startswith("_"))


@pytest.mark.parametrize("kind", ["module", "lookup", "filter", "role"])
def test_ansible_doc_renders_every_plugin_and_role_of_the_installed_copy(installed, kind, tmp_path):
    coll_dir = os.path.join(installed, "ansible_collections", GALAXY["namespace"], GALAXY["name"])
    env = installed_env(installed)
    listed = run([tool("ansible-doc"), "-t", kind, "--list", "--json", FQCN], "ansible-doc-list-" + kind,
                 cwd=str(tmp_path), env=env, timeout=300)
    assert listed.returncode == 0, listed.tail()
    listed_names = sorted(name.split(".")[-1] for name in json.loads(listed.output[listed.output.index("{"):]))
    names = _plugin_names(coll_dir, kind)
    if names is None:
        names = listed_names
    else:
        assert sorted(set(names) - set(listed_names)) == [], (
            "ansible-doc does not list these %ss of the installed copy (documentation missing or broken)" % kind)
    if not names:
        pytest.skip("the collection has no %s plugins" % kind)
    rendered = run([tool("ansible-doc"), "-t", kind] + ["%s.%s" % (FQCN, name) for name in names],
                   "ansible-doc-" + kind, cwd=str(tmp_path), env=env, timeout=600)
    assert rendered.returncode == 0, rendered.tail(60)
    assert "[ERROR]" not in rendered.output and "[WARNING]" not in rendered.output, rendered.tail(60)
    # Rendered from the installed copy, not from the work tree.
    paths = re.findall(r"\((/[^)]+)\)", rendered.output)
    if kind != "role":
        assert paths and all(p.startswith(installed) for p in paths if p.endswith(".py")), paths[:10]
