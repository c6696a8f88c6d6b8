"""Refuse user namespaces to the workload: a seccomp filter, installed in the workload's child
before exec, makes ``unshare`` and ``clone`` with ``CLONE_NEWUSER`` fail with EPERM and
``clone3`` (whose flags sit in memory a filter cannot read) fail with ENOSYS, so libc falls back
to ``clone``. Inside a user namespace of its own a workload is "root" for the kernel's
namespaced checks (mounts, network namespaces, attack surface of code paths otherwise reachable
by root alone); the harness's isolation does not need it, and Chromium launched by Playwright
runs with ``--no-sandbox`` (no namespaces of its own). ``--allow-userns`` leaves them open.

The filter is classic BPF built by hand (no libseccomp needed) for x86_64 (with its x32 and
i386 ABIs) and aarch64 (with arm); on other architectures :func:`build` returns None and user
namespaces stay open (run.json says so).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

CLONE_NEWUSER = 0x10000000
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
_LD_W_ABS, _JEQ_K, _JSET_K, _RET_K = 0x20, 0x15, 0x45, 0x06
_NR, _ARCH, _ARG0_LOW = 0, 4, 16  # offsets in struct seccomp_data (little-endian)
_X32 = 0x40000000
#: audit arch -> (clone, unshare, clone3) syscall numbers, per machine's native and compat ABIs.
ABIS = {
    "x86_64": {0xC000003E: (56, 272, 435), 0x40000003: (120, 310, 435)},
    "aarch64": {0xC00000B7: (220, 97, 435), 0x40000028: (120, 337, 435)},
}
_libc = ctypes.CDLL(None, use_errno=True)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _program(abis: dict[int, tuple[int, int, int]], x32: bool) -> list[tuple[int, int, int, int]]:
    """The filter's instructions (code, jt, jf, k); jumps resolved from labels."""
    asm: list[tuple] = [("ld", _ARCH)]
    for arch in abis:
        asm.append(("jeq", arch, f"abi{arch}", None))
    asm.append(("ret", SECCOMP_RET_ALLOW))  # an ABI the kernel does not offer here
    for arch, (clone, unshare, clone3) in abis.items():
        asm += [("label", f"abi{arch}"), ("ld", _NR)]
        extra = (_X32,) if x32 and arch == next(iter(abis)) else ()
        for base in (0, *extra):
            asm += [("jeq", base + clone3, "enosys", None),
                    ("jeq", base + clone, "flags", None),
                    ("jeq", base + unshare, "flags", None)]
        asm.append(("ret", SECCOMP_RET_ALLOW))
    asm += [("label", "flags"), ("ld", _ARG0_LOW), ("jset", CLONE_NEWUSER, "eperm", None),
            ("ret", SECCOMP_RET_ALLOW),
            ("label", "eperm"), ("ret", SECCOMP_RET_ERRNO | errno.EPERM),
            ("label", "enosys"), ("ret", SECCOMP_RET_ERRNO | errno.ENOSYS)]
    labels, code = {}, [op for op in asm if op[0] != "label"]
    position = 0
    for op in asm:
        if op[0] == "label":
            labels[op[1]] = position
        else:
            position += 1
    out = []
    for i, op in enumerate(code):
        if op[0] == "ld":
            out.append((_LD_W_ABS, 0, 0, op[1]))
        elif op[0] == "ret":
            out.append((_RET_K, 0, 0, op[1]))
        else:
            jt, jf = (0 if label is None else labels[label] - i - 1 for label in op[2:])
            out.append((_JEQ_K if op[0] == "jeq" else _JSET_K, jt, jf, op[1]))
    return out


class UsernsFilter:
    """The filter, built in the harness; :meth:`install` is the child's one syscall."""

    def __init__(self, instructions: list[tuple[int, int, int, int]]) -> None:
        raw = b"".join(struct.pack("=HBBI", *insn) for insn in instructions)
        self._buffer = ctypes.create_string_buffer(raw, len(raw))
        self._prog = _SockFprog(len(instructions), ctypes.addressof(self._buffer))

    def install(self) -> None:
        """In the workload's child, as root (CAP_SYS_ADMIN: no ``no_new_privs`` needed, so
        setuid programs keep working), before exec: inherited by everything it starts."""
        if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(self._prog), 0, 0):
            err = ctypes.get_errno()
            raise OSError(err, f"seccomp filter: {os.strerror(err)}")


def build() -> UsernsFilter | None:
    """The filter for this machine, or None where it has no table (user namespaces then
    cannot be refused)."""
    machine = platform.machine()
    abis = ABIS.get(machine)
    if abis is None:
        return None
    return UsernsFilter(_program(abis, x32=machine == "x86_64"))
