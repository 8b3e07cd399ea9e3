#!/usr/bin/env python3
"""A TCP forwarder on 127.0.0.1 for tests: `tcp-proxy.py TARGET_PORT`.

Listens on a port of its own choosing and prints "ready PORT" once it does. SIGUSR1 makes the
endpoint unreachable, as if the AWS emulator had gone away (new connections are refused), while
the emulator itself keeps its state; SIGUSR2 brings it back on the same port. Each change is
confirmed with a line, "down" or "up". The port stays bound all along (by a socket that does not
listen while the endpoint is down), so nothing else can take it in between: no port is ever
freed and reused.
"""
import asyncio
import signal
import socket
import sys


def bound(port, listen):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    if listen:
        s.listen(128)
    return s


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(target_port):
    async def handle(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    listener = bound(0, True)
    port = listener.getsockname()[1]
    state = {"server": await asyncio.start_server(handle, sock=listener), "placeholder": None}
    changes = asyncio.Queue()

    async def apply():
        while True:
            wanted = await changes.get()
            if wanted == "down" and state["server"] is not None:
                # Bound before the listener closes: the port is never free.
                state["placeholder"] = bound(port, False)
                state["server"].close()
                await state["server"].wait_closed()
                state["server"] = None
            elif wanted == "up" and state["server"] is None:
                state["server"] = await asyncio.start_server(handle, sock=bound(port, True))
                state["placeholder"].close()
                state["placeholder"] = None
            print(wanted, flush=True)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, changes.put_nowait, "down")
    loop.add_signal_handler(signal.SIGUSR2, changes.put_nowait, "up")
    # A test process may start children with these blocked (its signal watcher blocks them).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1, signal.SIGUSR2})
    print("ready %d" % port, flush=True)
    await apply()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
