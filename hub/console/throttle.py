"""Failed sign-ins counted per client address, so that guesses spread over accounts are slowed.

:class:`hub.console.users.UserStore` locks an account after :data:`~hub.console.users.MAX_FAILURES`
wrong passwords in a row. That stops guessing one account's password, not spraying one likely
password over every account (OWASP's "password spraying"): each account then sees one failure
and is never locked. So the console also counts failures per client address: after
:data:`MAX_ADDRESS_FAILURES` within :data:`WINDOW`, that address's sign-ins are refused without
looking at the password (no argon2 work) until its oldest failure leaves the window.

Each sign-in first takes one of its address's slots (:meth:`AddressFailures.attempt`), in the
same locked step that checks the count: attempts still being checked count as failures until
they are settled, so a burst of simultaneous sign-ins cannot all pass the check before the first
failure is counted (70 at once had 68 passwords checked against a limit of 30).

A success does not wipe the address's failures: one account an attacker holds would otherwise
reset the count between guesses at the others. The console runs behind no proxy header handling
(``proxy_headers=False``): the address is the TCP peer's; behind a reverse proxy every user
shares the proxy's, and the limit becomes one for the whole console — slower for everyone under
attack, never weaker. State is in memory, per process, bounded to :data:`MAX_ADDRESSES`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta

MAX_ADDRESS_FAILURES = 30
"""Failed sign-ins one client address may make within :data:`WINDOW`."""
WINDOW = timedelta(minutes=15)
MAX_ADDRESSES = 10_000
"""Addresses remembered at once; the least recently failing ones are forgotten first."""


class AddressFailures:
    """Failed sign-ins per client address within a sliding window (thread-safe)."""

    def __init__(self, limit: int = MAX_ADDRESS_FAILURES, window: timedelta = WINDOW,
                 max_addresses: int = MAX_ADDRESSES) -> None:
        if limit < 1 or window <= timedelta(0) or max_addresses < 1:
            raise ValueError("a failure limit, window and address count must be positive")
        self.limit, self.window, self.max_addresses = limit, window, max_addresses
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._pending: dict[str, int] = {}
        """Attempts per address whose password is being checked (taken, not yet settled)."""
        self._lock = threading.Lock()

    def blocked_until(self, address: str, now: datetime) -> datetime | None:
        """When ``address`` may try again, or None when it may now."""
        with self._lock:
            return self._blocked(address, now)

    def attempt(self, address: str, now: datetime) -> datetime | None:
        """Take a slot for one sign-in from ``address``: None when it may go on (then
        :meth:`settle` it, whatever happens), else when it may try again (no slot taken).
        Counts the failures in the window and the attempts still being checked, in one step."""
        with self._lock:
            until = self._blocked(address, now)
            if until is None:
                self._pending[address] = self._pending.get(address, 0) + 1
            return until

    def settle(self, address: str, now: datetime, *, failed: bool) -> None:
        """Give back the slot :meth:`attempt` took, counting a failure when it failed."""
        with self._lock:
            left = self._pending.get(address, 0) - 1
            if left > 0:
                self._pending[address] = left
            else:
                self._pending.pop(address, None)
            if failed:
                self._count(address, now)

    def failed(self, address: str, now: datetime) -> None:
        """Count one failed sign-in from ``address`` at ``now``."""
        with self._lock:
            self._count(address, now)

    def _blocked(self, address: str, now: datetime) -> datetime | None:
        times = self._recent(address, now)
        taken = len(times) if times is not None else 0
        if taken + self._pending.get(address, 0) < self.limit:
            return None
        if times is not None and taken >= self.limit:
            return times[0] + self.window
        # full of attempts still being checked: one of them may succeed in a moment
        return now + timedelta(seconds=1)

    def _count(self, address: str, now: datetime) -> None:
        times = self._recent(address, now)
        if times is None:
            times = self._failures[address] = deque(maxlen=self.limit)
        times.append(now)
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def _recent(self, address: str, now: datetime) -> deque[datetime] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and times[0] + self.window <= now:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times
