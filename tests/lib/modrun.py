"""Run the collection's modules from tests.

``run_module`` executes a module file directly with the current interpreter and
an ANSIBLE_MODULE_ARGS file, the way AnsiballZ would, and returns its JSON
result. ``run_playbook`` runs a real ansible-playbook against the emulated lab.
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, ".ansible", "collections")
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


class ModuleResult(dict):
    @property
    def failed(self):
        return bool(self.get("failed"))

    @property
    def changed(self):
        return bool(self.get("changed"))

    def __repr__(self):
        # The message first: pytest cuts a long assertion message in the middle, and
        # the message is what explains a failed result.
        if "msg" in self:
            return "msg=%r %s" % (self["msg"], dict.__repr__(self))
        return dict.__repr__(self)


def run_module(name, args=None, check=False, diff=False, timeout=300):
    """Run plugins/modules/<name>.py with ``args``; return its result dict."""
    payload = {"ANSIBLE_MODULE_ARGS": dict(args or {})}
    payload["ANSIBLE_MODULE_ARGS"]["_ansible_check_mode"] = check
    payload["ANSIBLE_MODULE_ARGS"]["_ansible_diff"] = diff
    path = os.path.join(ROOT, "plugins", "modules", name + ".py")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [COLLECTIONS, env.get("PYTHONPATH")]))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(payload, handle)
    try:
        proc = subprocess.run([sys.executable, path, handle.name], capture_output=True,
                              text=True, timeout=timeout, env=env, check=False)
    finally:
        os.unlink(handle.name)
    try:
        result = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError("module %s printed no JSON (rc=%s)\nstdout:\n%s\nstderr:\n%s"
                             % (name, proc.returncode, proc.stdout, proc.stderr)) from exc
    return ModuleResult(result)


def run_playbook(playbook, extra_vars=None, tags=None, check=False, timeout=1800, inventory=None):
    """Run ansible-playbook from the project root; return CompletedProcess."""
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), playbook]
    if inventory:
        cmd += ["-i", inventory]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if tags:
        cmd += ["--tags", ",".join(tags)]
    if check:
        cmd.append("--check")
    # The tests read the default callback's output (task banners, ok results); ansible.cfg's
    # xdplab.offload.lab hides those at verbosity 0 (tests/integration/test_callback_lab.py tests it).
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False, env=env)


def recap_changed(stdout):
    """Sum of changed= over the PLAY RECAP of an ansible-playbook run."""
    total = 0
    in_recap = False
    for line in stdout.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and "changed=" in line:
            total += int(line.split("changed=")[1].split()[0])
    return total
