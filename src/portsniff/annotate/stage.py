"""A consumer of LabelledBatches in a process of its own (formatting, summarising).

Labelling is sequential (flow state), but what consumes its output is not tied to it:
while the labeller works on block k+1, a forked child formats or summarises block k.
Batches go to the child through a pipe, sent by a thread of the parent from a queue of
SEND_AHEAD batches (the labeller goes on while the child takes a batch; memory stays
bounded by a few blocks); the child answers once, at the end, with its consumer's result
or the error it met. Registry labels are not sent: the child looks them up in its own
copy of the index (fork shares it), so it labels exactly as the parent would.

Only where ``fork`` exists (Linux, macOS); elsewhere :func:`start` returns None and the
caller consumes in process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any, Protocol

from portsniff.annotate.vector import LabelledBatch, Labeller
from portsniff.errors import PortsniffError


class Consumer(Protocol):
    def add(self, lb: LabelledBatch) -> None: ...

    def finish(self) -> Any: ...


class StageError(PortsniffError):
    """The consumer process failed (its own error's message)."""


#: Batches queued for the sending thread (a send waits while the child is busy).
SEND_AHEAD = 2


class Stage:
    """The parent's end of a consumer process (see module docstring)."""

    def __init__(self, process: Any, conn: Any) -> None:
        self._process = process
        self._conn = conn
        self._closed = False
        self._stopped = threading.Event()  # the child stopped taking batches
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(SEND_AHEAD)
        self._sender = threading.Thread(target=self._send_all, daemon=True)
        self._sender.start()

    def _send_all(self) -> None:
        while not self._stopped.is_set():
            state = self._queue.get()
            try:
                self._conn.send(state)
            except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
                # The child stopped early: its answer says why (finish reads it).
                self._stopped.set()
            if state is None:
                return

    def _put(self, state: tuple[Any, ...] | None) -> bool:
        """Queue ``state`` for the sender; False when it stopped (the child did)."""
        while not self._stopped.is_set():
            try:
                self._queue.put(state, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def add(self, lb: LabelledBatch) -> None:
        """Queue one batch (waits while SEND_AHEAD batches wait to be sent)."""
        if not self._put(lb.state()):
            self.finish()
            raise StageError("the consumer process stopped early")

    def finish(self) -> Any:
        """Tell the child that no more batches come; its consumer's result."""
        if self._closed:
            raise StageError("the consumer process stopped early")
        self._closed = True
        try:
            # If it already stopped, its answer is waiting all the same.
            self._put(None)
            self._sender.join()
            try:
                kind, value = self._conn.recv()
            except (EOFError, ConnectionResetError):
                raise StageError(
                    f"the consumer process died (exit status {self._exit_status()})"
                ) from None
        finally:
            self._conn.close()
            self._process.join()
        if kind == "ok":
            return value
        if kind == "broken-pipe":
            raise BrokenPipeError
        raise StageError(str(value))

    def abort(self) -> None:
        """Stop the child now (interrupts, errors in the parent)."""
        self._stopped.set()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        # A send in progress fails now that the child is gone; a sender waiting for a
        # batch takes this one and stops.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._sender.join(1.0)
        if not self._closed:
            self._closed = True
            self._conn.close()

    def _exit_status(self) -> object:
        self._process.join(5)
        return self._process.exitcode


def available() -> bool:
    """Whether consumer processes can be started here (they need ``fork``)."""
    return "fork" in multiprocessing.get_all_start_methods()


def start(make: Callable[[], Consumer], labels: Labeller) -> Stage | None:
    """Fork a child that builds a consumer with ``make`` and feeds it every batch sent;
    None where ``fork`` is not available. Flush shared output streams before this."""
    if not available():
        return None
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=True)
    process = ctx.Process(target=_serve, args=(child, make, labels), daemon=True)
    process.start()
    child.close()
    return Stage(process, parent)


def _serve(conn: Any, make: Callable[[], Consumer], labels: Labeller) -> None:
    # Ctrl-C reaches the whole process group: the parent decides, the child just stops
    # when told (or terminated).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answer: tuple[str, object]
    try:
        consumer = make()
        while True:
            state = conn.recv()
            if state is None:
                break
            consumer.add(LabelledBatch.from_state(state, labels))
        answer = ("ok", consumer.finish())
    except BrokenPipeError:
        answer = ("broken-pipe", None)
    except PortsniffError as exc:
        answer = ("error", str(exc))
    except Exception as exc:  # a bug: report it in the parent rather than die silently
        answer = ("error", f"consumer process: {type(exc).__name__}: {exc}")
    try:
        conn.send(answer)
    except (BrokenPipeError, OSError):
        pass
    finally:
        conn.close()
    # Skip interpreter clean-up of the parent's inherited state (atexit, buffers).
    os._exit(0)
