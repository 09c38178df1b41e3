"""Swaps two entries of one directory back and forth, as fast as it can.

Usage: python3 flipper.py DIR NAME_A NAME_B SECONDS

The attacker of test/confinement.test.ts: an unprivileged local user who may
write in a directory inside the folder exchanges a real directory and a
symlink that leads outside (renameat2 with RENAME_EXCHANGE: both names exist
at every moment, one is the directory, the other the link), hoping that a
device running as root resolves a path while the link is in place. It works
relative to a descriptor of DIR, prints "flipping" once the first exchange
succeeded, and stops after SECONDS (a bound even if nobody stops it), on
SIGTERM, or when the process that started it dies, printing how many
exchanges it made.
"""

import ctypes
import os
import signal
import sys
import time

RENAME_EXCHANGE = 2
PR_SET_PDEATHSIG = 1


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    where, a, b, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        print("flipper: this libc has no renameat2 (glibc 2.28 or later needed)", file=sys.stderr)
        return 2
    renameat2 = libc.renameat2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    dfd = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
    name_a, name_b = os.fsencode(a), os.fsencode(b)
    flips = 0

    def stop(_sig: int, _frame: object) -> None:
        print(f"flipper: {flips} exchanges", flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    # Stopped with the test process, even if it dies without stopping us.
    parent = os.getppid()
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:
        return 1
    deadline = time.monotonic() + seconds
    while True:
        if renameat2(dfd, name_a, dfd, name_b, RENAME_EXCHANGE) != 0:
            err = ctypes.get_errno()
            print(f"flipper: renameat2 failed: {os.strerror(err)}", file=sys.stderr, flush=True)
            return 1
        flips += 1
        if flips == 1:
            print("flipping", flush=True)
        # The clock is read every 1024 exchanges: the loop stays tight.
        if flips % 1024 == 0 and (time.monotonic() > deadline or os.getppid() != parent):
            break
    print(f"flipper: {flips} exchanges", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
