#!/usr/bin/env python3
"""Runs a command on a new pseudo-terminal and answers its prompts like a
person at a console: at "Password:" or "SMS code:" it types what ASKPASS
(tests/container/askpass.sh, configured by the same SMSOTP_* environment as
for ssh) prints for that prompt. Prints everything the terminal showed, then
exits with the command's exit status.
    pty-answer.py ASKPASS -- COMMAND...
"""
import os, pty, subprocess, sys, time

def main():
    askpass = sys.argv[1]
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
        if pending.rstrip().endswith((b"Password:", b"SMS code:")):
            prompt = pending.decode(errors="replace").replace("\r", "").split("\n")[-1]
            pending = b""
            answer = subprocess.run([askpass, prompt], stdout=subprocess.PIPE, check=True).stdout
            os.write(fd, answer)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(shown.decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status))

main()
