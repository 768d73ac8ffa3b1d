"""Run a command that may write only inside the folders it is given (Linux Landlock).

    python -I tipline/site/sandbox.py WRITABLE [WRITABLE ...] -- COMMAND [ARG ...]

`make book` starts every chapter's kernel through this, so a cell can read the whole book but write
only into the kernel's own scratch folder: `open("../_static/pwn.js", "w")` or `../data/pwn.txt`
fails with PermissionError and the chapter fails. Landlock (Linux 5.13 and later) is enforced by the
kernel for an unprivileged process and its children, root included, with no mount or user namespace,
so it works alike on a laptop, in a container and on a CI machine running as root. Reads are not
restricted (a chapter reads data/, the package, the pinned libraries). The rules last until the
process ends and survive exec(), so the command runs under them and cannot lift them.

Without Landlock (another OS, an old kernel, a seccomp profile that refuses it), `available()` is
False and the build says so once; tests/test_build.py then fails rather than pass unchecked.
"""
from __future__ import annotations

import ctypes
import os
import sys

# the system call numbers are the same on every architecture (asm-generic), since Linux 5.13
CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
VERSION = 1  # LANDLOCK_CREATE_RULESET_VERSION
PATH_BENEATH = 1  # LANDLOCK_RULE_PATH_BENEATH
NO_NEW_PRIVS = 38  # PR_SET_NO_NEW_PRIVS
# every right that changes the file system (ABI 1), plus REFER (ABI 2: renames across folders) and
# TRUNCATE (ABI 3); reading and executing are not handled, so they stay allowed everywhere
WRITE = 2 | 16 | 32 | 64 | 128 | 256 | 512 | 1024 | 2048 | 4096
REFER, TRUNCATE = 1 << 13, 1 << 14


class _Ruleset(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def abi() -> int:
    """The Landlock ABI version the running kernel offers (0: none)."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _libc.syscall(CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(VERSION))
    return max(int(version), 0)


def available() -> bool:
    return abi() >= 1


def restrict(writable: list[str]) -> None:
    """From now on this process and its children may change files only beneath `writable`."""
    version = abi()
    if version < 1:
        raise OSError("Landlock is not available on this system (Linux 5.13 or later is needed)")
    handled = WRITE | (REFER if version >= 2 else 0) | (TRUNCATE if version >= 3 else 0)
    attr = _Ruleset(handled)
    ruleset = _libc.syscall(CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset: " + os.strerror(ctypes.get_errno()))
    try:
        for path in writable:
            folder = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneath(handled, folder)
                if _libc.syscall(ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}: " + os.strerror(ctypes.get_errno()))
            finally:
                os.close(folder)
        if _libc.prctl(NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS): " + os.strerror(ctypes.get_errno()))
        if _libc.syscall(RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self: " + os.strerror(ctypes.get_errno()))
    finally:
        os.close(ruleset)


def command(writable: list[str], argv: list[str]) -> list[str]:
    """`argv` run under this sandbox, writing only beneath `writable`. The file is run as a script,
    isolated (-I: the standard library only), not as `-m tipline.site.sandbox`: importing the
    package would import pandas (tipline/__init__.py), 0.4 s of every kernel's start, for nothing."""
    return [sys.executable, "-I", os.path.abspath(__file__), *writable, "--", *argv]


def main(args: list[str]) -> None:
    split = args.index("--")
    writable, argv = args[:split], args[split + 1:]
    restrict(writable)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
