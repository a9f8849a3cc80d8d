# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of xdplab.offload.cell_record: a cell's record, on the controller, without a module start."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json
import os
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.xdplab.offload.plugins.module_utils import record as records
from ansible_collections.xdplab.offload.plugins.module_utils import resume, safety, zero_loss
from ansible_collections.xdplab.offload.plugins.module_utils.atomic import write_atomic

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["checked", "written"], default="written"),
    records_dir=dict(type="path", required=True),
    cell=dict(type="dict", required=True),
    retry_failed=dict(type="bool", default=False),
    run=dict(type="dict", default={}),
    location=dict(type="dict", default={}),
    armed=dict(type="dict", default={}),
    window=dict(type="dict", default={}),
    collected=dict(type="dict", default={}),
    search=dict(type="dict", default={}),
    error=dict(type="str"),
    teardown_error=dict(type="str"),
    started=dict(type="float"),
    generator_local=dict(type="bool", default=True),
    progress=dict(type="dict", default={}),
)
# Left out of the record the callback gets (the file has them): long lists and per-interface detail.
BULKY = ("rtt_us_samples", "rtt_us_hist", "interfaces", "per_cpu", "invalid_reasons", "probe_invalid_reasons")


def record_path(records_dir, run_id, cell_id):
    """<records_dir>/<cell_id>.json, with both ids checked (they name the run and the file written)."""
    safety.run_id(run_id, "run.run_id")
    safety.name(cell_id, "cell.id", "cell id")
    base = os.path.realpath(os.path.abspath(records_dir))
    return base, safety.strictly_under(os.path.join(base, cell_id + ".json"), base, "cell.id")


def _iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat()


def _facts(task_vars):
    facts = task_vars.get("ansible_facts") or {}
    processor = facts.get("processor") or []
    return {"kernel": facts.get("kernel"), "cpu_model": processor[2] if len(processor) > 2 else None,
            "hostname": facts.get("hostname") or task_vars.get("inventory_hostname")}


def progress_payload(progress, run_id, rec, kept):
    payload = dict(progress or {}, run_id=run_id, kept=kept)
    payload["record"] = {k: v for k, v in (rec or {}).items() if k not in BULKY}
    return payload


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        run, cell = args["run"], args["cell"]
        try:
            directory, path = record_path(args["records_dir"], run.get("run_id"), cell.get("id"))
        except safety.UnsafeInput as exc:
            raise AnsibleActionFail(exc.msg)
        result.update(changed=False, path=path)
        if args["state"] == "checked":
            result["cell"], result["cell_error"] = self._resolved(cell, directory)
            return self._checked(result, path, args)
        finished = time.time()
        started = args["started"] or finished
        rec = records.build(cell, run, args["location"], args["armed"], args["window"], args["collected"],
                            error=args["error"], teardown_error=args["teardown_error"],
                            started_at=_iso(started), finished_at=_iso(finished),
                            wall_s=round(finished - started, 3), facts=_facts(task_vars),
                            generator_local=args["generator_local"], search=args["search"])
        problem = records.validate(rec)
        if problem:
            raise AnsibleActionFail("the record of cell %s is not valid: %s" % (cell.get("id"), problem))
        result.update(changed=True, status=rec["status"], reason=rec["reason"],
                      xdplab_cell=progress_payload(args["progress"], run.get("run_id"), rec, False))
        if not self._task.check_mode:
            try:
                os.makedirs(directory, mode=0o755, exist_ok=True)
                write_atomic(path, json.dumps(rec, indent=4, sort_keys=True) + "\n")
            except OSError as exc:
                raise AnsibleActionFail("cannot write the record %s: %s" % (path, exc))
        return result

    @staticmethod
    def _resolved(cell, directory):
        """The cell, with the rate of a latency cell given as a fraction of the zero-loss rate resolved from
        this run's records; and why not, when it cannot be (then the cell is recorded as failed)."""
        if cell.get("rate_fraction_of_zero_loss") is None:
            return cell, None
        found = []
        if os.path.isdir(directory):
            for name in sorted(os.listdir(directory)):
                if name.endswith(".json") and not name.startswith("."):
                    try:
                        with open(os.path.join(directory, name), "rb") as handle:
                            found.append(json.loads(handle.read()))
                    except (OSError, ValueError):
                        continue
        answer = zero_loss.rate_from_zero_loss(found, cell)
        if answer["rate"] is None:
            return cell, answer["reason"]
        return dict(cell, rate=answer["rate"]), None

    @staticmethod
    def _checked(result, path, args):
        content, exists = None, os.path.exists(path)
        if exists:
            try:
                with open(path, "rb") as handle:
                    content = handle.read()
            except OSError:
                content = None
        verdict = resume.verdict(content, args["cell"]["id"], retry_failed=args["retry_failed"], exists=exists)
        result.update(run=verdict["run"], reason=verdict["reason"], recorded_status=verdict["status"])
        if not verdict["run"]:
            kept = json.loads(content)
            result["xdplab_cell"] = progress_payload(args["progress"], args["run"].get("run_id"), kept, True)
        return result
