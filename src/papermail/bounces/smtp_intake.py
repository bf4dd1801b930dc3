"""``papermail inbound``: an SMTP server that takes bounce reports, and nothing else.

It accepts a recipient only if it is ``PAPERMAIL_BOUNCE_ADDRESS`` or a VERP form of it whose token
verifies; anything else gets 550 at RCPT, so it can never be used as a relay. One recipient per
transaction (a second gets 452, which tells the client to send it separately), so each message is
stored once with the address it came to. A message is committed to the database before the 250
is sent; the worker processing it is queued after that commit. If storing fails the client hears
451 and tries again later: a report is never acknowledged and then lost.

Limits: ``PAPERMAIL_INBOUND_MAX_BYTES`` (SIZE is advertised; a bigger message gets 552 at the end
of DATA), at most ``PAPERMAIL_INBOUND_MAX_CONNECTIONS`` open connections and
``PAPERMAIL_INBOUND_CONNECTIONS_PER_IP`` from one address (more get 421 on connect), and at most
``PAPERMAIL_INBOUND_RATE_PER_IP`` messages per address (more get 450 at MAIL: a flood is slowed
down, and a real relay simply retries). The counts live in this process: run one inbound server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from papermail.bounces.store import Received, store_and_commit
from papermail.config import Rate, Settings
from papermail.sending.verp import accepts_recipient

log = logging.getLogger(__name__)

IDENT = "papermail inbound"
# Idle clients are dropped after this long, so slow connections can't hold every slot.
IDLE_TIMEOUT_SECONDS = 60
REFUSED_RECIPIENT = "550 5.1.1 no such mailbox here: this server only takes bounces for papermail"
ONE_RECIPIENT = "452 4.5.3 one recipient per message: send the others separately"
STORE_FAILED = "451 4.3.0 could not store the message: try again later"
FORGET_IPS_ABOVE = 10_000  # addresses remembered for the rate limit before quiet ones are dropped
MAX_GROUP = 200  # messages per transaction at most


class IntakeLimits:
    """Open connections (in total and per IP) and recent messages per IP, for one server process."""

    def __init__(
        self,
        max_connections: int,
        connections_per_ip: int,
        rate_per_ip: Rate,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_connections, self.connections_per_ip = max_connections, connections_per_ip
        self.rate_per_ip, self.clock = rate_per_ip, clock
        self.open_by_ip: dict[str, int] = defaultdict(int)
        self.recent: dict[str, deque[float]] = defaultdict(deque)
        self.refused_connections = 0
        self._lock = threading.Lock()

    def open(self, ip: str) -> str | None:
        """Count a new connection from ``ip``; the reason to refuse it, if it is one too many."""
        with self._lock:
            if sum(self.open_by_ip.values()) >= self.max_connections:
                reason = "too many connections"
            elif self.open_by_ip[ip] >= self.connections_per_ip:
                reason = "too many connections from your address"
            else:
                self.open_by_ip[ip] += 1
                return None
            self.refused_connections += 1
            return reason

    def close(self, ip: str) -> None:
        with self._lock:
            self.open_by_ip[ip] -= 1
            if self.open_by_ip[ip] <= 0:
                del self.open_by_ip[ip]

    def allow_message(self, ip: str) -> bool:
        """Count a message from ``ip`` unless it already sent its share within the window."""
        now = self.clock()
        window = self.rate_per_ip.window.total_seconds()
        with self._lock:
            if len(self.recent) > FORGET_IPS_ABOVE:  # a flood from many addresses must not grow forever
                self._forget_quiet(now - window)
            recent = self.recent[ip]
            while recent and recent[0] <= now - window:
                recent.popleft()
            if len(recent) >= self.rate_per_ip.count:
                return False
            recent.append(now)
            return True

    def _forget_quiet(self, since: float) -> None:
        for ip in [ip for ip, recent in self.recent.items() if not recent or recent[-1] <= since]:
            del self.recent[ip]


Waiter = Future[int] | asyncio.Future[int]  # holds a message's id once committed, or why it failed


class GroupStore:
    """One writer thread storing every message waiting at that moment in one transaction.

    A commit is the expensive part (and SQLite has one writer at a time), so concurrent clients
    share one: each still hears 250 only after the commit that holds its message. If a group's
    commit fails, its messages are retried one by one, so one bad message can't fail the others.
    """

    def __init__(self, settings: Settings, max_group: int = MAX_GROUP) -> None:
        self.settings, self.max_group = settings, max_group
        self.waiting: queue.SimpleQueue[tuple[Received, Waiter] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="inbound-store", daemon=True)
        self.thread.start()

    def submit(self, message: Received) -> Future[int]:
        """Queue a message from any thread; the future gets its id once it is committed."""
        future: Future[int] = Future()
        self.waiting.put((message, future))
        return future

    async def stored(self, message: Received) -> int:
        """Queue a message from an event loop and wait until it is committed: its id."""
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting.put((message, waiter))
        return await waiter

    def close(self) -> None:
        """Store what is waiting, then stop the writer thread."""
        self.waiting.put(None)
        self.thread.join()

    def _run(self) -> None:
        while (first := self.waiting.get()) is not None:
            group = [first]
            while len(group) < self.max_group:
                try:
                    item = self.waiting.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.waiting.put(None)  # stop after this group
                    break
                group.append(item)
            outcomes = self._store([message for message, _ in group])
            _settle([(waiter, outcome) for (_, waiter), outcome in zip(group, outcomes, strict=True)])

    def _store(self, messages: list[Received]) -> list[int | Exception]:
        try:
            return list(store_and_commit(self.settings, messages, via="smtp"))
        except Exception as exc:
            if len(messages) == 1:
                return [exc]
            return [outcome for message in messages for outcome in self._store([message])]


def _settle(outcomes: list[tuple[Waiter, int | Exception]]) -> None:
    """Hand each waiter its outcome; those of one event loop in one call (one wake-up, not one each)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Waiter, int | Exception]]] = defaultdict(list)
    for waiter, outcome in outcomes:
        if isinstance(waiter, asyncio.Future):
            by_loop[waiter.get_loop()].append((waiter, outcome))
        else:
            _set_outcome(waiter, outcome)
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: stored, and nobody is waiting
            loop.call_soon_threadsafe(_set_outcomes, settled)


def _set_outcomes(outcomes: list[tuple[Waiter, int | Exception]]) -> None:
    for waiter, outcome in outcomes:
        if not waiter.done():  # a client that went away cancelled its wait
            _set_outcome(waiter, outcome)


def _set_outcome(waiter: Waiter, outcome: int | Exception) -> None:
    if isinstance(outcome, Exception):
        waiter.set_exception(outcome)
    else:
        waiter.set_result(outcome)


class BounceHandler:
    """aiosmtpd hooks: who may send to whom, and storing what arrives."""

    def __init__(self, settings: Settings, limits: IntakeLimits) -> None:
        self.settings, self.limits = settings, limits
        self.store = GroupStore(settings)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address, options):
        if not self.limits.allow_message(_peer_ip(session.peer)):
            return "450 4.7.1 too many messages from your address: try again later"
        envelope.mail_from, envelope.mail_options = address, list(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address, options):
        if envelope.rcpt_tos:
            return ONE_RECIPIENT
        if not accepts_recipient(self.settings, address):
            return REFUSED_RECIPIENT
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        sender = (envelope.mail_from or "").strip("<>") or None
        try:
            message_id = await self.store.stored(Received(raw, sender, envelope.rcpt_tos[0]))
        except Exception:
            log.exception(
                "inbound: could not store a %d-byte message from %s", len(raw), _peer_ip(session.peer)
            )
            return STORE_FAILED
        return f"250 2.0.0 stored as inbound message {message_id}"


def _peer_ip(peer: object) -> str:
    """The address in a connection's peer name (aiosmtpd's ``session.peer``, the transport's ``peername``)."""
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


class _LimitedSMTP(SMTP):
    """aiosmtpd's SMTP, refusing a connection over the limits with 421 before the greeting."""

    def __init__(self, handler: BounceHandler, **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self.limits = handler.limits
        self.counted_ip: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ip = _peer_ip(transport.get_extra_info("peername"))
        refusal = self.limits.open(ip)
        if refusal is not None:
            transport.write(f"421 4.7.0 {refusal}: try again later\r\n".encode())  # type: ignore[attr-defined]
            transport.close()
            return
        self.counted_ip = ip
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self.counted_ip is None:  # refused: aiosmtpd never set this connection up
            return
        self.limits.close(self.counted_ip)
        self.counted_ip = None
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        return super().eof_received() if self.counted_ip is not None else False


class InboundServer(Controller):
    """The inbound server on its own thread and event loop: ``start()``, then ``stop()``."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.settings = settings
        self.limits = IntakeLimits(
            settings.inbound_max_connections,
            settings.inbound_connections_per_ip,
            settings.inbound_rate_per_ip,
        )
        super().__init__(
            BounceHandler(settings, self.limits),
            hostname=host,
            port=port,
            ready_timeout=10,
            data_size_limit=settings.inbound_max_bytes,
            ident=IDENT,
            timeout=IDLE_TIMEOUT_SECONDS,
        )

    def factory(self) -> SMTP:
        return _LimitedSMTP(self.handler, **self.SMTP_kwargs)

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert)
        self.handler.store.close()  # a store under way finishes (its client may have gone)
