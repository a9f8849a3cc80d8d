"""afxdp.py and the worker build in programs.py: pure logic, state files, builds (no root, no kernel)."""
import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import afxdp as A
from ansible_collections.xdplab.offload.plugins.module_utils import programs as P

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(REPO, "bpf")
CAN_BUILD = all(shutil.which(tool) for tool in ("cc", "clang")) and os.path.isfile("/usr/include/xdp/xsk.h")
needs_build = pytest.mark.skipif(not CAN_BUILD, reason="needs cc, clang and libxdp-dev")

PARAMS = dict(interface="xl-dut0", netns="xl-dut", program="loop", defines={"N": 100}, queue=0,
              copy_mode="auto", need_wakeup=True, busy_poll=False, batch_size=64, cpu=None,
              xdp_mode="driver", attach="link", ring_size=2048)


# ------------------------------------------------------------------ settings

def test_state_dir_is_per_namespace_and_interface():
    assert A.state_dir("xl-dut0", "xl-dut") == "/run/xdplab/afxdp/xl-dut/xl-dut0"
    assert A.state_dir("eth0", None, "/tmp/x") == "/tmp/x/root/eth0"


def test_locations_name_the_xdp_mode():
    assert A.location_of("driver") == "afxdp"
    assert A.location_of("generic") == "afxdp_generic"


def test_valid_settings_pass():
    A.validate(PARAMS, ncpus=2)
    A.validate(dict(PARAMS, cpu=1, queue=63, batch_size=1024, ring_size=16384), ncpus=2)


@pytest.mark.parametrize("change,option", [
    ({"queue": 64}, "queue"), ({"queue": -1}, "queue"),
    ({"ring_size": 1000}, "ring_size"), ({"ring_size": 32}, "ring_size"), ({"ring_size": 32768}, "ring_size"),
    ({"batch_size": 0}, "batch_size"), ({"batch_size": 1025}, "batch_size"),
    ({"batch_size": 128, "ring_size": 64}, "batch_size"),
    ({"cpu": 2}, "cpu"), ({"cpu": -1}, "cpu"),
])
def test_invalid_settings_name_the_option(change, option):
    with pytest.raises(A.AfxdpError) as err:
        A.validate(dict(PARAMS, **change), ncpus=2)
    assert err.value.details["option"] == option
    assert option in err.value.msg


def test_want_settings_normalises_defines_and_flags():
    want = A.want_settings(dict(PARAMS, defines={"N": 100, "FLAG": None, "ON": True}, need_wakeup=0), "k" * 64)
    assert want["defines"] == {"N": "100", "FLAG": None, "ON": "1"}
    assert want["need_wakeup"] is False
    assert want["build_key"] == "k" * 64
    assert set(want) == set(A.SETTING_KEYS)
    json.dumps(want)  # stored in worker.json


def test_want_settings_rejects_bad_defines():
    with pytest.raises(P.DefineError):
        A.want_settings(dict(PARAMS, defines={"N": "1; rm"}), "k")


def test_worker_argv_maps_every_setting():
    want = A.want_settings(dict(PARAMS, cpu=1, busy_poll=True, need_wakeup=False, xdp_mode="generic",
                                attach="netlink", copy_mode="zerocopy", queue=3, batch_size=32, ring_size=512),
                           "k")
    argv = A.worker_argv("/bin/xl-afxdp-loop", want, "/run/s.json", 100)
    assert argv[0] == "/bin/xl-afxdp-loop"
    pairs = dict(zip(argv[1::2], argv[2::2]))
    assert pairs["--interface"] == "xl-dut0" and pairs["--netns"] == "xl-dut"
    for flag, value in (("--queue", "3"), ("--copy-mode", "zerocopy"), ("--batch-size", "32"),
                        ("--xdp-mode", "generic"), ("--attach", "netlink"), ("--ring-size", "512"),
                        ("--stats-file", "/run/s.json"), ("--stats-interval", "100"), ("--cpu", "1")):
        assert argv[argv.index(flag) + 1] == value
    assert "--busy-poll" in argv and "--no-need-wakeup" in argv
    assert all(isinstance(a, str) for a in argv)


def test_worker_argv_leaves_out_netns_and_cpu_when_not_given():
    argv = A.worker_argv("/w", A.want_settings(dict(PARAMS, netns=None), "k"), "/s")
    assert "--netns" not in argv and "--cpu" not in argv
    assert "--poll" in argv and "--need-wakeup" in argv


def test_diff_hides_the_build_key():
    want = A.want_settings(PARAMS, "k")
    d = A.diff(None, want)
    assert d["before"] == {} and "build_key" not in d["after"] and d["after"]["program"] == "loop"


# ------------------------------------------------------------------ identity

def _record(want, prog_id=7):
    return {"pid": 10, "starttime": 5, "settings": dict(want), "prog_id": prog_id}


def test_same_worker_needs_life_equal_settings_and_its_program_attached():
    want = A.want_settings(PARAMS, "k")
    assert A.same_worker(want, _record(want), True, 7)
    assert not A.same_worker(want, _record(want), False, 7)      # dead
    assert not A.same_worker(want, _record(want), True, 8)       # another program attached
    assert not A.same_worker(want, _record(want), True, None)    # none attached
    assert not A.same_worker(want, None, True, 7)
    assert not A.same_worker(want, _record(want, prog_id=None), True, None)
    for key, value in (("queue", 1), ("defines", {"N": "10"}), ("build_key", "other"), ("cpu", 0),
                       ("busy_poll", True), ("xdp_mode", "generic")):
        assert not A.same_worker(dict(want, **{key: value}), _record(want), True, 7), key


def test_parse_proc_stat_survives_odd_command_names():
    fields = ["S"] + [str(i) for i in range(1, 19)] + ["123456"] + ["0"] * 30
    text = "4242 (xl-afxdp) (x y)) " + " ".join(fields)
    assert A.parse_proc_stat(text) == ("S", 123456)


def _fake_proc(root, pid, state="S", starttime=99, fdinfo=None):
    fields = [state] + ["0"] * 18 + [str(starttime)] + ["0"] * 20
    d = root / str(pid)
    (d / "fdinfo").mkdir(parents=True)
    (d / "stat").write_text("%d (xl-afxdp-drop) %s\n" % (pid, " ".join(fields)))
    for fd, text in (fdinfo or {}).items():
        (d / "fdinfo" / str(fd)).write_text(text)
    return d


def test_is_alive_checks_start_time_and_zombies(tmp_path):
    _fake_proc(tmp_path, 100, "S", 99)
    _fake_proc(tmp_path, 101, "Z", 99)
    proc = str(tmp_path)
    assert A.is_alive(100, 99, proc)
    assert not A.is_alive(100, 98, proc)   # pid reused by another process
    assert not A.is_alive(101, 99, proc)   # exited, not reaped
    assert not A.is_alive(102, 99, proc)   # gone
    assert not A.is_alive(None, 99, proc)


LINK_FDINFO = "pos:\t0\nflags:\t02000000\nmnt_id:\t17\nino:\t1038\nlink_type:\txdp\nlink_id:\t91\n" \
              "prog_tag:\t868e5e1dcf96435f\nprog_id:\t%d\nifindex:\t205\n"


def test_parse_link_fdinfo():
    assert A.parse_link_fdinfo(LINK_FDINFO % 1637) == ("xdp", 1637)
    assert A.parse_link_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t1\n") is None
    assert A.parse_link_fdinfo("link_type:\txdp\nprog_id:\tx\n") is None


def test_link_holders_finds_the_processes_holding_an_xdp_link(tmp_path):
    _fake_proc(tmp_path, 200, fdinfo={3: "pos:\t0\n", 8: LINK_FDINFO % 55})
    _fake_proc(tmp_path, 201, fdinfo={8: LINK_FDINFO % 56})
    _fake_proc(tmp_path, 202, fdinfo={4: (LINK_FDINFO % 55).replace("xdp", "tracing")})
    (tmp_path / "self").mkdir()
    assert A.link_holders(55, str(tmp_path)) == [200]
    assert A.link_holders(56, str(tmp_path)) == [201]
    assert A.link_holders(57, str(tmp_path)) == []


def test_load_state_reads_record_liveness_and_stats(tmp_path):
    proc = tmp_path / "proc"
    _fake_proc(proc, 300, "R", 1234)
    sdir = tmp_path / "state"
    sdir.mkdir()
    assert A.load_state(str(sdir), str(proc)) == {"record": None, "alive": False, "stats": None}
    A.write_json_atomic(str(sdir / A.RECORD_FILE), {"pid": 300, "starttime": 1234, "settings": {}})
    (sdir / A.STATS_FILE).write_text('{"status": "running", "pid": 300}')
    state = A.load_state(str(sdir), str(proc))
    assert state["alive"] and state["record"]["pid"] == 300 and state["stats"]["status"] == "running"
    A.write_json_atomic(str(sdir / A.RECORD_FILE), {"pid": 300, "starttime": 1, "settings": {}})
    assert not A.load_state(str(sdir), str(proc))["alive"]
    assert [f for f in os.listdir(str(sdir)) if f.startswith(".tmp")] == []


def test_read_json_tolerates_missing_and_partial_files(tmp_path):
    assert A.read_json(str(tmp_path / "nope.json")) is None
    (tmp_path / "half.json").write_text('{"status": "runn')
    assert A.read_json(str(tmp_path / "half.json")) is None
    (tmp_path / "list.json").write_text("[1]")
    assert A.read_json(str(tmp_path / "list.json")) is None


def test_remove_state_removes_the_worker_dir_and_an_empty_namespace_dir(tmp_path):
    one = tmp_path / "xl-dut" / "xl-dut0"
    two = tmp_path / "root" / "a"
    three = tmp_path / "root" / "b"
    for d in (one, two, three):
        d.mkdir(parents=True)
        (d / "stats.json").write_text("{}")
    A.remove_state(str(one), root=str(tmp_path))
    assert not (tmp_path / "xl-dut").exists()
    A.remove_state(str(two), root=str(tmp_path))
    assert not two.exists() and three.exists()
    A.remove_state(str(tmp_path / "root" / "missing"), root=str(tmp_path))  # no error
    assert tmp_path.exists()


def test_remove_state_refuses_what_is_not_below_its_root(tmp_path):
    root = tmp_path / "state"
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "keep").write_text("x")
    (root / "root").mkdir(parents=True)
    (root / "root" / "link").symlink_to(decoy)
    for bad in (str(decoy), str(root / ".." / "decoy"), str(root / "root" / "link"), str(root)):
        with pytest.raises(A.AfxdpError) as err:
            A.remove_state(bad, root=str(root))
        assert err.value.details["option"] == "state_root"
    assert (decoy / "keep").read_text() == "x" and root.is_dir()


@pytest.mark.parametrize("interface,netns,root,option", [
    ("../../../../tmp/x", None, A.STATE_ROOT, "interface"),
    ("eth0", "a/b", A.STATE_ROOT, "netns"),
    ("eth0", "..", A.STATE_ROOT, "netns"),
    ("eth0", None, "/tmp", "state_root"),
    ("eth0", None, A.STATE_ROOT + "/../../etc", "state_root"),
])
def test_confined_state_dir_refuses_names_and_roots_that_leave_the_state_root(interface, netns, root, option):
    with pytest.raises(A.AfxdpError) as err:
        A.confined_state_dir(interface, netns, root)
    assert err.value.details["option"] == option and option in err.value.msg


def test_confined_state_dir_of_plain_names():
    assert A.confined_state_dir("xl-dut0", "xl-dut")[1] == os.path.realpath("/run/xdplab/afxdp/xl-dut/xl-dut0")


def test_summarize_fills_counters_and_location():
    empty = A.summarize(None)
    assert empty["counters"]["seen"] == {"packets": 0, "bytes": 0} and set(empty["counters"]) == set(A.COUNTER_NAMES)
    assert empty["pid"] is None and empty["location"] is None
    stats = {"status": "running", "pid": 5, "bind_mode": "copy", "fallback": None, "xdp_mode": "generic",
             "prog_id": 9, "counters": {"seen": {"packets": 3, "bytes": 180}, "dropped": {"packets": 3, "bytes": 180}},
             "kernel": {"seen": {"packets": 4, "bytes": 240}}, "xsk": {"rx_ring_full": 1}, "tx_completed": 0,
             "cpu_ns": 10, "elapsed_s": 1.5, "n": 1}
    s = A.summarize(stats)
    assert s["location"] == "afxdp_generic" and s["counters"]["seen"]["packets"] == 3
    assert s["counters"]["tx"] == {"packets": 0, "bytes": 0}
    assert s["kernel_counters"]["seen"]["packets"] == 4 and s["xsk_stats"] == {"rx_ring_full": 1}


# ------------------------------------------------------------------ the build

@pytest.mark.parametrize("name", P.BUILTIN_PROGRAMS)
def test_builtin_worker_programs_resolve_to_their_logic_header(name):
    wp = P.resolve_worker_program(name, BPF_DIR)
    assert wp == P.WorkerProgram(name, os.path.join(BPF_DIR, "include", "xdplab", name + ".h"), True)


def test_own_logic_header_resolves_by_its_base_name(tmp_path):
    header = tmp_path / "my_prog.h"
    header.write_text("")
    assert P.resolve_worker_program(str(header), BPF_DIR) == P.WorkerProgram("my_prog", str(header), False)


@pytest.mark.parametrize("program,words", [
    ("nosuch", ["nosuch", "drop, loop, checksum, dns_nxdomain"]),
    ("drop.bpf.c", ["packet logic", ".h"]),
    ("/x/y.o", ["packet logic"]),
    ("/nonexistent/xl_p.h", ["does not exist"]),
    ("/tmp/my-prog.h", ["C identifier"]),
    ("", ["no program"]),
])
def test_unusable_worker_programs_are_refused_clearly(program, words):
    with pytest.raises(P.ProgramError) as err:
        P.resolve_worker_program(program, BPF_DIR)
    for word in words:
        assert word in err.value.msg


def test_worker_command_selects_the_program_at_compile_time(tmp_path):
    header = tmp_path / "mine.h"
    header.write_text("")
    builtin = P.worker_command(P.resolve_worker_program("loop", BPF_DIR), {"N": 100}, BPF_DIR, "/c/r.o", "/c/out")
    assert "-DXL_AFXDP_PROGRAM=loop" in builtin and "-DN=100" in builtin
    assert '-DXL_AFXDP_DEFINES="N=100"' in builtin and '-DXL_AFXDP_BPF_OBJ="/c/r.o"' in builtin
    assert "-include" not in builtin and builtin[-2:] == ["-lxdp", "-lbpf"]
    own = P.worker_command(P.resolve_worker_program(str(header), BPF_DIR), {}, BPF_DIR, "/c/r.o", "/c/out")
    assert own[own.index("-include") + 1] == str(header) and "-DXL_AFXDP_PROGRAM=mine" in own
    with pytest.raises(P.BuildError):
        P.worker_command(P.resolve_worker_program("drop", BPF_DIR), {}, BPF_DIR, '/c/"q/r.o', "/c/out")


@needs_build
def test_worker_build_key_follows_defines_and_sources(tmp_path):
    k1 = P.worker_build_key("loop", {"N": 1}, BPF_DIR)
    assert k1 == P.worker_build_key("loop", {"N": 1}, BPF_DIR)
    assert k1 != P.worker_build_key("loop", {"N": 2}, BPF_DIR)
    assert k1 != P.worker_build_key("checksum", {"N": 1}, BPF_DIR)
    header = tmp_path / "mine.h"
    header.write_text("/* a */")
    ka = P.worker_build_key(str(header), {}, BPF_DIR)
    header.write_text("/* b */")
    assert ka != P.worker_build_key(str(header), {}, BPF_DIR)


def _info(binary):
    return json.loads(subprocess.run([binary, "--info"], capture_output=True, text=True, check=True).stdout)


@needs_build
def test_build_worker_builds_once_per_program_and_n(tmp_path):
    path, key = P.build_worker("checksum", {"N": 7}, BPF_DIR, str(tmp_path))
    assert path == P.worker_path("checksum", key, str(tmp_path)) and os.access(path, os.X_OK)
    assert _info(path) == {"program": "checksum", "n": 7, "defines": "N=7", "version": "1.0",
                           "redirect_program": A.REDIRECT_PROG_NAME}
    mtime = os.stat(path).st_mtime_ns
    assert P.build_worker("checksum", {"N": 7}, BPF_DIR, str(tmp_path)) == (path, key)
    assert os.stat(path).st_mtime_ns == mtime
    other = P.build_worker("checksum", {"N": 8}, BPF_DIR, str(tmp_path))[0]
    assert other != path and _info(other)["n"] == 8
    assert not [f for f in os.listdir(str(tmp_path)) if f.startswith(".")]


@needs_build
def test_build_worker_with_own_logic_header_and_a_broken_one(tmp_path):
    header = tmp_path / "xl_pass.h"
    header.write_text("static inline int xl_xl_pass_logic(void *d, void *e) { (void)d; (void)e; return 2; }\n")
    path = P.build_worker(str(header), {}, BPF_DIR, str(tmp_path / "b"))[0]
    assert _info(path)["program"] == "xl_pass"
    header.write_text("static inline int xl_xl_pass_logic(void *d, void *e) { return undefined_thing; }\n")
    with pytest.raises(P.BuildError) as err:
        P.build_worker(str(header), {}, BPF_DIR, str(tmp_path / "b"))
    assert "does not compile" in err.value.msg and "undefined_thing" in err.value.compiler_output
    assert not [f for f in os.listdir(str(tmp_path / "b")) if f.startswith(".")]


@pytest.fixture(scope="module")
def drop_worker(tmp_path_factory):
    if not CAN_BUILD:
        pytest.skip("needs cc, clang and libxdp-dev")
    return P.build_worker("drop", {}, BPF_DIR, str(tmp_path_factory.mktemp("w")))[0]


@pytest.mark.parametrize("args,words", [
    ([], ["no interface"]),
    (["-i", "x", "--copy-mode", "fast"], ["--copy-mode"]),
    (["-i", "x", "--xdp-mode", "offload"], ["--xdp-mode"]),
    (["-i", "x", "--queue", "64"], ["--queue"]),
    (["-i", "x", "--ring-size", "100"], ["power of 2"]),
    (["-i", "x", "--batch-size", "512", "--ring-size", "256"], ["larger than the ring"]),
    (["-i", "x", "--netns", "../etc"], ["not a namespace name"]),
    (["-i", "x" * 16], ["longer than"]),
    (["-i", "x", "extra"], ["unexpected argument"]),
])
def test_worker_rejects_bad_options_with_exit_2(drop_worker, args, words):
    proc = subprocess.run([drop_worker] + args, capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    for word in words:
        assert word in proc.stderr


def test_worker_reports_a_failure_as_json_and_exits_1(drop_worker, tmp_path):
    stats = tmp_path / "s.json"
    proc = subprocess.run([drop_worker, "-i", "xl-x0", "--netns", "xl-xnosuchns", "--stats-file", str(stats)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["status"] == "failed" and last["errno"] == 2
    assert "network namespace xl-xnosuchns does not exist" in last["error"]
    assert json.loads(stats.read_text())["status"] == "failed"
    assert last["counters"]["seen"] == {"packets": 0, "bytes": 0}


@pytest.mark.parametrize("text,want", [
    ("", {}),
    (None, {}),
    ("N=100", {"N": "100"}),
    ("N=100,XL_FAST", {"N": "100", "XL_FAST": None}),
])
def test_parse_defines_text_reads_what_the_worker_reports(text, want):
    assert A.parse_defines_text(text) == want
    assert A.parse_defines_text(P.worker_defines_text(want)) == want  # round trip with the build side


def test_prebuilt_info_refuses_what_is_not_an_executable_worker(tmp_path):
    with pytest.raises(A.AfxdpError, match="does not exist or is not executable"):
        A.prebuilt_info(str(tmp_path / "missing"))
    script = tmp_path / "impostor"
    script.write_text("#!/bin/sh\necho '{\"something\": 1}'\n")
    script.chmod(0o755)
    with pytest.raises(A.AfxdpError, match="is not an xdplab AF_XDP worker"):
        A.prebuilt_info(str(script))


def test_prebuilt_info_reads_info_and_digests_the_file(tmp_path):
    script = tmp_path / "worker"
    script.write_text("#!/bin/sh\n[ \"$1\" = --info ] && echo '{\"program\": \"drop\", \"defines\": \"N=3\"}'\n")
    script.chmod(0o755)
    info = A.prebuilt_info(str(script))
    assert info["program"] == "drop" and info["defines"] == "N=3" and len(info["digest"]) == 64
