"""Observe a Stream / AsyncStream in place, so the caller keeps the SDK's own object (same type, same attributes).

The SDK's stream reads events from its ``_iterator`` generator (``__next__`` and ``__iter__`` both use it);
the observer replaces that generator with one that passes every event through unchanged and tells the
:class:`~collector.call.Call`. The call ends exactly once, on the first of:

- exhausted: the observer sees the end of the events;
- failed: the observer sees the SDK raise mid-stream (``stream_interrupted``);
- closed early: the stream's HTTP response is closed while no event is being read (``stream.close()``,
  leaving ``with stream`` / ``with client.responses.stream(...)`` / ``with ...with_streaming_response...``,
  all of which close that response);
- dropped: the stream object is garbage-collected unread (``weakref.finalize``, also run at interpreter exit).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
from openai import AsyncStream, Stream

from collector.call import Call

_watched: weakref.WeakKeyDictionary[httpx2.Response, Call] = weakref.WeakKeyDictionary()
_watched_lock = threading.RLock()  # re-entrant: a GC-triggered close may run while it is held


def observe(stream: Stream[Any] | AsyncStream[Any], call: Call) -> None:
    """Start observing ``stream`` for ``call`` (the stream object itself is left as the SDK made it)."""
    inner = stream._iterator
    stream._iterator = _observe_async(inner, call) if isinstance(stream, AsyncStream) else _observe(inner, call)
    with _watched_lock:
        _watched[stream.response] = call
    weakref.finalize(stream, call.finish)


def _observe(inner: Iterator[Any], call: Call) -> Iterator[Any]:
    while True:
        call.in_next = True
        try:
            event = next(inner)
        except StopIteration:
            call.finish()
            return
        except BaseException as exc:
            call.fail(exc, in_stream=True)
            raise
        finally:
            call.in_next = False
        call.on_event(event)
        yield event


async def _observe_async(inner: AsyncIterator[Any], call: Call) -> AsyncIterator[Any]:
    while True:
        call.in_next = True
        try:
            event = await inner.__anext__()
        except StopAsyncIteration:
            call.finish()
            return
        except BaseException as exc:
            call.fail(exc, in_stream=True)
            raise
        finally:
            call.in_next = False
        call.on_event(event)
        yield event


def _closed(response: httpx2.Response) -> None:
    if not _watched:
        return
    with _watched_lock:
        call = _watched.pop(response, None)
    # Inside next() the SDK closes the response itself on exhaustion or error: the observer reports those.
    if call is not None and not call.in_next:
        call.finish()


def response_close(wrapped: Any, instance: httpx2.Response, args: Any, kwargs: Any) -> Any:
    """Wrapper of ``httpx2.Response.close``."""
    try:
        return wrapped(*args, **kwargs)
    finally:
        _closed(instance)


async def response_aclose(wrapped: Any, instance: httpx2.Response, args: Any, kwargs: Any) -> Any:
    """Wrapper of ``httpx2.Response.aclose``."""
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _closed(instance)
