#!/usr/bin/env python3
"""Runs a program on a pseudo-terminal and plays the operator: waits for text, types, presses
Ctrl-C or Ctrl-D, closes the terminal. Prints one JSON object when the program has ended.

    drive.py [--cols N] [--rows N] [--timeout SECONDS] [--env NAME=VALUE]... --script JSON
             -- PROGRAM [ARGS...]

The program runs in a new session whose controlling terminal is the pty (as in a terminal
window): keys written to the master go through the line discipline, so "\\x03" makes the kernel
send SIGINT to the foreground process group and "\\x04" is end-of-file at the start of a line.

The program gets this process's environment with each --env laid over it: pass PATH that way
(a python3 started through a version manager's shim finds itself first on a PATH of its own).

The script is a JSON list of steps, played in order:
    {"expect": REGEX}         wait until REGEX matches the output after the previous match
    {"text": TEXT}            the same for literal text
    {"send": TEXT}            write TEXT to the terminal ("y\\r", "\\x03" Ctrl-C, "\\x04" Ctrl-D)
    {"sleep": SECONDS}
    {"file": PATH}            wait until PATH exists
    {"hangup": true}          close the terminal (the kernel sends SIGHUP to the session leader)
Each step may carry "timeout" (seconds, default 60). Matching ignores escape sequences. The first
step that fails ends the script; the program is then waited for up to --timeout seconds after its
last step (default 120) and killed (SIGKILL, "killed": true) if it is still running.

Output:
    {"transcript": everything the program wrote (escape sequences kept),
     "lines": the lines as a terminal shows them at the end (carriage returns, line clears and
              backspaces applied, other escape sequences removed),
     "exit": exit status or null, "signal": the signal that ended it or null, "killed": bool,
     "failed": null or {"step": index, "reason": text},
     "termios": {"echo": bool, "icanon": bool, "isig": bool} of the terminal once the program
                ended (null after a hangup),
     "elapsed": seconds from start to the end of the program,
     "times": seconds from start at which each step was done}

Standard library only (pty handling by hand: os.openpty, fork, setsid, TIOCSCTTY).
"""
import argparse
import fcntl
import json
import os
import re
import select
import signal
import struct
import sys
import termios
import time

ESCAPE = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def strip(data):
    return ESCAPE.sub(b"", data)


def render(data):
    """The lines a terminal would show: \\r returns to column 0, ESC[2K / ESC[K clear, \\b backs up."""
    lines, line, col = [], [], 0
    i = 0
    while i < len(data):
        match = ESCAPE.match(data, i)
        if match:
            seq = match.group(0)
            if seq == b"\x1b[2K":
                line = [" "] * col
            elif seq in (b"\x1b[K", b"\x1b[0K"):
                del line[col:]
            i = match.end()
            continue
        ch = data[i:i + 1]
        i += 1
        if ch == b"\n":
            lines.append("".join(line).rstrip())
            line, col = [], 0
        elif ch == b"\r":
            col = 0
        elif ch == b"\b":
            col = max(0, col - 1)
        else:
            # Decode a whole UTF-8 character.
            start = i - 1
            lead = data[start]
            size = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4
            text = data[start:start + size].decode("utf-8", "replace")
            i = start + size
            if col < len(line):
                line[col] = text
            else:
                line.extend([" "] * (col - len(line)))
                line.append(text)
            col += 1
    if line:
        lines.append("".join(line).rstrip())
    return lines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cols", type=int, default=160)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--script", required=True)
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("program", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    program = options.program[1:] if options.program[:1] == ["--"] else options.program
    script = json.loads(options.script)
    environment = dict(os.environ)
    for assignment in options.env:
        name, _, value = assignment.partition("=")
        environment[name] = value

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", options.rows, options.cols, 0, 0))
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            os.close(master)
            if slave > 2:
                os.close(slave)
            # Python ignores SIGPIPE and SIGXFSZ; a terminal's program starts with defaults.
            for number in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGHUP):
                signal.signal(number, signal.SIG_DFL)
            os.execvpe(program[0], program, environment)
        except BaseException as error:  # noqa: BLE001 - report anything, then leave
            os.write(2, ("drive.py: cannot start %s: %s\n" % (program[:1], error)).encode())
        os._exit(127)

    output = bytearray()
    state = {"status": None, "master_open": True}

    def reap(block=False):
        if state["status"] is not None:
            return True
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if done:
            state["status"] = status
            state["ended"] = time.monotonic() - started
            return True
        return False

    def pump(seconds):
        """Reads what the program writes for up to `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if not state["master_open"] or left <= 0:
                if not state["master_open"] and left > 0:
                    time.sleep(min(left, 0.05))
                return
            ready, _, _ = select.select([master], [], [], min(left, 0.05))
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    time.sleep(0.02)
                    if reap():
                        return
                    continue
                output.extend(data)

    failed = None
    times = []
    position = 0
    for index, step in enumerate(script):
        timeout = float(step.get("timeout", 60))
        deadline = time.monotonic() + timeout
        if "expect" in step or "text" in step:
            pattern = re.compile(step["expect"].encode() if "expect" in step
                                 else re.escape(step["text"].encode()))
            while True:
                match = pattern.search(strip(bytes(output)), position)
                if match:
                    position = match.end()
                    break
                if reap():
                    pump(0.3)
                    match = pattern.search(strip(bytes(output)), position)
                    if match:
                        position = match.end()
                        break
                    failed = {"step": index, "reason": "the program ended before %r" % step}
                    break
                if time.monotonic() > deadline:
                    failed = {"step": index, "reason": "not seen within %ss: %r" % (timeout, step)}
                    break
                pump(0.1)
        elif "send" in step:
            os.write(master, step["send"].encode())
        elif "sleep" in step:
            pump(float(step["sleep"]))
        elif "file" in step:
            while not os.path.exists(step["file"]):
                if reap():
                    failed = {"step": index, "reason": "the program ended before %r" % step}
                    break
                if time.monotonic() > deadline:
                    failed = {"step": index, "reason": "not seen within %ss: %r" % (timeout, step)}
                    break
                pump(0.1)
        elif step.get("hangup"):
            pump(0.05)
            os.close(master)
            state["master_open"] = False
        else:
            failed = {"step": index, "reason": "unknown step %r" % step}
        if failed:
            break
        times.append(round(time.monotonic() - started, 3))

    killed = False
    deadline = time.monotonic() + options.timeout
    while not reap():
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            killed = True
            reap(block=True)
            break
        pump(0.1)
    pump(0.3)  # what it wrote last

    modes = None
    try:
        attributes = termios.tcgetattr(slave)
        lflag = attributes[3]
        modes = {"echo": bool(lflag & termios.ECHO), "icanon": bool(lflag & termios.ICANON),
                 "isig": bool(lflag & termios.ISIG)}
    except termios.error:
        pass

    status = state["status"]
    result = {
        "transcript": bytes(output).decode("utf-8", "replace"),
        "lines": render(bytes(output)),
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "killed": killed,
        "failed": failed,
        "termios": modes,
        "elapsed": round(state.get("ended", time.monotonic() - started), 3),
        "times": times,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
