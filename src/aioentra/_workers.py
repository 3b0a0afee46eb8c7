"""The provider's own worker threads, for msal and for blocking credential calls.

Why not :class:`concurrent.futures.ThreadPoolExecutor` or :func:`anyio.to_thread.run_sync`:

* a thread blocked in a user's synchronous credential must neither hold up ``close()`` nor
  process exit. ThreadPoolExecutor's threads are joined at interpreter exit, and its
  ``shutdown()`` can only wait for all of them or none;
* every thread the provider starts ends on ``close()``. anyio's worker threads belong to a
  process-wide pool whose idle threads linger after use, so a closed provider would leave
  threads behind.

So the pool is small and explicit: daemon threads started on demand up to ``max_workers``, a
queue, and on :meth:`close` every queued call cancelled and every thread told to stop. close()
waits for each thread to end unless it is inside user code (:meth:`user_code`); such a thread
ends on its own when that code returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ._errors import ProviderClosedError

__all__ = ["WorkerPool"]

T = TypeVar("T")

_Call = tuple["concurrent.futures.Future[Any]", Callable[[], Any]]


class WorkerPool:
    """Up to ``max_workers`` daemon threads named ``{name}-N``, started on demand."""

    def __init__(self, max_workers: int, *, name: str = "aioentra-worker") -> None:
        self._max = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: dict[threading.Thread, concurrent.futures.Future[None]] = {}
        self._idle = 0
        self._in_user_code: set[threading.Thread] = set()
        self._closed = False

    def submit(self, func: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``func`` in a worker thread; raises ProviderClosedError once closed."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise ProviderClosedError("the token provider is closed")
            self._queue.put((future, func))
            if self._idle == 0 and len(self._threads) < self._max:
                self._spawn()
            else:
                self._idle = max(0, self._idle - 1)
        return future

    async def run(self, func: Callable[[], T]) -> T:
        """Await ``func`` run in a worker thread."""
        return await asyncio.wrap_future(self.submit(func))

    @contextlib.contextmanager
    def user_code(self) -> Iterator[None]:
        """Mark the current worker thread as running user code, which close() does not await."""
        thread = threading.current_thread()
        with self._lock:
            if self._closed:
                raise ProviderClosedError("the token provider is closed")
            self._in_user_code.add(thread)
        try:
            yield
        finally:
            with self._lock:
                self._in_user_code.discard(thread)

    @property
    def threads(self) -> int:
        return len(self._threads)

    async def close(self) -> int:
        """Cancel queued calls, stop the threads and wait for those not in user code.

        Returns how many threads were left to finish user code on their own.
        """
        with self._lock:
            self._closed = True
            threads = dict(self._threads)
            left = set(self._in_user_code)
        while True:
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                break
            if call is not None:
                call[0].cancel()
        for _ in threads:
            self._queue.put(None)
        ending = [thread for thread in threads if thread not in left]
        if ending:
            await asyncio.gather(*(asyncio.wrap_future(threads[t]) for t in ending))
        for thread in ending:
            # The thread has signalled its last step; what remains is its return from
            # _work(), microseconds. Joining makes "no thread left" exact for callers.
            thread.join(timeout=1.0)
        return len(left)

    # -- worker side ----------------------------------------------------------------------------

    def _spawn(self) -> None:
        exited: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._work,
            args=(exited,),
            name=f"{self._name}-{len(self._threads) + 1}",
            daemon=True,
        )
        self._threads[thread] = exited
        thread.start()

    def _work(self, exited: concurrent.futures.Future[None]) -> None:
        try:
            while True:
                call = self._queue.get()
                if call is None:
                    return
                future, func = call
                if future.set_running_or_notify_cancel():
                    try:
                        result = func()
                    except BaseException as exc:
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
                    del future, func, call  # keep no reference to what the call held
                with self._lock:
                    if self._closed:
                        return
                    self._idle += 1
        finally:
            with self._lock:
                self._threads.pop(threading.current_thread(), None)
            exited.set_result(None)
