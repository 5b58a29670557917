#!/usr/bin/env python3
"""Runs a command on a new pseudo-terminal and answers its prompts like a
person at a console: "Password:" with PASSWORD, "SMS code:" with the code of
SMS number SEEN+1 in SMS_LOG. Prints everything the terminal showed, then
exits with the command's exit status.
    pty-answer.py SMS_LOG SEEN PASSWORD -- COMMAND...
"""
import os, pty, re, sys, time

def main():
    sms_log, seen, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    shown, pending = b"", b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        shown += data
        pending += data
        if pending.rstrip().endswith(b"Password:"):
            pending = b""
            os.write(fd, password.encode() + b"\n")
        elif pending.rstrip().endswith(b"SMS code:"):
            pending = b""
            os.write(fd, wait_code(sms_log, seen + 1).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(shown.decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status))

def wait_code(path, n):
    for _ in range(200):
        try:
            lines = open(path).read().splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= n:
            return re.search(r"\d{6,}", lines[n - 1].split("\t", 1)[1]).group(0)
        time.sleep(0.1)
    raise SystemExit(f"pty-answer: no SMS number {n} in {path}")

main()
