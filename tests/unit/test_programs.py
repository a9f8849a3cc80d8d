"""programs.py: resolving, validating, hashing, caching (no root, no kernel)."""
import os
import shutil
import stat

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import programs as P

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(REPO, "bpf")
INCLUDE = os.path.join(BPF_DIR, "include")
HAS_CLANG = shutil.which("clang") is not None


@pytest.fixture
def tree(tmp_path):
    """A small program tree: src/prog.c including inc/xdplab/kern.h and inc/xdplab/x.h."""
    inc = tmp_path / "inc" / "xdplab"
    inc.mkdir(parents=True)
    (inc / "kern.h").write_text("#define XL_KERN 1\nint xl_kern_marker;\n")
    (inc / "x.h").write_text("#define X 1\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "prog.c").write_text('#include "xdplab/kern.h"\n#include "xdplab/x.h"\nint f(void) { return X; }\n')
    return tmp_path


# ---------------------------------------------------------------- resolution

@pytest.mark.parametrize("name", P.BUILTIN_PROGRAMS)
def test_builtin_resolves_to_its_bpf_c_and_entry_point(name):
    prog = P.resolve_program(name, BPF_DIR)
    assert prog.name == name
    assert prog.source_path == os.path.join(BPF_DIR, name + ".bpf.c")
    assert prog.kind == "c"
    assert prog.function == "xl_" + name
    assert os.path.isfile(prog.source_path)


def test_builtin_header_defines_the_logic_function():
    for name in P.BUILTIN_PROGRAMS:
        with open(os.path.join(INCLUDE, "xdplab", name + ".h")) as handle:
            assert "xl_%s_logic(void *data, void *data_end)" % name in handle.read()


def test_user_c_and_o_paths_resolve_with_no_function(tmp_path):
    c_file = tmp_path / "mine.bpf.c"
    c_file.write_text("int x;\n")
    o_file = tmp_path / "other.o"
    o_file.write_bytes(b"\x7fELF")
    prog = P.resolve_program(str(c_file), "/nonexistent")
    assert prog == P.Program("mine", str(c_file), "c", None)
    prog = P.resolve_program(str(o_file), "/nonexistent")
    assert prog == P.Program("other", str(o_file), "o", None)


def test_relative_path_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "rel.c").write_text("int x;\n")
    monkeypatch.chdir(tmp_path)
    prog = P.resolve_program("rel.c", BPF_DIR)
    assert prog.source_path == str(tmp_path / "rel.c")


def test_unknown_name_lists_the_builtins():
    with pytest.raises(P.ProgramError) as err:
        P.resolve_program("dorp", BPF_DIR)
    assert "unknown program 'dorp'" in err.value.msg
    for name in P.BUILTIN_PROGRAMS:
        assert name in err.value.msg


def test_missing_file_is_named_in_the_error(tmp_path):
    missing = str(tmp_path / "nope.c")
    with pytest.raises(P.ProgramError) as err:
        P.resolve_program(missing, BPF_DIR)
    assert missing in err.value.msg and "does not exist" in err.value.msg


def test_wrong_suffix_is_refused(tmp_path):
    path = tmp_path / "prog.txt"
    path.write_text("x")
    with pytest.raises(P.ProgramError) as err:
        P.resolve_program(str(path), BPF_DIR)
    assert ".c" in err.value.msg and ".o" in err.value.msg


def test_builtin_with_wrong_bpf_dir_says_where_it_looked(tmp_path):
    with pytest.raises(P.ProgramError) as err:
        P.resolve_program("drop", str(tmp_path))
    assert str(tmp_path / "drop.bpf.c") in err.value.msg


@pytest.mark.parametrize("value", [None, "", "   ", 3])
def test_empty_program_is_refused(value):
    with pytest.raises(P.ProgramError):
        P.resolve_program(value, BPF_DIR)


# ------------------------------------------------------------------- defines

def test_defines_are_sorted_and_rendered():
    assert P.define_flags({"N": 100, "A": "0x10", "B": None, "C": True, "D": "FOO_BAR", "E": -3}) == [
        "-DA=0x10", "-DB", "-DC=1", "-DD=FOO_BAR", "-DE=-3", "-DN=100"]
    assert P.define_flags(None) == [] and P.define_flags({}) == []


@pytest.mark.parametrize("name", ["1N", "N-1", "N=1", "N 1", "-DX", "", "N\n", "ü", 5])
def test_bad_define_names_are_refused(name):
    with pytest.raises(P.DefineError) as err:
        P.validate_defines({name: 1})
    assert "not a C identifier" in err.value.msg


@pytest.mark.parametrize("value", ["1; rm -rf /", "$(id)", "1 2", "a b", "\"x\"", "1.5", 1.5, [1], {"a": 1},
                                   "-DX=1", "N\n-DY"])
def test_bad_define_values_are_refused(value):
    with pytest.raises(P.DefineError) as err:
        P.validate_defines({"N": value})
    assert "define N" in err.value.msg


def test_reserved_define_is_refused():
    with pytest.raises(P.DefineError) as err:
        P.validate_defines({"XL_BCC": 1})
    assert "reserved" in err.value.msg


def test_defines_must_be_a_mapping():
    with pytest.raises(P.DefineError):
        P.validate_defines([("N", 1)])


def test_define_error_is_a_build_error_and_a_program_error():
    assert issubclass(P.DefineError, P.BuildError)
    assert issubclass(P.BuildError, P.ProgramError)


# --------------------------------------------------------------- hashing

def test_program_hash_is_stable(tree):
    src = str(tree / "src" / "prog.c")
    inc = [str(tree / "inc")]
    assert P.program_hash(src, {"N": 1}, inc) == P.program_hash(src, {"N": 1}, inc)
    assert len(P.program_hash(src, {"N": 1}, inc)) == 64


def test_program_hash_changes_with_a_define(tree):
    src = str(tree / "src" / "prog.c")
    inc = [str(tree / "inc")]
    base = P.program_hash(src, {"N": 1}, inc)
    assert P.program_hash(src, {"N": 10}, inc) != base
    assert P.program_hash(src, {"N": 1, "M": 1}, inc) != base
    assert P.program_hash(src, {}, inc) != base
    # "1" and 1 are the same define
    assert P.program_hash(src, {"N": "1"}, inc) == base


def test_program_hash_changes_with_any_header(tree):
    src = str(tree / "src" / "prog.c")
    inc = [str(tree / "inc")]
    base = P.program_hash(src, None, inc)
    (tree / "inc" / "xdplab" / "x.h").write_text("#define X 2\n")
    changed = P.program_hash(src, None, inc)
    assert changed != base
    (tree / "inc" / "xdplab" / "new.h").write_text("/* new */\n")
    assert P.program_hash(src, None, inc) != changed


def test_program_hash_sees_headers_beside_the_source(tree):
    src = str(tree / "src" / "prog.c")
    base = P.program_hash(src, None, [])
    (tree / "src" / "local.h").write_text("#define L 1\n")
    assert P.program_hash(src, None, []) != base


def test_program_hash_changes_with_the_source(tree):
    src = tree / "src" / "prog.c"
    base = P.program_hash(str(src), None, [])
    src.write_text(src.read_text() + "\n")
    assert P.program_hash(str(src), None, []) != base


def test_program_hash_of_an_object_is_its_content_hash(tmp_path):
    obj = tmp_path / "a.o"
    obj.write_bytes(b"\x7fELF one")
    first = P.program_hash(str(obj))
    obj.write_bytes(b"\x7fELF two")
    assert P.program_hash(str(obj)) != first


def test_missing_include_dir_is_an_error(tree):
    with pytest.raises(P.ProgramError) as err:
        P.program_hash(str(tree / "src" / "prog.c"), None, [str(tree / "nope")])
    assert "does not exist" in err.value.msg


# ----------------------------------------------------- build cache (fake clang)

FAKE_CLANG = """#!/bin/sh
# a stand-in for clang: --version, or record the call and write the -o file
if [ "$1" = "--version" ]; then echo "fake clang version 1.0"; exit 0; fi
echo "$@" >> "%(log)s"
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
case "$*" in *-DBROKEN*) echo "prog.c:3:1: error: expected ';'" >&2; exit 1;; esac
printf 'ELF' > "$out"
"""


@pytest.fixture
def fake_clang(tmp_path):
    log = tmp_path / "clang.log"
    path = tmp_path / "fake-clang"
    path.write_text(FAKE_CLANG % {"log": log})
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path), log


def calls(log):
    return log.read_text().splitlines() if log.exists() else []


def test_build_reuses_the_cached_object(tree, fake_clang, tmp_path):
    clang, log = fake_clang
    src, inc, out = str(tree / "src" / "prog.c"), [str(tree / "inc")], str(tmp_path / "build")
    first = P.build_object(src, {"N": 10}, inc, out, clang=clang)
    second = P.build_object(src, {"N": 10}, inc, out, clang=clang)
    assert first == second and os.path.isfile(first)
    assert len(calls(log)) == 1
    assert os.path.basename(first).startswith("prog-") and first.endswith(".o")
    # nothing but the object is left in the build dir (temp file renamed)
    assert os.listdir(out) == [os.path.basename(first)]


def test_build_key_changes_with_define_and_header(tree, fake_clang, tmp_path):
    clang, log = fake_clang
    src, inc, out = str(tree / "src" / "prog.c"), [str(tree / "inc")], str(tmp_path / "build")
    a = P.build_object(src, {"N": 10}, inc, out, clang=clang)
    b = P.build_object(src, {"N": 100}, inc, out, clang=clang)
    (tree / "inc" / "xdplab" / "x.h").write_text("#define X 3\n")
    c = P.build_object(src, {"N": 100}, inc, out, clang=clang)
    assert len({a, b, c}) == 3
    assert len(calls(log)) == 3


def test_build_key_changes_with_the_compiler_version(tree, tmp_path, fake_clang):
    clang = fake_clang[0]
    src, inc = str(tree / "src" / "prog.c"), [str(tree / "inc")]
    key = P.build_key(src, None, inc, clang=clang)
    other = tmp_path / "other-clang"
    other.write_text(open(clang).read().replace("1.0", "2.0"))
    other.chmod(0o755)
    assert P.build_key(src, None, inc, clang=str(other)) != key


def test_build_command_has_target_includes_and_defines(tree, fake_clang, tmp_path):
    clang, log = fake_clang
    src, inc = str(tree / "src" / "prog.c"), [str(tree / "inc")]
    P.build_object(src, {"N": 7}, inc, str(tmp_path / "b"), clang=clang)
    line = calls(log)[0]
    assert "-target bpf" in line and "-O2" in line and "-g" in line
    assert "-I%s" % (tree / "inc") in line
    assert "-DN=7" in line and "-DXL_BCC" not in line


def test_build_failure_carries_the_compiler_output(tree, fake_clang, tmp_path):
    clang = fake_clang[0]
    src, out = str(tree / "src" / "prog.c"), tmp_path / "build"
    with pytest.raises(P.BuildError) as err:
        P.build_object(src, {"BROKEN": 1}, [str(tree / "inc")], str(out), clang=clang)
    assert "could not compile" in err.value.msg and src in err.value.msg
    assert "expected ';'" in err.value.msg
    assert "error: expected ';'" in err.value.compiler_output
    assert err.value.command[0] == clang
    assert os.listdir(str(out)) == []  # no partial object, no temp file


def test_bad_define_never_reaches_the_compiler(tree, fake_clang, tmp_path):
    clang, log = fake_clang
    with pytest.raises(P.DefineError):
        P.build_object(str(tree / "src" / "prog.c"), {"N": "1; reboot"}, [str(tree / "inc")],
                       str(tmp_path / "b"), clang=clang)
    assert calls(log) == []


def test_missing_clang_is_a_clear_build_error(tree, tmp_path):
    with pytest.raises(P.BuildError) as err:
        P.build_object(str(tree / "src" / "prog.c"), None, [], str(tmp_path / "b"),
                       clang=str(tmp_path / "no-such-clang"))
    assert "install clang" in err.value.msg


def test_object_is_returned_as_is(tmp_path):
    obj = tmp_path / "x.o"
    obj.write_bytes(b"\x7fELF")
    assert P.build_object(str(obj), None, [], str(tmp_path / "b")) == str(obj)
    with pytest.raises(P.DefineError):
        P.build_object(str(obj), {"N": 1}, [], str(tmp_path / "b"))


@pytest.mark.skipif(not HAS_CLANG, reason="clang not installed")
def test_real_clang_builds_every_builtin(tmp_path):
    for name in P.BUILTIN_PROGRAMS:
        prog = P.resolve_program(name, BPF_DIR)
        obj = P.build_object(prog.source_path, {"N": 10}, [INCLUDE], str(tmp_path), clang="clang")
        with open(obj, "rb") as handle:
            assert handle.read(4) == b"\x7fELF"


@pytest.mark.skipif(not HAS_CLANG, reason="clang not installed")
def test_real_clang_error_is_reported(tmp_path):
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) { return undefined_thing; }\n")
    with pytest.raises(P.BuildError) as err:
        P.build_object(str(bad), None, [], str(tmp_path / "b"))
    assert "undefined_thing" in err.value.compiler_output


# ----------------------------------------------------------------------- BCC

def test_bcc_source_inlines_the_prelude_and_sets_flags(tree):
    src = str(tree / "src" / "prog.c")
    inc = str(tree / "inc")
    text, cflags = P.bcc_source(src, {"N": 100}, [inc])
    assert "int xl_kern_marker;" in text            # prelude inlined
    assert '#include "xdplab/kern.h"' not in text
    assert '#include "xdplab/x.h"' in text          # other headers stay includes
    assert '#line 2 "%s"' % src in text               # line numbers of the source kept
    assert cflags[0] == "-I" + inc
    assert "-DXL_BCC" in cflags and "-DN=100" in cflags


def test_bcc_source_without_prelude_is_unchanged(tmp_path):
    src = tmp_path / "plain.c"
    src.write_text("int x;\n")
    text, cflags = P.bcc_source(str(src), None, [])
    assert text == "int x;\n"
    assert "-DXL_BCC" in cflags


def test_bcc_source_missing_prelude_is_an_error(tree):
    with pytest.raises(P.ProgramError) as err:
        P.bcc_source(str(tree / "src" / "prog.c"), None, [])
    assert "xdplab/kern.h" in err.value.msg


def test_bcc_source_refuses_objects_and_bad_defines(tree, tmp_path):
    obj = tmp_path / "x.o"
    obj.write_bytes(b"\x7fELF")
    with pytest.raises(P.ProgramError):
        P.bcc_source(str(obj), None, [])
    with pytest.raises(P.DefineError):
        P.bcc_source(str(tree / "src" / "prog.c"), {"N": "$(x)"}, [str(tree / "inc")])


@pytest.mark.parametrize("name", P.BUILTIN_PROGRAMS)
def test_bcc_source_of_builtins_has_the_real_prelude(name):
    prog = P.resolve_program(name, BPF_DIR)
    text = P.bcc_source(prog.source_path, None, [INCLUDE])[0]
    assert "BPF_PERCPU_ARRAY(xl_stats" in text
    assert "XL_PROG(%s)" % prog.function in text
