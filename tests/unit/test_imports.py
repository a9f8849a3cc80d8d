# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything the collection and its tests import is installed by ``make setup``.

pytest imports every test module (and the module_utils they import) before any
test runs, so a package that a role installs while another test runs comes too
late. These tests import every plugin and module_utils file, and every
third-party module that a plugin or test names, in a clean interpreter (the
one the tests run with, no state of this process), and fail with the missing
package's name and where ``make setup`` must install it.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, ".ansible", "collections")

# What is checked is the interpreter make setup builds (.venv, with the system site-packages
# that Debian's python3-libvirt and python3-bpfcc live in). ansible-test units runs these
# files in a venv of its own, without system site-packages: nothing to check there.
pytestmark = pytest.mark.skipif(
    os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(ROOT, ".venv")),
    reason="checks the interpreter make setup builds (%s), not %s" % (os.path.join(ROOT, ".venv"), sys.prefix))

# Where each third-party import comes from (shown when it is missing).
SOURCES = {
    "libvirt": "Debian package python3-libvirt (roles/lab_host lab_host_packages)",
    "bcc": "Debian package python3-bpfcc (roles/lab_host lab_host_packages)",
    "pyroute2": "requirements.txt (the controller venv) and lab_host_venv_packages",
    "pandas": "requirements.txt",
    "matplotlib": "requirements.txt",
    "yaml": "requirements.txt (PyYAML, with ansible-core)",
    "jinja2": "requirements.txt (with ansible-core)",
    "pytest": "requirements.txt",
}
# Names that are this project's own (tests/lib, test modules) or Ansible's.
OWN = ("ansible", "ansible_collections", "lib", "conftest")

CHECK = r"""
import importlib, json, sys
names = json.loads(sys.argv[1])
missing = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # report every failure, not only ImportError
        missing[name] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(missing))
"""


def _clean_run(names):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", CHECK, json.dumps(sorted(names))], capture_output=True,
                          text=True, env=env, cwd="/", timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _python_files(*patterns):
    files = []
    for pattern in patterns:
        files += glob.glob(os.path.join(ROOT, pattern), recursive=True)
    return sorted(path for path in files if "__pycache__" not in path)


def _plugin_modules():
    names = []
    for path in _python_files("plugins/**/*.py"):
        rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        if not rel.endswith("__init__"):
            names.append("ansible_collections.xdplab.offload." + rel)
    return names


def _third_party_imports(paths):
    """Top-level names of absolute imports in ``paths`` that are neither stdlib nor the project's."""
    local = {os.path.basename(p)[:-3] for p in _python_files("tests/**/*.py")}
    found = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in sys.stdlib_module_names or top in OWN or top in local or top == "__future__":
                    continue
                found.setdefault(top, os.path.relpath(path, ROOT))
    return found


def test_every_plugin_and_module_utils_file_imports_with_its_optional_libraries_present():
    names = _plugin_modules()
    assert len(names) > 30, names
    missing = _clean_run(names)
    assert missing == {}, "plugin files that do not import in a clean interpreter: %s" % missing
    # Optional libraries are guarded (HAS_X = False): a guard that is off means make setup missed a package.
    probe = r"""
import importlib, json, sys
off = {}
for name in json.loads(sys.argv[1]):
    mod = importlib.import_module(name)
    for attr, value in vars(mod).items():
        if attr.startswith("HAS_") and value is False:
            off.setdefault(name, []).append(attr)
print(json.dumps(off))
"""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", probe, json.dumps(names)], capture_output=True, text=True,
                          env=env, cwd="/", timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {}, (
        "guarded imports that are off (their package is not installed by make setup): %s" % proc.stdout)


def test_every_third_party_module_a_plugin_or_test_imports_is_installed():
    imports = _third_party_imports(_python_files("plugins/**/*.py", "tests/**/*.py", "conftest.py"))
    assert "pyroute2" in imports and "libvirt" in imports, imports
    missing = _clean_run(list(imports))
    report = ["%s (imported by %s; install it from %s): %s"
              % (name, imports[name], SOURCES.get(name, "a package make setup installs"), error)
              for name, error in sorted(missing.items())]
    assert report == [], "missing after make setup:\n" + "\n".join(report)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_known_third_party_modules_are_importable(name):
    assert _clean_run([name]) == {}, "%s is missing: install it from %s" % (name, SOURCES[name])
