"""Terminals: from an observable of chunks to a `Response`, an iterator, or a WAV file.

`collect`/`acollect` materialize a response (from `Chunk`s or from `Snapshot`s, also a
stream cut short by `take_until`) or raise the stream's error; `iterate`/`aiterate` are
pull-style bridges where leaving the loop early disposes the subscription, which cancels
the call.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import reactivex
from reactivex import abc

from rxllm._checks import is_int, require_observable, require_seconds
from rxllm._loops import END, Failure, call_on_loop, receive
from rxllm.accumulator import materialize
from rxllm.models import Chunk, Response

__all__ = ["acollect", "aiterate", "collect", "iterate", "write_wav"]

T = TypeVar("T")


def _no_loop_here(name: str, async_name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    awaited = async_name if "(" in async_name else f"rxllm.{async_name}(...)"
    raise RuntimeError(
        f"rxllm.{name}() blocks, and an asyncio loop is running in this thread: the call "
        f"would wait for itself. Use `await {awaited}` instead."
    )


def collect(source: reactivex.Observable[Any], *, timeout: float | None = None) -> Response:
    """Block until `source` completes and return its `Response`, or raise its error.

    Past `timeout` seconds the call is cancelled and the builtin `TimeoutError` raised.

    >>> import rxllm
    >>> rxllm.collect(rxllm.scripted("Hi.").stream("hello")).text
    'Hi.'
    """
    require_observable("collect", source)
    require_seconds("collect", "timeout", timeout)
    _no_loop_here("collect", "acollect")
    done = threading.Event()
    builder = materialize()
    failure: list[BaseException] = []

    def on_error(error: Exception) -> None:
        failure.append(error)
        done.set()

    subscription = source.subscribe(builder.add, on_error, done.set)
    try:
        if not done.wait(timeout):
            raise TimeoutError(f"rxllm.collect: no end of stream within {timeout} s; cancelled")
    finally:
        subscription.dispose()
    if failure:
        raise failure[0]
    return builder.response()


async def acollect(source: reactivex.Observable[Any], *, timeout: float | None = None) -> Response:
    """`collect` for asyncio: await the `Response` of `source` (or its error). Past
    `timeout` seconds the call is cancelled and the builtin `TimeoutError` raised.

    >>> import asyncio, rxllm
    >>> asyncio.run(rxllm.acollect(rxllm.scripted("Hi.").stream("hello"))).text
    'Hi.'
    """
    require_observable("acollect", source)
    require_seconds("acollect", "timeout", timeout)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Response] = loop.create_future()
    builder = materialize()

    def settle(result: Response | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            assert result is not None
            future.set_result(result)

    def on_next(item: Any) -> None:
        builder.add(item)

    def on_error(error: Exception) -> None:
        call_on_loop(loop, settle, None, error)

    def on_completed() -> None:
        try:
            response = builder.response()
        except Exception as error:
            call_on_loop(loop, settle, None, error)
            return
        call_on_loop(loop, settle, response, None)

    subscription = source.subscribe(on_next, on_error, on_completed)
    try:
        return await asyncio.wait_for(future, timeout)
    except TimeoutError:
        raise TimeoutError(
            f"rxllm.acollect: no end of stream within {timeout} s; cancelled"
        ) from None
    finally:
        subscription.dispose()


def iterate(source: reactivex.Observable[T], *, buffer: int = 1024) -> Iterator[T]:
    """Pull items from `source` in a for loop; leaving the loop early cancels the call.

    At most `buffer` items wait unread; past that the producer waits for the loop, so a
    slow consumer slows the stream down instead of growing memory. (A source that emits
    everything while it is being subscribed, on the loop's own thread, such as
    `reactivex.from_iterable` or a replay of a finished answer, cannot wait: its items are
    all kept.) The call is cancelled when the iterator is closed: at once when a `for` loop
    over `iterate(...)` breaks (or is left by Ctrl-C); an iterator kept in a variable is
    closed by `it.close()` (or when it is garbage-collected).

    >>> import rxllm
    >>> [c.content for c in rxllm.iterate(rxllm.scripted(["a", "b"]).stream("x"))]
    ['a', 'b']
    """
    require_observable("iterate", source)
    _no_loop_here("iterate", "aiterate")
    if not is_int(buffer) or buffer < 1:
        raise ValueError(f"iterate(buffer=...) must be an int >= 1 (items), not {buffer!r}")
    items: collections.deque[Any] = collections.deque()
    ready = threading.Condition()
    closed = False
    consumer: int | None = None  # the thread of the for loop

    def put(item: Any) -> None:
        with ready:
            # A producer on another thread waits for room. On the loop's own thread (a
            # source that emits while being subscribed, e.g. `reactivex.from_iterable`)
            # nobody could make room: the items are kept.
            if threading.get_ident() != consumer:
                while len(items) >= buffer and not closed:
                    ready.wait()
            if closed:
                return
            items.append(item)
            ready.notify_all()

    def on_error(error: Exception) -> None:
        put(Failure(error))

    def on_completed() -> None:
        put(END)

    def take() -> Any:
        with ready:
            while not items:
                ready.wait()
            item = items.popleft()
            ready.notify_all()
            return item

    def pull() -> Iterator[T]:
        nonlocal closed, consumer
        # Subscribes on the first next(), like a generator should.
        consumer = threading.get_ident()
        subscription: abc.DisposableBase = source.subscribe(put, on_error, on_completed)
        try:
            while True:
                item = take()
                if item is END:
                    return
                if isinstance(item, Failure):
                    raise item.error
                yield item
        finally:
            with ready:
                closed = True
                items.clear()
                ready.notify_all()
            subscription.dispose()

    return pull()


async def aiterate(source: reactivex.Observable[T]) -> AsyncIterator[T]:
    """`iterate` for asyncio: `async for` over `source`; leaving early cancels the call.

    An async iterator kept in a variable is closed (and the call cancelled) by
    `await it.aclose()`; a loop over `aiterate(...)` itself is closed right after it breaks
    (the event loop finalizes the dropped generator).

    >>> import asyncio, rxllm
    >>> async def main():
    ...     return [c.content async for c in rxllm.aiterate(rxllm.scripted(["a", "b"]).stream("x"))]
    >>> asyncio.run(main())
    ['a', 'b']
    """
    require_observable("aiterate", source)
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[Any] = asyncio.Queue()

    def on_next(item: Any) -> None:
        call_on_loop(loop, items.put_nowait, item)

    def on_error(error: Exception) -> None:
        call_on_loop(loop, items.put_nowait, Failure(error))

    def on_completed() -> None:
        call_on_loop(loop, items.put_nowait, END)

    subscription = source.subscribe(on_next, on_error, on_completed)
    try:
        async for item in receive(items):
            yield item
    finally:
        subscription.dispose()


def write_wav(
    audio: reactivex.Observable[bytes] | reactivex.Observable[Chunk],
    path: str | Path,
    *,
    sample_rate: int = 24000,
    timeout: float | None = None,
) -> Path:
    """Write 16-bit mono PCM from `audio` to a WAV file as it arrives; return the path.

    `audio` is an observable of PCM bytes (e.g. `audio_split(...).audio`) or of `Chunk`s,
    whose `audio` is taken. Blocks until the stream completes (like `collect`). If the
    stream fails, the audio received so far stays in a valid WAV file and the error is
    raised; past `timeout` seconds the call is cancelled, the file kept and the builtin
    `TimeoutError` raised. An odd trailing byte (half a sample) is dropped.

    >>> import rxllm, tempfile, wave
    >>> from rxllm.models import Chunk
    >>> llm = rxllm.scripted([Chunk(audio=b"\\x01\\x00" * 240), Chunk(audio=b"\\x02\\x00" * 240)])
    >>> out = rxllm.write_wav(llm.stream("hi"), tempfile.mktemp(suffix=".wav"))
    >>> wave.open(str(out)).getnframes()
    480
    """
    require_observable("write_wav", audio)
    require_seconds("write_wav", "timeout", timeout)
    _no_loop_here("write_wav", "asyncio.to_thread(rxllm.write_wav, ...)")
    if not is_int(sample_rate) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int of Hz, not {sample_rate!r}")
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"write_wav: the folder {target.parent} does not exist")
    done = threading.Event()
    failure: list[BaseException] = []
    carry = bytearray()
    with wave.open(str(target), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)

        def on_next(piece: bytes | Chunk) -> None:
            if isinstance(piece, Chunk):
                carry.extend(piece.audio)
            elif isinstance(piece, bytes | bytearray | memoryview):
                carry.extend(piece)
            else:
                raise TypeError(
                    f"write_wav() takes an Observable of PCM bytes or of Chunks, got "
                    f"{type(piece).__name__} items (for a call's audio: audio_split(...).audio)"
                )
            whole = len(carry) - len(carry) % 2
            if whole:
                writer.writeframes(bytes(carry[:whole]))
                del carry[:whole]

        def on_error(error: Exception) -> None:
            failure.append(error)
            done.set()

        subscription = audio.subscribe(on_next, on_error, done.set)
        try:
            if not done.wait(timeout):
                raise TimeoutError(f"rxllm.write_wav: no end of stream within {timeout} s")
        finally:
            subscription.dispose()
    if failure:
        raise failure[0]
    return target
