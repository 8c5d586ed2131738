"""The workload the supervisor tests run under baowrap. It reports what a
child can observe about its own start (signal state, fds, process group,
terminal, parent) and what reaches it later (signals), writing to files so
nothing depends on the wrapper's stdout. Not `sh`: shells ignore or trap
some signals themselves, which would hide what baowrap delivered.

  probe.py signals LOG [--group]  record each forwarded signal; with --group a
                                  grandchild in the same process group records
                                  too; exit 0 at EOF on stdin
  probe.py ignore-term PIDFILE    ignore SIGTERM, write the pid, sleep
  probe.py state OUT              JSON: open fds, pgid, terminal
  probe.py foreground OUT         JSON state, then sleep with SIGINT at default
  probe.py orphans N OUT SETTLE   make N orphans that report their new parent,
                                  then count zombies left after SETTLE seconds
  probe.py segfault               read address 0
"""
import json
import os
import signal
import sys
import time

FORWARDED = ["HUP", "INT", "QUIT", "USR1", "USR2", "TERM", "WINCH", "ALRM"]


def append(path, line):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def write_json(path, value):
    """Written whole and renamed, so a reader never sees half of it."""
    with open(path + ".tmp", "w") as f:
        json.dump(value, f)
    os.rename(path + ".tmp", path)


def record_signals(log, who):
    def handler(signo, _frame):
        append(log, f"{who} {signal.Signals(signo).name[3:]}")
    for name in FORWARDED:
        signal.signal(getattr(signal, "SIG" + name), handler)
    append(log, f"{who} ready {os.getpid()} {os.getpgrp()}")


def signals(log, group):
    grandchild = os.fork() if group else None
    who = "grandchild" if grandchild == 0 else "child"
    record_signals(log, who)
    sys.stdin.buffer.read()  # PEP 475: the read resumes after each handler
    if grandchild:
        os.waitpid(grandchild, 0)


def ignore_term(pidfile):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    append(pidfile, str(os.getpid()))
    while True:
        time.sleep(3600)


def open_fds():
    fds = []
    for fd in range(1024):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            pass
    return fds


def state():
    """Not the signal masks: Python itself ignores SIGPIPE and SIGXFSZ at
    start-up, so those are read by a C program (grep) instead."""
    try:
        foreground = os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        foreground = None  # no terminal on stdin
    return {"pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgrp(),
            "fds": open_fds(), "foreground": foreground}


def wait_until(predicate, limit):
    end = time.monotonic() + limit
    while not predicate() and time.monotonic() < end:
        time.sleep(0.02)
    return predicate()


def zombies_of(parent):
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == parent:
            count += 1
    return count


def orphans(n, out, settle):
    """Each intermediate child exits at once, so its child is re-parented to
    the nearest subreaper (baowrap) or PID 1; the orphan then records its
    new parent and exits, leaving a zombie only that parent can reap."""
    reports = out + ".ppids"
    for _ in range(n):
        if os.fork() == 0:
            intermediate = os.getpid()
            if os.fork() == 0:
                wait_until(lambda: os.getppid() != intermediate, 30)
                append(reports, str(os.getppid()))
                os._exit(0)
            os._exit(0)
    for _ in range(n):
        os.wait()

    def reported():
        try:
            with open(reports) as f:
                return f.read().split()
        except FileNotFoundError:
            return []
    wait_until(lambda: len(reported()) == n, 30)
    supervisor = os.getppid()
    wait_until(lambda: zombies_of(supervisor) == 0, settle)
    write_json(out, {"supervisor": supervisor, "ppids": reported(), "zombies": zombies_of(supervisor)})


def main(argv):
    cmd = argv[1]
    if cmd == "signals":
        signals(argv[2], "--group" in argv[3:])
    elif cmd == "ignore-term":
        ignore_term(argv[2])
    elif cmd == "state":
        write_json(argv[2], state())
    elif cmd == "foreground":
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        write_json(argv[2], state())
        while True:
            time.sleep(3600)
    elif cmd == "orphans":
        orphans(int(argv[2]), argv[3], float(argv[4]))
    elif cmd == "segfault":
        import ctypes
        ctypes.string_at(0)
    else:
        sys.exit(f"unknown probe command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
