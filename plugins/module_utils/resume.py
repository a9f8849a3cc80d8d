# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resume: does a cell with this (possibly missing or broken) record run again?

A cell is skipped only when its record is a valid record (record.validate)
of the same cell; a record that is missing, empty, unreadable, not JSON, not valid
or of another cell is re-run (and rewritten), and so is a ``failed`` one when the
run retries failed cells. Pure function: unit-tested without Ansible.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import json

from ansible_collections.xdplab.offload.plugins.module_utils.record import validate as validate_record


def verdict(content, cell_id, retry_failed=False, exists=True, encoding=None):
    """``{"run": bool, "reason": str, "status": recorded status or None}``.

    ``content`` is the record file's text (or bytes), base64 text with ``encoding='base64'``
    (as ansible.builtin.slurp returns it), or None when it could not be read. ``exists``
    False means there is no record file at all.
    """
    if not exists:
        return {"run": True, "reason": "no record yet", "status": None}
    if content is None:
        return {"run": True, "reason": "the record could not be read; the cell runs again", "status": None}
    if encoding == "base64":
        try:
            content = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            return {"run": True, "reason": "the record could not be decoded (%s); the cell runs again" % exc,
                    "status": None}
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            return {"run": True, "reason": "the record is not UTF-8 text; the cell runs again", "status": None}
    if not content.strip():
        return {"run": True, "reason": "the record is empty; the cell runs again", "status": None}
    try:
        record = json.loads(content)
    except ValueError as exc:
        return {"run": True, "reason": "the record is not valid JSON (%s); the cell runs again" % exc, "status": None}
    problem = validate_record(record)
    if problem is not None:
        return {"run": True, "reason": "the record is not a valid record (%s); the cell runs again" % problem,
                "status": None}
    if record["cell_id"] != cell_id:
        return {"run": True, "reason": "the record is of cell %s, not %s; the cell runs again"
                % (record["cell_id"], cell_id), "status": None}
    status = record["status"]
    if status == "failed" and retry_failed:
        return {"run": True, "reason": "recorded as failed and failed cells are retried", "status": status}
    return {"run": False, "reason": "already recorded as %s" % status, "status": status}
