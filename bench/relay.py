"""A bare asyncio byte relay: the ceiling for any Python hop between client and backend.

It copies bytes both ways with no protocol logic at all, using the same primitives as
the proxy (asyncio streams, 64 KiB reads, drain after every write), so that the proxy's
cost can be split into "being a Python hop" and "being a MySQL proxy". It runs under
uvloop when that is installed (``--loop auto``, the default): the issue defines the
ceiling as a uvloop relay.

Run it as ``python -m bench.relay --listen 127.0.0.1:0 --backend HOST:PORT``; it logs
``relay listening on HOST:PORT`` on stderr once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence

log = logging.getLogger("bench.relay")

CHUNK = 1 << 16
LIMIT = 1 << 18  # the buffer the proxy reads into (256 KiB), for equal buffering


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF or an error, then close the writing side."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _serve_one(
    backend: tuple[str, int], client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
) -> None:
    try:
        backend_r, backend_w = await asyncio.open_connection(*backend, limit=LIMIT)
    except OSError as exc:
        log.warning("cannot reach the backend: %s", exc)
        client_w.close()
        return
    await asyncio.gather(_pipe(client_r, backend_w), _pipe(backend_r, client_w))


async def serve(listen: tuple[str, int], backend: tuple[str, int]) -> None:
    """Relay every accepted connection to ``backend`` until SIGTERM/SIGINT."""
    server = await asyncio.start_server(
        lambda r, w: _serve_one(backend, r, w), *listen, limit=LIMIT, backlog=1024
    )
    host, port = server.sockets[0].getsockname()[:2]
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    log.info("relay listening on %s:%d, backend %s:%d (%s)", host, port, *backend, loop_name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop for ``uvloop`` (and for ``auto`` when it is installed), else None
    (asyncio's own). Deliberately not proxy.transport.event_loop: the relay imports nothing of the
    proxy's."""
    if name not in ("auto", "asyncio", "uvloop"):
        raise SystemExit(f"--loop must be auto, asyncio or uvloop, not {name!r}")
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise SystemExit("--loop uvloop: uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    parser.add_argument("--backend", required=True, metavar="HOST:PORT")
    parser.add_argument(
        "--loop", default="auto", help="auto (uvloop if installed), asyncio, uvloop"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    factory = loop_factory(args.loop)
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(_host_port(args.listen), _host_port(args.backend)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
