"""Failed sign-ins counted per client address, so that guesses spread over accounts are slowed.

:class:`hub.console.users.UserStore` locks an account after :data:`~hub.console.users.MAX_FAILURES`
wrong passwords in a row. That stops guessing one account's password, not spraying one likely
password over every account (OWASP's "password spraying"): each account then sees one failure
and is never locked. So the console also counts failures per client address: after
:data:`MAX_ADDRESS_FAILURES` within :data:`WINDOW`, that address's sign-ins are refused without
looking at the password (no argon2 work) until its oldest failure leaves the window.

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
        self._lock = threading.Lock()

    def blocked_until(self, address: str, now: datetime) -> datetime | None:
        """When ``address`` may try again, or None when it may now."""
        with self._lock:
            times = self._recent(address, now)
            if times is None or len(times) < self.limit:
                return None
            return times[0] + self.window

    def failed(self, address: str, now: datetime) -> None:
        """Count one failed sign-in from ``address`` at ``now``."""
        with self._lock:
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
