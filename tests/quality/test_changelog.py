# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Changelog fragments and changelogs/changelog.yaml in antsibull-changelog's layout."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml

from lib.gates import ROOT, run, tool


def test_antsibull_changelog_lint_is_clean():
    result = run([tool("antsibull-changelog"), "lint"], "antsibull-changelog-lint", timeout=300)
    assert result.returncode == 0 and not result.output.strip(), result.tail()


def test_changelog_yaml_is_valid():
    result = run([tool("antsibull-changelog"), "lint-changelog-yaml", "changelogs/changelog.yaml"],
                 "antsibull-changelog-lint-yaml", timeout=300)
    assert result.returncode == 0 and not result.output.strip(), result.tail()


def test_galaxy_version_is_not_released_yet_or_in_the_changelog():
    """The version in galaxy.yml is either the next release (fragments pending) or a released one."""
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        version = yaml.safe_load(handle)["version"]
    with open(os.path.join(ROOT, "changelogs", "changelog.yaml"), encoding="utf-8") as handle:
        releases = (yaml.safe_load(handle) or {}).get("releases") or {}
    fragments = [name for name in os.listdir(os.path.join(ROOT, "changelogs", "fragments"))
                 if name.endswith((".yml", ".yaml"))]
    assert str(version) in releases or fragments, (
        "galaxy.yml says %s, which changelogs/changelog.yaml has not released, and there are no "
        "fragments describing it" % version)
