"""The run lock's pure parts: the owner among the ancestors, /proc/locks, start times, messages."""
import os

from ansible_collections.xdplab.offload.plugins.module_utils import lock


def fake_proc(tmp_path, procs, locks=""):
    """procs: pid -> (ppid, argv, state, starttime)."""
    for pid, (ppid, argv, state, start) in procs.items():
        d = tmp_path / str(pid)
        d.mkdir()
        fields = [state, str(ppid)] + ["0"] * 17 + [str(start)] + ["0"] * 5
        (d / "stat").write_text("%d (some (odd) name) %s\n" % (pid, " ".join(fields)))
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (tmp_path / "locks").write_text(locks)
    return str(tmp_path)


def test_the_owner_is_the_outermost_ansible_playbook(tmp_path):
    proc = fake_proc(tmp_path, {
        500: (400, ["/usr/bin/python3", "/root/.ansible/tmp/AnsiballZ_run_lock.py"], "S", 9),
        400: (300, ["/bin/sh", "-c", "python3 AnsiballZ_run_lock.py"], "S", 8),
        300: (200, ["/venv/bin/python", "/venv/bin/ansible-playbook", "site.yml"], "S", 7),   # a worker fork
        200: (100, ["/venv/bin/python", "/venv/bin/ansible-playbook", "site.yml"], "S", 6),   # the main process
        100: (1, ["/usr/bin/python3", "-m", "pytest"], "S", 5),
    })
    assert lock.find_playbook_pid(500, proc) == 200
    assert lock.find_playbook_pid(100, proc) is None


def test_starttime_ignores_zombies_and_odd_names(tmp_path):
    proc = fake_proc(tmp_path, {10: (1, ["x"], "S", 1234), 11: (1, ["y"], "Z", 99)})
    assert lock.starttime(10, proc) == "1234"
    assert lock.starttime(11, proc) is None
    assert lock.starttime(12, proc) is None


def test_flock_holders_reads_the_kernels_table(tmp_path):
    target = tmp_path / "lab.lock"
    target.write_text("")
    st = os.stat(str(target))
    dev = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    locks = ("1: POSIX  ADVISORY  WRITE 77 %s 0 EOF\n"
             "2: FLOCK  ADVISORY  WRITE 4242 %s 0 EOF\n"
             "2: -> FLOCK  ADVISORY  WRITE 4343 %s 0 EOF\n"
             "3: FLOCK  ADVISORY  WRITE 5555 00:01:1 0 EOF\n" % (dev, dev, dev))
    (tmp_path / "proc").mkdir()
    proc = fake_proc(tmp_path / "proc", {}, locks)
    assert lock.flock_holders(str(target), proc) == [4242]
    assert lock.flock_holders(str(tmp_path / "missing"), proc) == []


def test_describe_names_pid_start_time_and_run_id():
    text = lock.describe("/run/xdplab/lab.lock", {"pid": 9, "started_at": "2026-01-01T00:00:00Z", "run_id": "r1",
                                                  "owner_pid": 8, "host": "h"})
    for part in ("/run/xdplab/lab.lock", "pid 9", "2026-01-01T00:00:00Z", "run id r1", "ansible-playbook pid 8"):
        assert part in text
    assert "unknown" in lock.describe("/x", {"pid": 3})


def test_holder_source_compiles():
    compile(lock.HOLDER_SOURCE, "<holder>", "exec")
