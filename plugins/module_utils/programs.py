# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's XDP programs: find them, build them, hash them.

Pure Python (no Ansible, no BCC import): modules and tests call

* ``resolve_program(program, bpf_dir)``: a built-in name (``drop``, ``loop``,
  ``checksum``, ``dns_nxdomain``) or the path of a user's ``.c``/``.o`` file
  -> ``Program(name, source_path, kind, function)``;
* ``build_object(source_path, defines, include_dirs, build_dir)``: clang
  ``-target bpf`` -> ELF object, cached under ``build_dir`` by a digest of
  everything that determines it (source, headers, defines, clang version);
* ``bcc_source(source_path, defines, include_dirs)``: ``(text, cflags)`` for
  ``bcc.BPF(text=..., cflags=...)`` from the same source;
* ``program_hash(source_path, defines, include_dirs)``: provenance digest;
* ``build_worker(program, defines, bpf_dir, build_dir)``: the AF_XDP worker
  (bpf/afxdp) with the program's logic header compiled in by the host C
  compiler -> ``(binary path, key)``, cached like ``build_object``.

Defines (``{'N': 100}``) are validated before they reach a compiler: names
must be C identifiers, values integers or simple tokens.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import glob
import hashlib
import os
import platform
import re
import subprocess
import tempfile

BUILTIN_PROGRAMS = ('drop', 'loop', 'checksum', 'dns_nxdomain')

# The kernel-side prelude every built-in includes; BCC gets it inlined (below).
KERN_PRELUDE = 'xdplab/kern.h'
# Set by bcc_source() for BCC builds; not a user define.
RESERVED_DEFINES = ('XL_BCC',)
# Flags of the clang build (part of the cache key).
CLANG_FLAGS = ('-O2', '-g', '-Wall', '-target', 'bpf')
# Bump when the way objects are built changes (invalidates the cache).
BUILD_FORMAT = 'xdplab-build-1'
COMPILE_TIMEOUT = 300

_IDENT_RE = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_INT_TOKEN_RE = re.compile(r'-?(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]{0,3}')
_INCLUDE_PRELUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"' + re.escape(KERN_PRELUDE) + r'"[ \t]*$',
                                 re.MULTILINE)

Program = collections.namedtuple('Program', ['name', 'source_path', 'kind', 'function'])
Program.__doc__ = """A resolved program.

name: built-in name or the file's base name; source_path: absolute path;
kind: 'c' (C source) or 'o' (ELF object); function: the XDP entry point
(``xl_<name>`` for built-ins, None = the object's first program)."""


class ProgramError(Exception):
    """A program that cannot be found or used as asked."""

    def __init__(self, msg):
        super(ProgramError, self).__init__(msg)
        self.msg = msg


class BuildError(ProgramError):
    """A build that failed; ``compiler_output`` holds the compiler's message."""

    def __init__(self, msg, compiler_output='', command=None):
        super(BuildError, self).__init__(msg)
        self.compiler_output = compiler_output
        self.command = list(command) if command else []


class DefineError(BuildError):
    """A compile-time define that must not reach the compiler."""


def _builtin_list():
    return ', '.join(BUILTIN_PROGRAMS)


def resolve_program(program, bpf_dir):
    """Map a program name or path to a ``Program``.

    A built-in name resolves to ``<bpf_dir>/<name>.bpf.c`` with entry point
    ``xl_<name>``; anything containing a path separator or ending in ``.c`` or
    ``.o`` is taken as the path of the user's own source or object.
    """
    if not isinstance(program, str) or not program.strip():
        raise ProgramError('no program given: name one of the built-in programs (%s) '
                           'or the path of a .c or .o file' % _builtin_list())
    program = program.strip()
    if program in BUILTIN_PROGRAMS:
        path = os.path.abspath(os.path.join(bpf_dir, program + '.bpf.c'))
        if not os.path.isfile(path):
            raise ProgramError('the source of built-in program %s is missing: %s does not exist '
                               '(is bpf_dir %s the collection\'s bpf/ directory?)' % (program, path, bpf_dir))
        return Program(program, path, 'c', 'xl_' + program)

    looks_like_path = os.sep in program or program.endswith(('.c', '.o'))
    if not looks_like_path:
        raise ProgramError('unknown program %r: use one of the built-in programs (%s) '
                           'or the path of your own .c or .o file' % (program, _builtin_list()))
    path = os.path.abspath(os.path.expanduser(program))
    if path.endswith('.c'):
        kind = 'c'
    elif path.endswith('.o'):
        kind = 'o'
    else:
        raise ProgramError('cannot use %s as a program: give a C source (.c) or an ELF object (.o), '
                           'or one of the built-in programs (%s)' % (path, _builtin_list()))
    if not os.path.isfile(path):
        raise ProgramError('program file %s does not exist (built-in programs: %s)' % (path, _builtin_list()))
    base = os.path.basename(path)
    for suffix in ('.bpf.c', '.bpf.o', '.c', '.o'):
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    return Program(base, path, kind, None)


def validate_defines(defines):
    """Check compile-time defines; return them as a sorted list of (name, value-or-None).

    Names must be C identifiers (and not reserved); values may be integers,
    booleans (1/0), None (a bare ``-DNAME``) or strings that are an integer
    literal or a C identifier. Anything else raises DefineError.
    """
    if defines is None:
        return []
    if not isinstance(defines, dict):
        raise DefineError('defines must be a mapping of NAME: value (for example {N: 100}), got %s'
                          % type(defines).__name__)
    result = []
    for name, value in defines.items():
        if not isinstance(name, str) or not _IDENT_RE.fullmatch(name):
            raise DefineError('define name %r is not a C identifier (letters, digits and _, '
                              'not starting with a digit)' % (name,))
        if name in RESERVED_DEFINES:
            raise DefineError('define %s is reserved: it is set by the build itself' % name)
        if value is None:
            text = None
        elif isinstance(value, bool):
            text = '1' if value else '0'
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, str) and (_INT_TOKEN_RE.fullmatch(value.strip()) or _IDENT_RE.fullmatch(value.strip())):
            text = value.strip()
        else:
            raise DefineError('value %r of define %s is not allowed: use an integer or a single '
                              'C identifier' % (value, name))
        result.append((name, text))
    result.sort()
    return result


def define_flags(defines):
    """``-D`` flags for validated defines (sorted, deterministic)."""
    return ['-D%s' % name if text is None else '-D%s=%s' % (name, text) for name, text in validate_defines(defines)]


def _headers(include_dirs, source_path):
    """Every header the build can see: (label, path), sorted, deterministic.

    All ``*.h`` below each include directory, plus headers next to the source
    (for ``#include "local.h"`` in a user's file).
    """
    found = []
    for idx, top in enumerate(include_dirs or ()):
        top = os.path.abspath(top)
        if not os.path.isdir(top):
            raise ProgramError('include directory %s does not exist' % top)
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for fname in sorted(files):
                if fname.endswith('.h'):
                    path = os.path.join(root, fname)
                    found.append(('I%d:%s' % (idx, os.path.relpath(path, top)), path))
    src_dir = os.path.dirname(os.path.abspath(source_path))
    for fname in sorted(os.listdir(src_dir)):
        path = os.path.join(src_dir, fname)
        if fname.endswith('.h') and os.path.isfile(path):
            found.append(('S:%s' % fname, path))
    return found


def _read(path, what='source'):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise ProgramError('cannot read %s %s: %s' % (what, path, exc.strerror or exc))


def _digest(parts):
    sha = hashlib.sha256()
    for label, blob in parts:
        if not isinstance(blob, bytes):
            blob = blob.encode('utf-8')
        label = label.encode('utf-8')
        # length-prefixed, so no two different inputs hash the same stream
        sha.update(b'%d:%s=%d:' % (len(label), label, len(blob)))
        sha.update(blob)
    return sha.hexdigest()


def program_hash(source_path, defines=None, include_dirs=()):
    """sha256 over what determines the program, independent of the loader.

    C source: the source, every header under the include directories (and
    beside the source), the validated defines. ELF object: the object's bytes.
    """
    if source_path.endswith('.o'):
        return _digest([('object', _read(source_path, 'object'))])
    parts = [('format', 'xdplab-program-1'), ('source', _read(source_path))]
    for label, path in _headers(include_dirs, source_path):
        parts.append(('header:' + label, _read(path, 'header')))
    for name, text in validate_defines(defines):
        parts.append(('define:' + name, '' if text is None else '=' + text))
    return _digest(parts)


_clang_versions = {}


def clang_version(clang='clang'):
    """First line of ``clang --version`` (cached per binary); BuildError if clang cannot run."""
    try:
        stat = os.stat(clang) if os.sep in clang else None
    except OSError:
        stat = None
    key = (clang, stat.st_mtime if stat else None)
    if key in _clang_versions:
        return _clang_versions[key]
    cmd = [clang, '--version']
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, check=False)
    except OSError as exc:
        raise BuildError('cannot run the BPF compiler %s (%s): install clang (Debian: apt-get install clang)'
                         % (clang, exc.strerror or exc), command=cmd)
    except subprocess.TimeoutExpired:
        raise BuildError('%s --version did not answer within 60 s' % clang, command=cmd)
    out = proc.stdout.decode('utf-8', 'replace')
    if proc.returncode != 0 or not out.strip():
        raise BuildError('%s --version failed (exit %d)' % (clang, proc.returncode), compiler_output=out, command=cmd)
    version = out.strip().splitlines()[0].strip()
    _clang_versions[key] = version
    return version


def arch_include_dirs():
    """The multiarch include directory holding ``asm/types.h`` (needed by <linux/bpf.h>), if any."""
    machine = platform.machine()
    candidates = ['/usr/include/%s-linux-gnu' % machine]
    candidates += sorted(glob.glob('/usr/include/*-linux-gnu'))
    for cand in candidates:
        if os.path.isfile(os.path.join(cand, 'asm', 'types.h')):
            return [cand]
    return []


def _object_name(source_path):
    base = os.path.basename(source_path)
    for suffix in ('.bpf.c', '.c'):
        if base.endswith(suffix):
            return base[:-len(suffix)]
    return base


def _first_error(output):
    for line in output.splitlines():
        if 'error' in line:
            return line.strip()
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[0] if lines else 'no compiler output'


def build_command(source_path, defines, include_dirs, output, clang='clang'):
    """The clang argument list that builds ``source_path`` into ``output``."""
    cmd = [clang] + list(CLANG_FLAGS)
    for inc in list(include_dirs or ()) + arch_include_dirs():
        cmd.append('-I' + os.path.abspath(inc))
    cmd += define_flags(defines)
    cmd += ['-c', os.path.abspath(source_path), '-o', output]
    return cmd


def build_key(source_path, defines, include_dirs, clang='clang'):
    """Cache key of a clang build: the program hash plus toolchain and flags."""
    parts = [('format', BUILD_FORMAT),
             ('program', program_hash(source_path, defines, include_dirs)),
             ('clang', clang_version(clang)),
             ('flags', ' '.join(CLANG_FLAGS)),
             ('arch', ' '.join(arch_include_dirs()))]
    return _digest(parts)


def build_object(source_path, defines, include_dirs, build_dir, clang='clang'):
    """Compile a C source with clang -target bpf; return the ELF object's path.

    The object is ``<build_dir>/<name>-<key>.o`` where key digests the source,
    the headers, the defines and the clang version: an existing object is
    re-used, a new one is written to a temporary file and renamed into place.
    ELF objects (``.o``) are returned as they are.
    """
    source_path = os.path.abspath(source_path)
    if source_path.endswith('.o'):
        if defines:
            raise DefineError('defines apply to C sources only; %s is already compiled' % source_path)
        if not os.path.isfile(source_path):
            raise ProgramError('object %s does not exist' % source_path)
        return source_path
    if not os.path.isfile(source_path):
        raise ProgramError('source %s does not exist' % source_path)
    validate_defines(defines)
    key = build_key(source_path, defines, include_dirs, clang)
    try:
        os.makedirs(build_dir, exist_ok=True)
    except OSError as exc:
        raise BuildError('cannot create build directory %s: %s' % (build_dir, exc.strerror or exc))
    target = os.path.join(os.path.abspath(build_dir), '%s-%s.o' % (_object_name(source_path), key[:16]))
    if os.path.isfile(target) and os.path.getsize(target) > 0:
        return target

    fd, tmp = tempfile.mkstemp(prefix='.%s-' % _object_name(source_path), suffix='.o.tmp',
                               dir=os.path.dirname(target))
    os.close(fd)
    cmd = build_command(source_path, defines, include_dirs, tmp, clang)
    try:
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=COMPILE_TIMEOUT, check=False)
        except OSError as exc:
            raise BuildError('cannot run the BPF compiler %s (%s): install clang' % (clang, exc.strerror or exc),
                             command=cmd)
        except subprocess.TimeoutExpired:
            raise BuildError('compiling %s took longer than %d s' % (source_path, COMPILE_TIMEOUT), command=cmd)
        output = proc.stdout.decode('utf-8', 'replace')
        if proc.returncode != 0:
            raise BuildError('clang could not compile %s: %s' % (source_path, _first_error(output)),
                             compiler_output=output, command=cmd)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _expand_prelude(text, include_dirs, source_path):
    """Inline ``#include "xdplab/kern.h"`` into the text (BCC only rewrites map
    accesses such as ``xl_stats.lookup()`` in its main text, not in headers)."""
    if not _INCLUDE_PRELUDE_RE.search(text):
        return text
    for inc in include_dirs or ():
        path = os.path.join(os.path.abspath(inc), KERN_PRELUDE)
        if os.path.isfile(path):
            break
    else:
        raise ProgramError('%s includes "%s" but no include directory has it (searched: %s)'
                           % (source_path, KERN_PRELUDE, ', '.join(include_dirs or ()) or 'none'))
    prelude = _read(path, 'header').decode('utf-8')
    out = []
    for lineno, line in enumerate(text.split('\n'), 1):
        if _INCLUDE_PRELUDE_RE.match(line):
            out.append('#line 1 "%s"' % path)
            out.append(prelude.rstrip('\n'))
            out.append('#line %d "%s"' % (lineno + 1, source_path))
        else:
            out.append(line)
    return '\n'.join(out)


def bcc_source(source_path, defines, include_dirs):
    """``(text, cflags)`` for ``bcc.BPF(text=text, cflags=cflags)``.

    cflags: ``-I`` for each include directory, ``-DXL_BCC`` (selects the BCC
    side of the kernel prelude) and the validated defines.
    """
    source_path = os.path.abspath(source_path)
    if not source_path.endswith('.c'):
        raise ProgramError('BCC compiles C sources; %s is not a .c file' % source_path)
    text = _read(source_path).decode('utf-8')
    text = _expand_prelude(text, include_dirs, source_path)
    cflags = ['-I' + os.path.abspath(inc) for inc in include_dirs or ()]
    cflags.append('-I' + os.path.dirname(source_path))
    cflags.append('-DXL_BCC')
    cflags += define_flags(defines)
    return text, cflags


# ------------------------------------------------------------ AF_XDP worker
# The user-space location (bpf/afxdp/xl_afxdp.c): one binary per program and
# defines, the program's packet-logic header compiled in by the host C
# compiler, the redirect program (clang -target bpf) embedded with .incbin.

WORKER_SOURCE = os.path.join('afxdp', 'xl_afxdp.c')
WORKER_REDIRECT_SOURCE = os.path.join('afxdp', 'xl_afxdp_redirect.bpf.c')
WORKER_CFLAGS = ('-O2', '-g', '-Wall', '-Wextra')
WORKER_LIBS = ('-lxdp', '-lbpf')
WORKER_FORMAT = 'xdplab-afxdp-1'

WorkerProgram = collections.namedtuple('WorkerProgram', ['name', 'header', 'builtin'])
WorkerProgram.__doc__ = """A program for the AF_XDP worker.

name: the program's name (its logic function is ``xl_<name>_logic``);
header: absolute path of the header with that function; builtin: True for
the collection's programs (found under ``<bpf_dir>/include/xdplab/``)."""


def resolve_worker_program(program, bpf_dir):
    """A built-in name or the path of a ``.h`` defining ``xl_<name>_logic`` -> WorkerProgram."""
    if not isinstance(program, str) or not program.strip():
        raise ProgramError('no program given: name one of the built-in programs (%s) or the path of a '
                           'header (.h) that defines xl_<name>_logic(void *data, void *data_end)'
                           % _builtin_list())
    program = program.strip()
    if program in BUILTIN_PROGRAMS:
        header = os.path.abspath(os.path.join(bpf_dir, 'include', 'xdplab', program + '.h'))
        if not os.path.isfile(header):
            raise ProgramError('the logic header of built-in program %s is missing: %s does not exist '
                               '(is bpf_dir %s the collection\'s bpf/ directory?)' % (program, header, bpf_dir))
        return WorkerProgram(program, header, True)
    if not program.endswith('.h'):
        raise ProgramError('the AF_XDP worker runs a program\'s packet logic, not %r: use one of the built-in '
                           'programs (%s) or the path of a header (.h) that defines '
                           'xl_<name>_logic(void *data, void *data_end)' % (program, _builtin_list()))
    path = os.path.abspath(os.path.expanduser(program))
    name = os.path.basename(path)[:-len('.h')]
    if not _IDENT_RE.fullmatch(name):
        raise ProgramError('header %s: its base name %r must be a C identifier, since the worker calls '
                           'xl_%s_logic()' % (path, name, name))
    if not os.path.isfile(path):
        raise ProgramError('logic header %s does not exist (built-in programs: %s)' % (path, _builtin_list()))
    return WorkerProgram(name, path, False)


_compiler_versions = {}


def compiler_version(cc='cc'):
    """First line of ``<cc> --version`` (cached); BuildError if the host C compiler cannot run."""
    if cc in _compiler_versions:
        return _compiler_versions[cc]
    cmd = [cc, '--version']
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, check=False)
    except OSError as exc:
        raise BuildError('cannot run the C compiler %s (%s): install gcc (Debian: apt-get install gcc)'
                         % (cc, exc.strerror or exc), command=cmd)
    except subprocess.TimeoutExpired:
        raise BuildError('%s --version did not answer within 60 s' % cc, command=cmd)
    out = proc.stdout.decode('utf-8', 'replace')
    if proc.returncode != 0 or not out.strip():
        raise BuildError('%s --version failed (exit %d)' % (cc, proc.returncode), compiler_output=out, command=cmd)
    _compiler_versions[cc] = out.strip().splitlines()[0].strip()
    return _compiler_versions[cc]


def worker_defines_text(defines):
    """The defines as the worker reports them (``N=100,X``): sorted, deterministic."""
    return ','.join(name if text is None else '%s=%s' % (name, text) for name, text in validate_defines(defines))


def worker_build_key(program, defines, bpf_dir, cc='cc', clang='clang'):
    """Digest of everything that determines a worker binary (no build needed to compute it)."""
    wp = program if isinstance(program, WorkerProgram) else resolve_worker_program(program, bpf_dir)
    include = os.path.join(bpf_dir, 'include')
    source = os.path.join(bpf_dir, WORKER_SOURCE)
    redirect = os.path.join(bpf_dir, WORKER_REDIRECT_SOURCE)
    parts = [('format', WORKER_FORMAT), ('program', wp.name),
             ('source', _read(source, 'worker source')),
             ('redirect', _read(redirect, 'redirect program source'))]
    for label, path in _headers([include], source):
        parts.append(('header:' + label, _read(path, 'header')))
    if not wp.builtin:
        parts.append(('logic-header', _read(wp.header, 'logic header')))
    for name, text in validate_defines(defines):
        parts.append(('define:' + name, '' if text is None else '=' + text))
    parts += [('cc', compiler_version(cc)), ('clang', clang_version(clang)),
              ('cflags', ' '.join(WORKER_CFLAGS)), ('libs', ' '.join(WORKER_LIBS)),
              ('bpf-flags', ' '.join(CLANG_FLAGS)), ('arch', ' '.join(arch_include_dirs()))]
    return _digest(parts)


def worker_path(program, key, build_dir):
    """Where build_worker puts (or finds) the binary of ``program`` with build key ``key``."""
    name = program.name if isinstance(program, WorkerProgram) else program
    return os.path.join(os.path.abspath(build_dir), 'xl-afxdp-%s-%s' % (name, key[:16]))


def worker_command(program, defines, bpf_dir, redirect_object, output, cc='cc'):
    """The host compiler's argument list that builds the worker for ``program`` (a WorkerProgram)."""
    for char in '"\\\n':
        if char in redirect_object:
            raise BuildError('the build directory path %s cannot hold the embedded redirect object: it contains '
                             '%r; choose another build_dir' % (redirect_object, char))
    cmd = [cc] + list(WORKER_CFLAGS) + ['-I' + os.path.abspath(os.path.join(bpf_dir, 'include'))]
    if not program.builtin:
        cmd += ['-include', program.header]
    cmd.append('-DXL_AFXDP_PROGRAM=%s' % program.name)
    cmd += define_flags(defines)
    cmd.append('-DXL_AFXDP_DEFINES="%s"' % worker_defines_text(defines))
    cmd.append('-DXL_AFXDP_BPF_OBJ="%s"' % redirect_object)
    cmd += [os.path.abspath(os.path.join(bpf_dir, WORKER_SOURCE)), '-o', output]
    cmd += list(WORKER_LIBS)
    return cmd


def build_worker(program, defines, bpf_dir, build_dir, cc='cc', clang='clang'):
    """Build (or find in the cache) the AF_XDP worker for a program; return ``(path, key)``.

    The binary is ``<build_dir>/xl-afxdp-<name>-<key>``; the key digests the
    worker and redirect sources, the headers, the defines and both compilers'
    versions. New binaries are written to a temporary file and renamed.
    """
    wp = program if isinstance(program, WorkerProgram) else resolve_worker_program(program, bpf_dir)
    validate_defines(defines)
    key = worker_build_key(wp, defines, bpf_dir, cc, clang)
    target = worker_path(wp, key, build_dir)
    if os.path.isfile(target) and os.access(target, os.X_OK):
        return target, key
    redirect = build_object(os.path.join(bpf_dir, WORKER_REDIRECT_SOURCE), None,
                            [os.path.join(bpf_dir, 'include')], build_dir, clang=clang)
    fd, tmp = tempfile.mkstemp(prefix='.xl-afxdp-%s-' % wp.name, suffix='.tmp', dir=os.path.dirname(target))
    os.close(fd)
    cmd = worker_command(wp, defines, bpf_dir, redirect, tmp, cc)
    try:
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=COMPILE_TIMEOUT, check=False)
        except OSError as exc:
            raise BuildError('cannot run the C compiler %s (%s): install gcc' % (cc, exc.strerror or exc),
                             command=cmd)
        except subprocess.TimeoutExpired:
            raise BuildError('building the AF_XDP worker for %s took longer than %d s'
                             % (wp.name, COMPILE_TIMEOUT), command=cmd)
        output = proc.stdout.decode('utf-8', 'replace')
        if proc.returncode != 0:
            hint = ''
            if 'xdp/xsk.h' in output or '-lxdp' in output:
                hint = ' (install libxdp-dev and libbpf-dev)'
            raise BuildError('the AF_XDP worker for %s does not compile%s: %s'
                             % (wp.name, hint, _first_error(output)), compiler_output=output, command=cmd)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target, key
