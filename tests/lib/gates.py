# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the ecosystem's tools (ansible-lint, ansible-test, molecule, ansible-galaxy,
antsibull-changelog) from the project venv, for the tests in tests/quality.

Each run keeps its whole output in ``tests/output/quality/<name>.log`` and a
failing test shows the end of it.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
LOG_DIR = os.path.join(ROOT, "tests", "output", "quality")

# Top-level entries of the work tree that are not part of the collection.
NOT_COLLECTION_TOP = {".venv", ".ansible", ".git", "results", ".pytest_cache", ".ci"}
# Entries skipped at any depth.
NOT_COLLECTION_ANY = {"__pycache__", ".pytest_cache"}


def tool(name):
    """Path of a console script of the project venv (falls back to PATH)."""
    path = os.path.join(VENV_BIN, name)
    if os.path.exists(path):
        return path
    return shutil.which(name) or name


def tool_env(**extra):
    """Environment for the tools: the venv first on PATH, no colours, no user config."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([VENV_BIN, os.path.dirname(sys.executable), env.get("PATH", "")])
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", NO_COLOR="1", PY_COLORS="0",
               TERM="dumb", PYTHONUNBUFFERED="1")
    env.pop("ANSIBLE_CONFIG", None)
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    env.pop("ANSIBLE_COLLECTIONS_PATHS", None)
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class Run(object):
    """The result of one tool run."""

    def __init__(self, argv, returncode, output, log_path):
        self.argv, self.returncode, self.output, self.log_path = argv, returncode, output, log_path

    def tail(self, lines=120):
        kept = self.output.splitlines()[-lines:]
        return "$ %s (rc=%s, full log: %s)\n%s" % (
            " ".join(self.argv), self.returncode, self.log_path, "\n".join(kept))

    def lines(self, prefix):
        return [line for line in self.output.splitlines() if line.startswith(prefix)]


def run(argv, name, cwd=ROOT, timeout=1800, env=None):
    """Run ``argv`` with stdout and stderr merged; keep the log under tests/output/quality."""
    os.makedirs(LOG_DIR, exist_ok=True)
    log_path = os.path.join(LOG_DIR, name + ".log")
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env or tool_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
        output, returncode = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout or ""
        if isinstance(output, bytes):
            output = output.decode("utf-8", "replace")
        output += "\n[timed out after %s s]" % timeout
        returncode = None
    with open(log_path, "w", encoding="utf-8") as handle:
        handle.write("$ %s\n(cwd %s)\n%s" % (" ".join(argv), cwd, output))
    return Run(argv, returncode, output, log_path)


def copy_collection(dest):
    """Copy (never link: ansible-test resolves links) the collection's files to ``dest``.

    Leaves out the venv, the collections link, results, git data, caches and
    build outputs of bpf/ (``build`` directories and objects).
    """
    def ignore(directory, names):
        rel = os.path.relpath(directory, ROOT)
        skipped = set()
        for name in names:
            if rel == "." and name in NOT_COLLECTION_TOP:
                skipped.add(name)
            elif name in NOT_COLLECTION_ANY:
                skipped.add(name)
            elif rel == "tests" and name == "output":
                skipped.add(name)
            elif (rel == "bpf" or rel.startswith("bpf" + os.sep)) and (
                    name == "build" or name.endswith((".o", ".so", ".a"))):
                skipped.add(name)
        return skipped

    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest
