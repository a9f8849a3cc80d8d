# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts about the collection itself that hold alike in a checkout and in an
installed copy of its built tarball, and where a run's results go.

A checkout has ``galaxy.yml``; ``ansible-galaxy collection build`` never ships
it, and an installed copy has ``MANIFEST.json`` instead.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible_collections.xdplab.offload.plugins.module_utils import safety

# plugins/module_utils/collection.py -> the collection's root directory.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CollectionError(Exception):
    pass


def version(root=ROOT):
    """The collection's version: MANIFEST.json of an installed copy, else galaxy.yml of a checkout."""
    manifest = os.path.join(root, "MANIFEST.json")
    galaxy = os.path.join(root, "galaxy.yml")
    try:
        if os.path.isfile(manifest):
            with open(manifest, encoding="utf-8") as handle:
                return str(json.load(handle)["collection_info"]["version"])
        if os.path.isfile(galaxy):
            import yaml  # ansible-core's dependency; only a checkout needs it
            with open(galaxy, encoding="utf-8") as handle:
                return str(yaml.safe_load(handle)["version"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CollectionError("cannot read the collection's version from %s: %s"
                              % (manifest if os.path.isfile(manifest) else galaxy, exc))
    raise CollectionError("%s has neither MANIFEST.json (an installed collection) nor galaxy.yml (a checkout)"
                          % root)


def results_dir(path="results", cwd=None, run_id=None):
    """The absolute results directory: ``path`` as given, a relative one taken from ``cwd``
    (the directory ansible-playbook was started in). With ``run_id`` (validated: it
    becomes a path part) the run's directory below it."""
    if not isinstance(path, str) or not path.strip():
        raise safety.UnsafeInput("results_dir must be a directory path (default: results, relative to the "
                                 "directory ansible-playbook runs in)", "results_dir")
    base = os.path.normpath(os.path.join(cwd or os.getcwd(), os.path.expanduser(path)))
    if run_id is None:
        return base
    return os.path.join(base, safety.run_id(run_id))
