"""The aws CLI, already loaded, for the tests: runs each call in a process forked from this one.

Every aws CLI v1 call spends about 1 s of CPU importing botocore and awscli and parsing the
service's model before it sends anything; the test suite makes thousands of them on 2 cores.
What a new session still repeats after a fork is kept here too: the endpoint rules and partitions
a client reads (as large as a model), the walk of the data folders listing the services, and the
event aliases and handler signatures of every registration. Measured per call, in the forked
process: 25-45 ms of CPU, against 220-240 ms with the models alone kept.
It serves the aws CLI v2 of Debian's awscli package too (a Python program as well; make test
starts a second server for it), and only the aws it was started for (RUNBOOK_REAL_AWS): a call
for another one is refused (exit 127), never run by the wrong CLI.
This server does that work once, then forks for each call. The call runs the aws CLI's own
entry point (awscli.clidriver.main) with the caller's argv, environment, working directory and
standard input, output and error (passed over the socket as file descriptors), so the aws CLI
behaves as when started afresh. Only the test shim (Tests/Fixtures/bin/aws) talks to it, and only
when RUNBOOK_AWS_FORK_SOCKET names its socket; `make bench` never uses it.

    python aws-forkserver.py SOCKET PIDFILE

Run it with the interpreter of the real aws (its #! line). Protocol, per connection:
  caller -> server: 4-byte big-endian length, then that many bytes of JSON
      {"argv": [...], "env": {...}, "cwd": "..."}, sent with 3 file descriptors (stdin, stdout,
      stderr: SCM_RIGHTS) on the first bytes;
  caller -> server, any time after: b"K" + one byte signal number: pass that signal on to the call;
  server -> caller: b"X" + 4-byte big-endian exit status (128 + N when killed by signal N).
A caller that goes away (its connection closes) before the call ends takes the call with it
(SIGKILL), as a killed aws process would.
"""

import io
import json
import os
import signal
import socket
import struct
import sys

# Services the runbook calls: one of their operations is parsed at start-up, so their models and
# the modules the aws CLI imports lazily are loaded before the first fork.
WARM = [
    ("sts", "get-caller-identity"), ("ec2", "describe-vpcs"), ("ecs", "list-clusters"),
    ("rds", "describe-db-instances"), ("elbv2", "describe-load-balancers"), ("iam", "list-roles"),
    ("lambda", "list-functions"), ("sqs", "list-queues"), ("logs", "describe-log-groups"),
    ("secretsmanager", "list-secrets"), ("ecr", "describe-repositories"),
    ("resourcegroupstaggingapi", "get-resources"), ("s3api", "list-buckets"),
]


def warm_up():
    """Imports the aws CLI and keeps the JSON files it parses for the calls' forks."""
    import awscli.clidriver
    import botocore.loaders

    parse = botocore.loaders.JSONFileLoader.load_file
    parsed = {}
    warming = [True]

    def load_file(self, file_path, *args, **kwargs):
        # A fork gets its own copy of what is kept here (copy on write): what a call changes in
        # a model it loaded stays in that call. While warming, the aws CLI works on a parse of
        # its own, so the kept one is as read from disk.
        if warming[0]:
            if file_path not in parsed:
                parsed[file_path] = parse(self, file_path, *args, **kwargs)
            return parse(self, file_path, *args, **kwargs)
        if file_path in parsed:
            return parsed[file_path]
        return parse(self, file_path, *args, **kwargs)

    botocore.loaders.JSONFileLoader.load_file = load_file

    # Which services and versions are installed: a walk of the data folders (thousands of stat
    # and listdir calls) that every new session repeats. Kept per search path, as the files are.
    listed = {}
    list_services = botocore.loaders.Loader.list_available_services

    def list_available_services(self, type_name):
        key = (tuple(self.search_paths), type_name)
        if key not in listed:
            listed[key] = list_services(self, type_name)
        return list(listed[key])

    botocore.loaders.Loader.list_available_services = list_available_services

    # Every session registers a few hundred handlers: each one's event name is translated through
    # the same aliases, and each handler's signature is read, again. Both answers depend only on
    # the name and the function: kept across sessions.
    import botocore.hooks

    aliased = {}
    aliaser = getattr(botocore.hooks, "EventAliaser", None)
    if aliaser is not None and hasattr(botocore.hooks, "EVENT_ALIASES"):
        aliaser_init = aliaser.__init__

        def init(self, *args, **kwargs):
            aliaser_init(self, *args, **kwargs)
            if self._event_aliases is botocore.hooks.EVENT_ALIASES:
                self._alias_name_cache = aliased

        aliaser.__init__ = init
    accepts = botocore.hooks.accepts_kwargs
    signatures = {}

    def accepts_kwargs(func):
        key = getattr(func, "__func__", func)
        try:
            return signatures[key]
        except KeyError:
            signatures[key] = answer = accepts(func)
            return answer
        except TypeError:  # not hashable
            return accepts(func)

    botocore.hooks.accepts_kwargs = accepts_kwargs
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        v2 = awscli.__version__.startswith("2.")
        for service, operation in WARM:
            try:
                driver = awscli.clidriver.create_clidriver()
                if v2:
                    # A v2 command starts a native thread (the CRT's), and a process forked from
                    # one with threads can hang on a lock that thread held: models alone.
                    driver.session.get_service_model("s3" if service == "s3api" else service)
                else:
                    driver.main([service, operation, "--generate-cli-skeleton"])
                    # A client too: the endpoint rules, partitions and retry settings a call
                    # reads are JSON files as large as a model (no request is sent).
                    driver.session.create_client(
                        "s3" if service == "s3api" else service, region_name="us-east-1",
                        endpoint_url="http://127.0.0.1:9")
            except BaseException:  # a service this aws CLI lacks: no harm, it loads on use
                pass
        sys.stdout.flush()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
        warming[0] = False


def receive(conn):
    """The request and its 3 descriptors."""
    header, fds, _, _ = socket.recv_fds(conn, 4, 3)
    while len(header) < 4:
        more = conn.recv(4 - len(header))
        if not more:
            raise EOFError("short header")
        header += more
    (length,) = struct.unpack(">I", header)
    body = b""
    while len(body) < length:
        more = conn.recv(length - len(body))
        if not more:
            raise EOFError("short request")
        body += more
    if len(fds) != 3:
        raise EOFError("expected 3 descriptors, got %d" % len(fds))
    return json.loads(body), fds


# The aws this server has loaded (RUNBOOK_REAL_AWS when it started): a call for another one (the
# aws CLI v2 of the matrix) is refused, never run by this one.
SERVED = os.path.realpath(os.environ["RUNBOOK_REAL_AWS"]) if os.environ.get("RUNBOOK_REAL_AWS") else ""


def run_call(request, fds):
    """In the forked process: become the caller's aws and run it. Never returns."""
    code = 255
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)  # dup2 leaves 0-2 inheritable, as in a process started afresh
        for fd in fds:
            if fd > 2:
                os.close(fd)
        if SERVED and os.path.realpath(request.get("argv0") or "") != SERVED:
            os.write(2, (
                "aws fork server: it runs %s, not %s: call that one without the server "
                "(RUNBOOK_AWS_FORK_SOCKET=)\n" % (SERVED, request.get("argv0"))).encode())
            os._exit(127)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # What the aws script does before it imports the CLI, and what importing awscli does
        # to the environment (its data folder after the caller's AWS_DATA_PATH).
        if os.environ.get("LC_CTYPE", "") == "UTF-8":
            os.environ["LC_CTYPE"] = "en_US.UTF-8"
        import awscli
        data_path = []
        if "AWS_DATA_PATH" in os.environ:
            for path in os.environ["AWS_DATA_PATH"].split(os.pathsep):
                data_path.append(os.path.expanduser(os.path.expandvars(path)))
        data_path.append(os.path.join(os.path.dirname(os.path.abspath(awscli.__file__)), "data"))
        os.environ["AWS_DATA_PATH"] = os.pathsep.join(data_path)
        # Text streams over the caller's descriptors, as Python makes them at start-up.
        sys.stdin = io.TextIOWrapper(
            io.BufferedReader(io.FileIO(0, "r", closefd=False)),
            encoding=sys.stdin.encoding, errors=sys.stdin.errors)
        sys.stdout = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
            encoding=sys.stdout.encoding, errors=sys.stdout.errors, line_buffering=os.isatty(1))
        sys.stderr = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
            encoding=sys.stderr.encoding, errors="backslashreplace", line_buffering=True)
        sys.argv = [request["argv0"]] + request["argv"]
        import awscli.clidriver
        try:
            code = awscli.clidriver.main()
        except SystemExit as exit:
            if exit.code is None:
                code = 0
            elif isinstance(exit.code, int):
                code = exit.code
            else:
                sys.stderr.write("%s\n" % exit.code)
                code = 1
        except KeyboardInterrupt:
            code = 130
    except BaseException:
        import traceback
        try:
            traceback.print_exc()
        except BaseException:
            pass
        code = 255
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(code if isinstance(code, int) and 0 <= code < 256 else 255)


def serve_connection(conn):
    """In the process forked for one connection: start the call, relay signals, report its end."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        request, fds = receive(conn)
    except (EOFError, OSError, ValueError):
        os._exit(1)
    exited_r, exited_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        conn.close()
        os.close(exited_r)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        run_call(request, fds)  # holds exited_w open until it ends
    os.close(exited_w)  # the call holds the other copy: it closes when the call ends
    for fd in fds:
        os.close(fd)
    import select
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    poller.register(exited_r, select.POLLIN)
    pending = b""
    while True:
        events = dict(poller.poll())
        if exited_r in events:
            break
        if conn.fileno() in events:
            try:
                data = conn.recv(64)
            except OSError:
                data = b""
            if not data:
                # The caller is gone: so is its call.
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                os.waitpid(pid, 0)
                os._exit(0)
            pending += data
            while len(pending) >= 2:  # b"K" + signal number, possibly split over two reads
                if pending[:1] == b"K":
                    try:
                        os.kill(pid, pending[1])
                    except OSError:
                        pass
                pending = pending[2:]
    _, status = os.waitpid(pid, 0)
    code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    try:
        conn.sendall(b"X" + struct.pack(">I", code))
    except OSError:
        pass
    os._exit(0)


def main():
    path, pidfile = sys.argv[1], sys.argv[2]
    # A server of its own: no descriptor of whoever started it (a pipe it waits on) stays open
    # here, and no signal for that session's process group reaches it.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    try:
        os.setsid()
    except OSError:  # a process group leader already
        pass
    warm_up()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    server.bind(path)
    os.umask(old)
    server.listen(128)

    def stop(signum, frame):
        try:
            os.unlink(path)
        except OSError:
            pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # connection processes reap themselves
    with open(pidfile + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.replace(pidfile + ".tmp", pidfile)
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        try:
            conn, _ = server.accept()
        except InterruptedError:
            continue
        pid = os.fork()
        if pid == 0:
            server.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            serve_connection(conn)
        conn.close()


if __name__ == "__main__":
    main()
