# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every molecule scenario under extensions/molecule: destroy, create, converge,
idempotence (a second converge changes nothing), verify (assertions on the real
state), destroy (and nothing left behind).

Molecule runs from the collection root, where it finds extensions/molecule/config.yml.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re

import pytest

from lib.gates import ROOT, run, tool

SCENARIOS = sorted(os.path.basename(os.path.dirname(path))
                   for path in glob.glob(os.path.join(ROOT, "extensions", "molecule", "*", "molecule.yml")))

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(os.geteuid() != 0, reason="the scenarios make namespaces, mounts and packages (root)"),
]


def test_every_scenario_is_found():
    assert SCENARIOS, "no molecule scenario under extensions/molecule"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario):
    result = run([tool("molecule"), "test", "--scenario-name", scenario], "molecule-" + scenario,
                 timeout=1800)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    failed = [line for line in plain.splitlines() if "Executed: Failed" in line]
    assert result.returncode == 0, "molecule scenario %s failed: %s\n%s" % (
        scenario, "; ".join(sorted(set(line.strip() for line in failed))), result.tail(150))
    for step in ("create", "converge", "idempotence", "verify", "destroy"):
        assert re.search(r"^%s (?:➜|>) %s: Executed: Successful" % (re.escape(scenario), step), plain, re.M), (
            "molecule scenario %s did not run its %s step successfully:\n%s" % (scenario, step, result.tail(60)))
