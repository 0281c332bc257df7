"""Parse and validate a large file in other processes (并行解析) while this one stores it.

Validation (adapter, pydantic contracts, canonical JSON, hashes) costs about twice what
storing does, so other cores speed up one large exchange. Each of the `ingest_workers`
parsing processes reads the whole file (the cheap part) and validates every n-th batch
of it with `RowPreparer` (gateway/exchange/batches.py), the code the gateway process runs
for small files; it sends each `PreparedBatch` as one pickle down its own pipe. The
gateway process takes the batches in file order and stays the only writer: it dedupes,
inserts, builds the Merkle tree and seals the receipt in the exchange's one transaction,
exactly as with one process.

Memory stays bounded: each parsing process is at most `AHEAD` batches ahead of the writer. Failures never leave half an exchange:

- the file cannot be read as a whole (`FileRejected` in a parsing process): raised again
  here, so the file is rejected with the same reason as in one process;
- a parsing process fails or is killed: `ParseProcessFailed` here; the exchange's
  transaction rolls back and the file stays in the inbox for the next pass;
- the gateway process dies: the parsing processes' next send fails and they end.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from collections.abc import Iterator, Mapping
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, BinaryIO, Literal, cast

from gateway.adapter import Adapter, SourceFile
from gateway.errors import FileRejected, GatewayError
from gateway.readers import CountingReader
from gateway.exchange.batches import PreparedBatch, RowPreparer

if TYPE_CHECKING:
    from multiprocessing.context import ForkContext, SpawnContext


AHEAD = 4  # batches a parsing process may have validated beyond what the writer took
# A batch takes well under a second to validate. A parsing process silent this long is stuck
# (forked from a process with other threads, it could inherit a lock held at the fork): the
# exchange fails and the file is taken again, rather than the worker waiting for ever.
STALL_SECONDS = 300.0

# What a parsing process sends down its pipe, one pickle each.
Received = tuple[Literal["batch"], PreparedBatch] | tuple[Literal["done"]]
Message = (
    Received
    | tuple[Literal["rejected"], str, str, int | None, str]
    | tuple[Literal["failed"], str, str]
)


class ParseProcessFailed(GatewayError):
    """A parsing process of a large file failed or was killed. The exchange's transaction
    rolls back: nothing of the file is stored, and it is taken again on the next pass."""


def _start_method() -> Literal["fork", "spawn"]:
    # fork: the parsing process inherits the loaded adapter and its warm caches (a spawned
    # one would import everything again, about a second). It only runs adapter code and
    # writes to its pipe: no database, no logging, no other thread's locks.
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _produce(
    adapter: Adapter,
    source: SourceFile,
    exchange_id: int | None,
    size: int,
    share: tuple[int, int],
    sink: Connection[bytes, object],
    not_ours: list[Connection[bytes, object]],
    reasons: Mapping[str, tuple[str, str]] | None = None,
) -> None:
    """A parsing process: its share of the file's batches down `sink`, then ("done",)."""
    for connection in not_ours:
        connection.close()  # else the gateway dying would not close the pipe for us
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway process, which closes the pipes
    read = [0]
    opener = source.open_binary

    def count(n: int) -> None:
        read[0] += n

    source.open_binary = lambda: cast(BinaryIO, CountingReader(opener(), count))  # type: ignore[method-assign]
    # A sender thread keeps up to AHEAD pickled batches queued, so that validation goes on
    # while the writer is busy (or descheduled on a shared machine); bounded, so memory is.
    outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=AHEAD)

    def send() -> None:
        try:
            while (data := outbox.get()) is not None:
                sink.send_bytes(data)
        except OSError:  # EPIPE: the gateway process is gone or gave up on this file
            os._exit(0)

    sender = threading.Thread(target=send, name="send-batches", daemon=True)
    sender.start()
    dumps, put = pickle.dumps, outbox.put
    try:
        for batch in RowPreparer(adapter, exchange_id, reasons).batches(source, size, share):
            put(dumps(("batch", batch._replace(read=read[0])), pickle.HIGHEST_PROTOCOL))
        message: Message = ("done",)
    except FileRejected as rejected:
        message = ("rejected", rejected.code, rejected.detail, rejected.row, rejected.field)
    except Exception as exc:  # noqa: BLE001 - reported to the gateway process, which raises it
        message = ("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc())
    put(dumps(message, pickle.HIGHEST_PROTOCOL))
    put(None)
    sender.join()
    # Straight out: no atexit handlers or stream flushes of the forked parent's state.
    os._exit(0)


class ParsedInProcesses:
    """The batches of `source` as parsed by `workers` other processes, in file order.
    Use as a context manager: leaving it (normally, or on any error) ends them."""

    def __init__(
        self, adapter: Adapter, source: SourceFile, exchange_id: int | None, size: int, workers: int,
        reasons: Mapping[str, tuple[str, str]] | None = None,
    ):
        # typeshed's get_context(str) is a BaseContext, which has no Process
        context = cast("ForkContext | SpawnContext", multiprocessing.get_context(_start_method()))
        forked = context.get_start_method() == "fork"
        self._size = size
        self.stall_seconds = STALL_SECONDS
        pipes = [context.Pipe(duplex=False) for _ in range(workers)]
        self._receivers = [receiver for receiver, _ in pipes]
        self._processes = []
        try:
            for index, (_, sender) in enumerate(pipes):
                # A forked child inherits every pipe end open so far: it closes all but its own.
                others = [end for k, pair in enumerate(pipes) for end in pair if not (k == index and end is sender)]
                process = context.Process(
                    target=_produce,
                    args=(adapter, source, exchange_id, size, (index, workers), sender, others if forked else [], reasons),
                    name=f"gateway-parse-{index + 1}-of-{workers}",
                    daemon=True,  # never outlives the gateway process
                )
                process.start()
                self._processes.append(process)
        finally:
            for _, sender in pipes:
                sender.close()  # ours: only the parsing processes hold the sending ends

    def __enter__(self) -> ParsedInProcesses:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for receiver in self._receivers:
            receiver.close()  # a parsing process still sending gets EPIPE and ends
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()

    def _receive(self, index: int) -> Received:
        if not self._receivers[index].poll(self.stall_seconds):
            process = self._processes[index]
            raise ParseProcessFailed(
                f"parsing process {index + 1} of {len(self._processes)} (pid {process.pid}) sent nothing for "
                f"{self.stall_seconds:.0f} s; it was stopped and nothing of the file was stored"
            )
        try:
            message = cast(Message, pickle.loads(self._receivers[index].recv_bytes()))
        except (EOFError, OSError):  # OSError: it died in the middle of a message
            process = self._processes[index]
            process.join(timeout=5)
            raise ParseProcessFailed(
                f"parsing process {index + 1} of {len(self._processes)} (pid {process.pid}) ended before it finished "
                f"the file (exit code {process.exitcode}); nothing of the file was stored"
            ) from None
        if message[0] == "rejected":
            _, code, detail, row, column = message
            raise FileRejected(code, detail, row=row, field=column)
        if message[0] == "failed":
            _, summary, details = message
            raise ParseProcessFailed(f"parsing process {index + 1} of {len(self._processes)} failed: {summary}\n{details}")
        return message

    def __iter__(self) -> Iterator[PreparedBatch]:
        workers = len(self._processes)
        number, last = 0, False
        while True:
            message = self._receive(number % workers)
            if message[0] == "done":
                break
            batch = message[1]
            if last:  # only the file's last batch may be short
                raise ParseProcessFailed("the parsing processes disagree on where the file's batches begin")
            last = batch.rows < self._size
            yield batch
            number += 1
        # The file ended at batch `number`: every other process must have ended there too.
        for k in range(1, workers):
            message = self._receive((number + k) % workers)
            if message[0] != "done":
                raise ParseProcessFailed("the parsing processes disagree on where the file ends")
