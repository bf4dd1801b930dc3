"""A minimal SMTP sink for throughput tests: accepts every message as fast as it can and discards it.

aiosmtpd manages about 100 messages/s here; this does the least SMTP a client needs (EHLO, MAIL,
RCPT, DATA, RSET, NOOP, QUIT; pipelined commands too) as a bare asyncio protocol, and counts
messages per recipient so a benchmark can check that each one arrived exactly once.

Run it in its own process with :func:`start_sink`; ``stats()`` returns the counts so far.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import socket
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection

EHLO_REPLY = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 16777216\r\n"


@dataclass(frozen=True)
class SinkStats:
    """What the sink has accepted so far."""

    messages: int
    octets: int
    recipients: int
    duplicates: int  # recipients that got more than one message
    connections: int
    cpu_seconds: float  # since the last reset


class _Sink:
    """Counters shared by every connection."""

    def __init__(self) -> None:
        self.messages = 0
        self.octets = 0
        self.connections = 0
        self.per_recipient: Counter[bytes] = Counter()
        self.cpu_at_start = _cpu_seconds()

    def stats(self) -> SinkStats:
        return SinkStats(
            messages=self.messages,
            octets=self.octets,
            recipients=len(self.per_recipient),
            duplicates=sum(1 for n in self.per_recipient.values() if n > 1),
            connections=self.connections,
            cpu_seconds=_cpu_seconds() - self.cpu_at_start,
        )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Session(asyncio.Protocol):
    """One SMTP connection as a plain protocol: a buffer and a flag, no streams or tasks."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.buffer = bytearray()
        self.in_data = False
        self.recipient = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.sink.connections += 1
        self.transport.write(b"220 sink ESMTP ready\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies = []
        while True:
            if self.in_data:
                # Search only the new bytes (and the four before them) for the end of the message.
                end = self.buffer.find(b"\r\n.\r\n", max(0, len(self.buffer) - len(data) - 4))
                if end < 0:
                    break
                self.sink.messages += 1
                self.sink.octets += end + 2
                self.sink.per_recipient[self.recipient] += 1
                del self.buffer[: end + 5]
                self.in_data = False
                replies.append(b"250 2.0.0 discarded\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            replies.append(self._command(line))
        if replies:
            assert self.transport is not None
            self.transport.write(b"".join(replies))

    def _command(self, line: bytes) -> bytes:
        verb = line[:4].upper()
        if verb == b"EHLO":
            return EHLO_REPLY
        if verb == b"RCPT":
            self.recipient = line[line.find(b"<") + 1 : line.rfind(b">")]
            return b"250 2.1.5 ok\r\n"
        if verb == b"DATA":
            self.in_data = True
            return b"354 go ahead\r\n"
        if verb == b"QUIT":
            assert self.transport is not None
            self.transport.close()
            return b"221 bye\r\n"
        return b"250 ok\r\n"  # HELO, MAIL, RSET, NOOP


def _serve(port: int, control: Connection) -> None:
    async def main() -> None:
        sink = _Sink()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Session(sink), "127.0.0.1", port)
        stopped = asyncio.Event()

        def on_command() -> None:
            command = control.recv()
            if command == "stats":
                control.send(sink.stats())
            elif command == "reset":
                sink.__init__()
                control.send("ok")
            else:
                stopped.set()

        loop.add_reader(control.fileno(), on_command)
        control.send("ready")
        async with server:
            await stopped.wait()

    asyncio.run(main())


class SinkProcess:
    """The sink running in a child process."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        context = multiprocessing.get_context("spawn")
        self._control, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(self.port, child_end), daemon=True)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SinkProcess:
        self._process.start()
        if self._control.recv() != "ready":
            raise RuntimeError("the SMTP sink did not start")
        return self

    def stats(self) -> SinkStats:
        self._control.send("stats")
        return self._control.recv()

    def reset(self) -> None:
        self._control.send("reset")
        self._control.recv()

    def stop(self) -> None:
        if self._process.is_alive():
            self._control.send("stop")
            self._process.join(10)


def start_sink() -> SinkProcess:
    """Start a sink in a child process; remember to ``stop()`` it."""
    return SinkProcess().start()
