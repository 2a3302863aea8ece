#!/usr/bin/env python3
"""monitor-dump.py: prints the state of a QEMU through its human monitor socket.

usage: monitor-dump.py SOCKET [COMMAND]...
Sends each monitor COMMAND (default: info status, info registers, info lapic, info pic)
and prints the answers. with-kvm calls it on the outer QEMU when the L1 times out, so a
hang leaves evidence (is the vCPU halted with an interrupt pending in the local APIC?).
"""
import re
import socket
import sys
import time

DEFAULT = ["info status", "info registers", "info lapic", "info pic"]


def read_until_prompt(sock, deadline):
    data = b""
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        data += chunk
        if data.rstrip().endswith(b"(qemu)"):
            break
    return data.decode(errors="replace")


def clean(text):
    # The monitor echoes each typed character with cursor movement escapes.
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    return "\n".join(line for line in text.splitlines() if not line.startswith("(qemu)"))


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(0.5)
    sock.connect(sys.argv[1])
    read_until_prompt(sock, time.time() + 5)
    for cmd in sys.argv[2:] or DEFAULT:
        sock.sendall((cmd + "\n").encode())
        print("=== " + cmd)
        answer = clean(read_until_prompt(sock, time.time() + 10)).strip().splitlines()
        print("\n".join(answer[1:]))  # answer[0] is the echo of the command
    return 0


if __name__ == "__main__":
    sys.exit(main())
