"""A one-slot mailbox between two threads: the latest item wins, nothing queues up.

The capture thread :meth:`Mailbox.put` s every frame; the inference thread :meth:`Mailbox.get`
s the newest one. When the consumer is slower, an unread item is replaced (and returned to
the producer, so it can account for it) instead of building a backlog: the consumer always
works on the freshest frame and the latency stays one frame deep.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

__all__ = ["Mailbox", "MailboxClosed"]

T = TypeVar("T")


class MailboxClosed(Exception):
    """:meth:`Mailbox.get` on a closed, empty mailbox."""


class Mailbox(Generic[T]):
    """One slot, latest wins; thread-safe.

    Attributes:
        replaced: how many unread items were overwritten by newer ones.
        delivered: how many items :meth:`get` handed out.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self.replaced = 0
        self.delivered = 0

    def put(self, item: T) -> T | None:
        """Store ``item``; return the unread item it replaced (None if the slot was empty).

        Raises:
            MailboxClosed: the mailbox is closed.
        """
        with self._cond:
            if self._closed:
                raise MailboxClosed("put on a closed mailbox")
            old = self._item if self._full else None
            if self._full:
                self.replaced += 1
            self._item, self._full = item, True
            self._cond.notify()
            return old

    def get(self, timeout: float | None = None) -> T | None:
        """Take the newest item, waiting up to ``timeout`` seconds (None: forever).

        Returns:
            the item, or None when the wait timed out.
        Raises:
            MailboxClosed: the mailbox was closed and is empty.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._full:
                if self._closed:
                    raise MailboxClosed("the mailbox is closed")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            item = self._item
            self._item, self._full = None, False
            self.delivered += 1
            return item

    def take_unread(self) -> T | None:
        """Remove and return the unread item without waiting (None if empty)."""
        with self._cond:
            item = self._item if self._full else None
            self._item, self._full = None, False
            return item

    def close(self) -> None:
        """Wake every waiter; later puts raise, gets drain the slot then raise."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
