# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-lint, production profile, on the whole collection (settings in .ansible-lint)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from lib.gates import ROOT, run, tool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_ansible_lint_production_profile_is_clean():
    result = run([tool("ansible-lint"), "--offline", "--profile", "production", "--nocolor",
                  "--format", "pep8", "--project-dir", ROOT], "ansible-lint", timeout=900)
    findings = [line for line in result.output.splitlines() if ": " in line and line.split(":")[0].endswith(
        (".yml", ".yaml", ".py", ".json", ".md", ".txt", ".cfg"))]
    assert result.returncode == 0, "ansible-lint (production profile) has findings:\n%s\n\n%s" % (
        "\n".join(findings), result.tail(12))
