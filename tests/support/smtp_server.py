"""A real SMTP server (aiosmtpd) whose replies a test scripts, recording everything it accepts.

Replies are scripted per recipient, in order, or for whoever comes next. A script step is
``"<stage>:<action>"``: the stage is ``rcpt`` or ``data``; the action is a reply code with optional
text (``"rcpt:550"``, ``"data:451 try later"``), ``"data:delay:<seconds>"`` (then accept), or
``"data:drop"`` (close the connection after the message, without a reply). Unscripted steps accept.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from aiosmtpd.controller import Controller

from tests.conftest import free_port

DEFAULT_TEXT = {
    250: "2.0.0 OK",
    421: "4.3.2 service shutting down",
    451: "4.3.0 try again later",
    550: "5.1.1 no such user here",
    552: "4.5.3 too many recipients",
    554: "5.7.1 message rejected",
}


@dataclass(frozen=True)
class Captured:
    """One message the server accepted (answered 250 to)."""

    sender: str
    recipient: str
    data: bytes
    at: float  # time.monotonic() when accepted
    connection: int


@dataclass(frozen=True)
class Step:
    stage: str
    action: str

    @classmethod
    def parse(cls, text: str) -> Step:
        stage, _, action = text.partition(":")
        if stage not in ("rcpt", "data") or not action:
            raise ValueError(f"bad script step {text!r}")
        return cls(stage, action)


class _Handler:
    def __init__(self, server: ScriptedSMTPServer) -> None:
        self.server = server

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not hasattr(session, "connection_number"):
            session.connection_number = self.server._new_connection()
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.server._count(address, "rcpt")
        step = self.server._next_step(address, "rcpt")
        if step is not None:
            return await self.server._perform(step, server)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        recipient = envelope.rcpt_tos[0]
        self.server._count(recipient, "data")
        step = self.server._next_step(recipient, "data")
        if step is not None:
            reply = await self.server._perform(step, server)
            if reply is None or not reply.startswith("250"):
                return reply or "421 closing"
        self.server._accept(
            envelope.mail_from,
            recipient,
            envelope.original_content or b"",
            getattr(session, "connection_number", 0),
        )
        return "250 2.0.0 queued"


class ScriptedSMTPServer:
    """Start with :meth:`start`; read :attr:`messages`; script with :meth:`script`."""

    def __init__(self) -> None:
        self.messages: list[Captured] = []
        self.transactions: dict[str, dict[str, int]] = defaultdict(lambda: {"rcpt": 0, "data": 0})
        self.connections = 0
        self._per_recipient: dict[str, deque[Step]] = defaultdict(deque)
        self._anyone: deque[Step] = deque()
        self._lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, decode_data=False, enable_SMTPUTF8=True
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> ScriptedSMTPServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def script(self, recipient: str | None, *steps: str) -> None:
        """Queue replies for one recipient, or (``None``) for whichever transactions come next."""
        queue = self._anyone if recipient is None else self._per_recipient[recipient]
        with self._lock:
            queue.extend(Step.parse(step) for step in steps)

    def received_by(self, recipient: str) -> list[Captured]:
        with self._lock:
            return [m for m in self.messages if m.recipient == recipient]

    def count_by_recipient(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        with self._lock:
            for message in self.messages:
                counts[message.recipient] += 1
        return dict(counts)

    # -- called from the server thread ------------------------------------------------------------

    def _new_connection(self) -> int:
        with self._lock:
            self.connections += 1
            return self.connections

    def _count(self, recipient: str, stage: str) -> None:
        with self._lock:
            self.transactions[recipient][stage] += 1

    def _next_step(self, recipient: str, stage: str) -> Step | None:
        with self._lock:
            for queue in (self._per_recipient.get(recipient), self._anyone):
                if queue and queue[0].stage == stage:
                    return queue.popleft()
        return None

    async def _perform(self, step: Step, server) -> str | None:
        action = step.action
        if action.startswith("delay:"):
            await asyncio.sleep(float(action.removeprefix("delay:")))
            return "250 2.0.0 late but fine"
        if action == "drop":
            server.transport.abort()
            return None
        code, _, text = action.partition(" ")
        return f"{code} {text or DEFAULT_TEXT.get(int(code), 'scripted')}"

    def _accept(self, sender: str, recipient: str, data: bytes, connection: int) -> None:
        with self._lock:
            self.messages.append(Captured(sender, recipient, data, time.monotonic(), connection))
