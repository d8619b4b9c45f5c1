"""How `OllamaService` makes one call: timeouts, retries, a live note, one clear error.

Every call gets a connect timeout of a few seconds (a dead host fails fast) and a read timeout
that fits it: seconds for `list`/`show`, minutes between two lines of a stream (a model may
take that long to load), and for a blob upload a time that grows with the file's size. While a
call has had no answer for a few seconds, a watcher thread reports it through the progress
callback (`"waiting for Ollama …", seconds, None`) so the CLI can show that it is waiting.
Whatever goes wrong — no server, a hang, a dropped connection, an error line inside a stream,
a body that is not Ollama's JSON — becomes one `OllamaError` saying what happened and what to do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import ollama as _ollama_client

from ollama_tune._util import ProgressFn
from ollama_tune.errors import OllamaError

T = TypeVar("T")
CONNECT_TIMEOUT_S = 5.0
QUICK_TIMEOUT_S = 30.0  # version, list, show, delete, blob check
STREAM_TIMEOUT_S = 300.0  # the longest silence between two lines of chat/pull/create
UPLOAD_BYTES_PER_S = 20e6  # a slow disk or network still does this much
NOTE_AFTER_S = 5.0  # first "waiting" note after this much silence, then every NOTE_EVERY_S
NOTE_EVERY_S = 10.0
RETRY_STATUS = (502, 503, 504)
_BAD_BODY = (ValueError, TypeError, AttributeError, KeyError)  # JSON/pydantic/shape errors


def upload_timeout(size: int) -> float:
    """Read/write timeout for uploading `size` bytes and having the server hash them."""
    return QUICK_TIMEOUT_S + 2 * size / UPLOAD_BYTES_PER_S


class Watch:
    """Reports through `progress` while a call waits; `touch()` whenever data arrives."""

    def __init__(self, progress: ProgressFn | None, label: str) -> None:
        self.progress, self.label = progress, label
        self.start = self.last = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Watch:
        if self.progress is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def touch(self) -> None:
        self.last = time.monotonic()

    def _run(self) -> None:
        wait = NOTE_AFTER_S
        while not self._stop.wait(wait):
            silent = time.monotonic() - self.last
            if silent >= NOTE_AFTER_S and self.progress is not None:
                self.progress(self.label, round(silent), None)
                wait = NOTE_EVERY_S
            else:
                wait = NOTE_AFTER_S - silent


@dataclass(frozen=True)
class Call:
    """What is being asked, for messages: `what` ("list"), the model it names, if any."""

    host: str
    what: str
    model: str = ""
    timeout_s: float = QUICK_TIMEOUT_S
    missing: str = "pull"  # a 404 means: "pull" (a model to download) or "absent" (rm)
    # Minutes of silence in a stream are not fixed by asking again: only quick calls retry them.
    retry_timeouts: bool = True


def run_call(call: Call, fn: Callable[[], T], *, attempts: int) -> T:
    """Run `fn`, retrying timeouts, dropped connections and 502/503/504; translate the rest."""
    import httpx

    started = time.monotonic()
    for attempt in range(attempts):
        try:
            return fn()
        except (httpx.TimeoutException, httpx.TransportError, _ollama_client.ResponseError) as exc:
            status = getattr(exc, "status_code", None)
            broken = not isinstance(exc, httpx.TimeoutException) and (
                isinstance(exc, httpx.TransportError) and not _is_connect(exc)
            )
            timed_out = isinstance(exc, httpx.TimeoutException)
            retry = (timed_out and call.retry_timeouts) or broken or status in RETRY_STATUS
            if retry and attempt + 1 < attempts:
                time.sleep(0.2 * 2**attempt)
                continue
            raise translate(call, exc, attempt + 1, time.monotonic() - started) from None
        except ConnectionError as exc:
            raise translate(call, exc, attempt + 1, time.monotonic() - started) from None
        except _BAD_BODY as exc:
            raise translate(call, exc, attempt + 1, time.monotonic() - started) from None
    raise AssertionError("unreachable")


def _is_connect(exc: Exception) -> bool:
    import httpx

    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


def _short(text: object, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def translate(call: Call, exc: Exception, tries: int, waited: float) -> OllamaError:
    """One OllamaError for any failure of `call` (see the module docstring)."""
    import httpx

    host, what = call.host, call.what
    if isinstance(exc, ConnectionError) or _is_connect(exc):
        return OllamaError(
            f"cannot reach Ollama at {host} ({what})",
            hint="Start it with `ollama serve` (or the Ollama app), or point --host / "
            "OLLAMA_HOST at a running server.",
        )
    if isinstance(exc, httpx.TimeoutException):
        return OllamaError(
            f"Ollama at {host} did not answer {what} in time "
            f"({tries} {'try' if tries == 1 else 'tries'}); waited "
            f"{waited:.0f} s in all, {call.timeout_s:g} s per try",
            hint="Is the machine busy loading a large model, or the server stuck? Check "
            "`ollama ps` and the server's log, then retry.",
        )
    if isinstance(exc, httpx.TransportError):
        return OllamaError(
            f"the connection to Ollama at {host} broke during {what} ({_short(exc)})",
            hint="The server may have crashed or restarted (out of memory?). Check the "
            "Ollama server's log, then retry.",
        )
    if isinstance(exc, _ollama_client.ResponseError):
        return _response_error(call, exc)
    return OllamaError(
        f"Ollama at {host} answered {what} with something that is not Ollama's API "
        f"({type(exc).__name__}: {_short(exc)})",
        hint="Is --host / OLLAMA_HOST pointing at another service (a proxy, a web page)? "
        f"`curl {host}/api/version` should print Ollama's version.",
    )


def _response_error(call: Call, exc: _ollama_client.ResponseError) -> OllamaError:
    host, what, model = call.host, call.what, call.model
    message = _short(exc.error)
    if exc.status_code == 404 and model and call.missing == "absent":
        return OllamaError(
            f"model {model!r} not found: it does not exist on Ollama at {host}",
            hint="`ollama-tune list` shows the models it has.",
        )
    if exc.status_code == 404 and model:
        return OllamaError(
            f"model {model!r} not found on Ollama at {host}: {message}",
            hint=f"Run `ollama pull {model}` (or pass --pull).",
        )
    if exc.status_code == -1:  # an {"error": …} line inside a stream: the server gave up
        return OllamaError(
            f"Ollama at {host} stopped {what} with an error: {message}",
            hint="The message above is Ollama's own; its server log has the details.",
        )
    return OllamaError(
        f"Ollama at {host} refused {what} (HTTP {exc.status_code}): {message}",
        hint="The message above is Ollama's own; fix the value it names.",
    )
