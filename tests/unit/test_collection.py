# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/collection.py: the version from a checkout or an installed copy, and where results go."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest
import yaml

from ansible_collections.xdplab.offload.plugins.module_utils import collection, safety

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_checkout_reads_galaxy_yml():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        assert collection.version() == str(yaml.safe_load(handle)["version"])


def test_an_installed_copy_reads_manifest_json_which_wins(tmp_path):
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"collection_info": {"version": "9.8.7"}}))
    (tmp_path / "galaxy.yml").write_text("version: 1.0.0\n")
    assert collection.version(str(tmp_path)) == "9.8.7"


def test_neither_file_is_a_clear_error(tmp_path):
    with pytest.raises(collection.CollectionError, match="neither MANIFEST.json"):
        collection.version(str(tmp_path))
    (tmp_path / "MANIFEST.json").write_text("{not json")
    with pytest.raises(collection.CollectionError, match="MANIFEST.json"):
        collection.version(str(tmp_path))


def test_relative_results_dirs_are_taken_from_the_working_directory(tmp_path):
    assert collection.results_dir("results", cwd=str(tmp_path)) == str(tmp_path / "results")
    assert collection.results_dir("/srv/r", cwd=str(tmp_path), run_id="r1") == "/srv/r/r1"
    assert collection.results_dir("out/../res", cwd=str(tmp_path), run_id="a.b-c") == str(tmp_path / "res" / "a.b-c")


@pytest.mark.parametrize("run_id", ["../etc", "a/b", ".hidden", "", "x" * 65])
def test_a_run_id_that_is_not_a_plain_path_part_is_refused(tmp_path, run_id):
    with pytest.raises(safety.UnsafeInput, match="run_id"):
        collection.results_dir("results", cwd=str(tmp_path), run_id=run_id)
