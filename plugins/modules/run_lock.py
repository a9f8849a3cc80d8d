#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: run_lock
short_description: One run at a time on a lab, and on a run directory
version_added: 0.3.0
author:
  - xdplab.offload developers (!UNKNOWN)
description:
  - Takes an exclusive C(flock) on the lab's lock file O(path) and, with O(run_dir), on C(<run_dir>/.lock),
    and keeps them until the ansible-playbook process that took them exits (or O(state=released)).
  - The locks are held by a small detached holder process (started with an argument vector, no shell) that
    writes who holds them into the lock files (holder PID, start time, run id, owner PID, host) and ends when
    its owner is gone. The owner is recognised by PID and start time, so a reused PID does not keep a lock.
  - A second run while a lock is held fails at once, naming the holder. Who holds a lock is read from
    C(/proc/locks), so a lock whose holder died never blocks a run.
  - The owner is the outermost ansible-playbook among the module's ancestors, which exists when the module
    runs on the controller (C(localhost)); elsewhere give O(owner_pid).
  - Taking the lock again from the run that holds it changes nothing.
options:
  state:
    description:
      - V(held) takes the locks (fails at once if another run holds one); V(released) ends this run's holder.
      - V(released) refuses to end a holder of another run unless O(run_id) names that run.
    type: str
    choices: [held, released]
    default: held
  path:
    description: The lab's lock file; it must lie under C(/run/xdplab) (symbolic links resolved).
    type: path
    default: /run/xdplab/lab.lock
  run_dir:
    description:
      - A run's directory (e.g. C(/opt/xdplab/results/<run_id>)); its C(.lock) is locked too. Created if missing.
      - Must lie strictly under O(results_root).
    type: path
  results_root:
    description: The directory run directories must lie under.
    type: path
    default: /opt/xdplab/results
  run_id:
    description: The run's id, written into the lock files (and named to whoever finds them held).
    type: str
  owner_pid:
    description:
      - PID (on the host the module runs on) whose exit releases the locks. Default the outermost
        ansible-playbook among the module's ancestors.
    type: int
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the locks are free or held and by whom; takes nothing, starts nothing, writes nothing.
  diff_mode:
    support: none
notes:
  - Linux only (C(flock), C(/proc)). Runs as root on lab machines.
'''

EXAMPLES = r'''
- name: One run at a time on this lab
  xdplab.offload.run_lock:
    run_id: "{{ xl_run_id }}"
    run_dir: "{{ xdplab_home }}/results/{{ xl_run_id }}"
  delegate_to: localhost
  run_once: true

- name: Let the next run start (the lock also ends with ansible-playbook)
  xdplab.offload.run_lock:
    state: released
    run_dir: "{{ xdplab_home }}/results/{{ xl_run_id }}"
  delegate_to: localhost
  run_once: true
'''

RETURN = r'''
lock_files:
  description: The lock files this call took, holds or released.
  returned: always
  type: list
  elements: str
  sample: [/run/xdplab/lab.lock, /opt/xdplab/results/20261203T161000Z/.lock]
holder_pid:
  description: PID of the holder process (the one started now, the one found, or the one ended); null if none.
  returned: always
  type: int
owner_pid:
  description: The ansible-playbook PID whose exit releases the locks.
  returned: when state is held
  type: int
holders:
  description: Per lock file, who holds it (C(pid), C(started_at), C(run_id), C(owner_pid), C(host)) or null.
  returned: always
  type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xdplab.offload.plugins.module_utils import lock, safety


def _paths(module):
    p = module.params
    try:
        lab = safety.strictly_under(p["path"], lock.LOCK_ROOT, "path")
        paths = [lab]
        run_dir = None
        if p["run_dir"]:
            run_dir = safety.strictly_under(p["run_dir"], p["results_root"], "run_dir")
            safety.name(os.path.basename(run_dir), "run_dir", "run directory name")
            paths.append(os.path.join(run_dir, lock.RUN_LOCK_NAME))
        if p["run_id"] is not None:
            safety.run_id(p["run_id"])
    except safety.UnsafeInput as exc:
        module.fail_json(msg=exc.msg, option=exc.option)
    return paths, run_dir


def _owner(module):
    pid = module.params["owner_pid"]
    if pid is None:
        pid = lock.find_playbook_pid()
        if pid is None:
            module.fail_json(msg="no ansible-playbook process among this module's ancestors (does it run on a host "
                                 "other than the controller?): run it on localhost or give owner_pid")
    start = lock.starttime(pid)
    if start is None:
        module.fail_json(msg="owner_pid %s is not a running process" % pid)
    return pid, start


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["held", "released"], default="held"),
            path=dict(type="path", default=lock.LAB_LOCK),
            run_dir=dict(type="path"),
            results_root=dict(type="path", default="/opt/xdplab/results"),
            run_id=dict(type="str"),
            owner_pid=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    paths, run_dir = _paths(module)
    holders = dict((path, lock.holder(path)) for path in paths)
    result = dict(changed=False, lock_files=paths, holders=holders, holder_pid=None)

    if p["state"] == "released":
        owner_pid = p["owner_pid"] if p["owner_pid"] is not None else lock.find_playbook_pid()
        owner_start = lock.starttime(owner_pid) if owner_pid else None
        pids = set()
        for path, info in holders.items():
            if not info:
                continue
            mine = lock.owned_by(info, owner_pid, owner_start)
            named = p["run_id"] is not None and info.get("run_id") == p["run_id"] and info.get("is_holder_process")
            if not (mine or named):
                module.fail_json(msg="not releasing a lock of another run: %s" % lock.describe(path, info), **result)
            pids.add(info["pid"])
        result["holder_pid"] = sorted(pids)[0] if pids else None
        result["changed"] = bool(pids)
        if pids and not module.check_mode:
            try:
                for pid in sorted(pids):
                    lock.stop_holder(pid, paths)
            except lock.LockError as exc:
                module.fail_json(msg=exc.msg, **result)
            result["holders"] = dict((path, lock.holder(path)) for path in paths)
        module.exit_json(**result)

    owner_pid, owner_start = _owner(module)
    result["owner_pid"] = owner_pid
    busy = [(path, info) for path, info in holders.items() if info]
    mine = [path for path, info in busy if lock.owned_by(info, owner_pid, owner_start)]
    others = [(path, info) for path, info in busy if path not in mine]
    if others:
        path, info = others[0]
        module.fail_json(msg="another run holds the lock: %s. Wait for it to end; a lock whose ansible-playbook "
                             "has exited is released within a second" % lock.describe(path, info), **result)
    if mine and len(mine) == len(paths):
        result["holder_pid"] = holders[mine[0]]["pid"]
        module.exit_json(**result)
    if mine:
        # This run holds the lab lock but not the run directory's: a second holder for the rest.
        paths_to_take = [path for path in paths if path not in mine]
    else:
        paths_to_take = paths
    result["changed"] = True
    if module.check_mode:
        module.exit_json(**result)
    try:
        for directory in set(os.path.dirname(path) for path in paths_to_take):
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
        pid = lock.spawn_holder(paths_to_take, owner_pid, owner_start, p["run_id"])
    except lock.LockError as exc:
        module.fail_json(msg=exc.msg, **dict(result, **exc.details))
    except OSError as exc:
        module.fail_json(msg="cannot prepare the lock files %s: %s" % (", ".join(paths_to_take), exc), **result)
    result["holder_pid"] = pid
    result["holders"] = dict((path, lock.holder(path)) for path in paths)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
