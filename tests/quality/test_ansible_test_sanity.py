# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-test sanity and units on a copy of the collection, without the network
ansible-test would otherwise need for pip's bootstrap.

ansible-test wants the collection at ``.../ansible_collections/<namespace>/<name>``
and resolves symlinks, so the tree is copied (never linked) into a temporary
directory. Each ``--venv`` environment it makes starts without pip and is
bootstrapped by ``get-pip.py`` from a host that is unreachable here; ansible-test
uses ``~/.ansible/test/cache/get_pip_<version>.py`` instead when it exists, so
that file is seeded with a small stand-in that installs the pip wheel pip itself
downloads from PyPI. The test requirements are then installed from PyPI as usual.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import sys
import types

import pytest

from lib.gates import copy_collection, run, tool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

PYTHON = "%d.%d" % sys.version_info[:2]
CACHE = os.path.expanduser("~/.ansible/test/cache")
SHIM_MARK = "xdplab.offload offline get-pip stand-in"
SHIM = '''"""{mark}: runs pip {version} from its wheel.

Written by tests/quality/test_ansible_test_sanity.py in place of get-pip.py, which
ansible-test downloads from a host that is not reachable here. ansible-test runs
it as ``get-pip.py [pip install options] pip==<version> --no-setuptools --no-wheel``.
"""
import os
import sys

WHEEL = {wheel!r}
sys.path.insert(0, WHEEL)
from pip._internal.cli.main import main  # noqa: E402  pylint: disable=wrong-import-position

ARGS = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--no-index", "--find-links", os.path.dirname(WHEEL)] + ARGS))
'''


def ansible_test_pip_version():
    """The pip version ansible-test bootstraps into its virtual environments."""
    try:
        from ansible_test._internal.python_requirements import get_venv_packages
    except ImportError as exc:  # pragma: no cover - depends on ansible-test's internals
        pytest.fail("cannot ask ansible-test which pip it bootstraps (%s); "
                    "update tests/quality/test_ansible_test_sanity.py for this ansible-core" % exc)
    return get_venv_packages(types.SimpleNamespace(version=PYTHON))["pip"]


def seed_get_pip(version):
    """Make ~/.ansible/test/cache/get_pip_<X_Y>.py run pip <version> from its wheel."""
    shim_path = os.path.join(CACHE, "get_pip_%s.py" % version.replace(".", "_"))
    wheel_dir = os.path.join(CACHE, "pip-%s" % version)
    wheel = os.path.join(wheel_dir, "pip-%s-py3-none-any.whl" % version)
    if os.path.exists(shim_path):
        with open(shim_path, encoding="utf-8") as handle:
            if SHIM_MARK not in handle.read():
                return shim_path  # a real get-pip.py someone put there: use it as it is
    if not os.path.exists(wheel):
        os.makedirs(wheel_dir, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                               "--only-binary=:all:", "--dest", wheel_dir, "pip==%s" % version],
                              capture_output=True, text=True, check=False, timeout=600)
        assert proc.returncode == 0 and os.path.exists(wheel), (
            "could not download pip %s from PyPI for ansible-test's bootstrap:\n%s%s"
            % (version, proc.stdout, proc.stderr))
    tmp_path = shim_path + ".xl-tmp"
    with open(tmp_path, "w", encoding="utf-8") as handle:
        handle.write(SHIM.format(mark=SHIM_MARK, version=version, wheel=wheel))
    os.replace(tmp_path, shim_path)
    return shim_path


@pytest.fixture(scope="module")
def collection_copy(tmp_path_factory):
    """The collection copied to <tmp>/ansible_collections/xdplab/offload, pip bootstrap seeded."""
    seed_get_pip(ansible_test_pip_version())
    base = str(tmp_path_factory.mktemp("ansible-test"))
    dest = os.path.join(base, "ansible_collections", "xdplab", "offload")
    os.makedirs(os.path.dirname(dest))
    yield copy_collection(dest)
    # The copy holds ansible-test's units venv (pandas, matplotlib: hundreds of MB).
    shutil.rmtree(base, ignore_errors=True)


def test_ansible_test_sanity_passes(collection_copy):
    result = run([tool("ansible-test"), "sanity", "--venv", "--python", PYTHON, "--color", "no"],
                 "ansible-test-sanity", cwd=collection_copy, timeout=1800)
    errors = result.lines("ERROR: ")
    assert result.returncode == 0, "ansible-test sanity failed:\n%s\n\n%s" % (
        "\n".join(errors), result.tail(12))


def test_ansible_test_units_pass(collection_copy):
    """tests/unit under ansible-test's own pytest set-up and collection loader.

    tests/unit/requirements.txt lists what the unit tests import beyond ansible-test's
    own requirements, so that nothing is skipped for a missing package.
    """
    result = run([tool("ansible-test"), "units", "--venv", "--python", PYTHON, "--color", "no"],
                 "ansible-test-units", cwd=collection_copy, timeout=1800)
    assert result.returncode == 0, "ansible-test units failed:\n%s" % result.tail(80)
    summary = [line for line in result.output.splitlines() if line.startswith("=") and " in " in line]
    assert summary and " passed" in summary[-1], "ansible-test units ran no test:\n%s" % result.tail(40)
