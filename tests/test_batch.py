"""batch: bounded concurrency, per-item errors as results, resumable checkpoint, limits."""

from __future__ import annotations

import importlib
import io
import json
import threading
import time
from pathlib import Path

import pytest
import reactivex
from reactivex import operators as rx

import rxllm

batch_module = importlib.import_module("rxllm.batch")


def run_batch(*args, **kwargs) -> list[tuple[object, object]]:  # type: ignore[no-untyped-def]
    kwargs.setdefault("progress", False)
    return rxllm.batch(*args, **kwargs).pipe(rx.to_list()).run()


def test_every_input_comes_out_once_with_its_response() -> None:
    llm = rxllm.scripted("done")
    results = run_batch(range(10), lambda i: llm.stream(f"item {i}"), concurrency=3)
    assert sorted(item for item, _ in results) == list(range(10))
    assert all(isinstance(r, rxllm.Response) and r.text == "done" for _, r in results)


def test_concurrency_is_bounded() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    llm = rxllm.scripted(["a", "b"], delay=0.02)

    def pipeline(i: int) -> reactivex.Observable[rxllm.Chunk]:
        def enter() -> None:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)

        def leave() -> None:
            nonlocal in_flight
            with lock:
                in_flight -= 1

        return (
            llm.stream(str(i))
            .pipe(rx.do_action(on_completed=leave), rx.finally_action(lambda: None))
            .pipe(lambda source: reactivex.defer(lambda _: (enter(), source)[1]))
        )

    run_batch(range(12), pipeline, concurrency=3)
    assert peak == 3


def test_per_item_errors_are_results() -> None:
    good = rxllm.scripted("ok")
    bad = rxllm.scripted(["x"], error=rxllm.ServerError("overloaded"))
    results = dict(
        run_batch([1, 2, 3], lambda i: (bad if i == 2 else good).stream("q"), concurrency=2)
    )
    assert isinstance(results[2], rxllm.ServerError)
    assert results[2].partial is not None and results[2].partial.text == "x"
    assert results[1].text == results[3].text == "ok"  # type: ignore[union-attr]


def test_checkpoint_skips_successes_and_retries_failures(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    calls: list[str] = []
    fail = {"b"}

    def pipeline(item: str) -> reactivex.Observable[rxllm.Chunk]:
        calls.append(item)
        if item in fail:
            return rxllm.scripted(["-"], error=rxllm.RateLimitError("slow down")).stream(item)
        return rxllm.scripted(f"answer {item}").stream(item)

    first = dict(run_batch(["a", "b", "c"], pipeline, concurrency=1, checkpoint=path))
    assert isinstance(first["b"], rxllm.RateLimitError)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 3 and sum("error" in line for line in lines) == 1

    calls.clear()
    fail.clear()
    second = dict(run_batch(["a", "b", "c"], pipeline, concurrency=1, checkpoint=path))
    assert calls == ["b"]  # only the failed one is called again
    assert {k: v.text for k, v in second.items()} == {  # type: ignore[union-attr]
        "a": "answer a",
        "b": "answer b",
        "c": "answer c",
    }


def test_a_corrupt_checkpoint_line_says_which(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"key": "x", "response": null}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        run_batch(["a"], rxllm.scripted("x").stream, concurrency=1, checkpoint=path)


def test_progress_writes_a_line() -> None:
    out = io.StringIO()
    llm = rxllm.scripted("x")
    run_batch(range(4), lambda i: llm.stream(str(i)), concurrency=2, progress=out)
    assert "4/4" in out.getvalue() and "0 failed" in out.getvalue()


def test_requests_per_minute_spaces_the_starts() -> None:
    now = [1000.0]
    limiter = batch_module._Limiter(2, None, clock=lambda: now[0])
    assert limiter.reserve() == 0
    assert limiter.reserve() == 0
    assert limiter.reserve() == pytest.approx(60)  # third start waits for the window
    now[0] += 61
    assert limiter.reserve() <= 0


def test_tokens_per_minute_waits_for_the_window() -> None:
    now = [1000.0]
    limiter = batch_module._Limiter(None, 100, clock=lambda: now[0])
    assert limiter.reserve() == 0
    limiter.spent(rxllm.Response(usage=rxllm.Usage(total_tokens=150)))
    now[0] += 10
    assert limiter.reserve() == pytest.approx(50)  # until the 150 tokens leave the window


def test_anthropic_cache_reads_do_not_count_to_tokens_per_minute() -> None:
    now = [1000.0]
    limiter = batch_module._Limiter(None, 2000, clock=lambda: now[0])
    usage = rxllm.Usage(
        input_tokens=5210, output_tokens=2, total_tokens=5212, cache_read_tokens=5000
    )
    limiter.spent(rxllm.Response(usage=usage, provider="anthropic"))
    assert limiter.reserve() == 0  # 212 tokens count, not 5212
    limiter.spent(rxllm.Response(usage=usage, provider="openai"))
    assert limiter.reserve() > 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        rxllm.batch([1], rxllm.scripted("x").stream, concurrency=0)
    with pytest.raises(ValueError, match="requests_per_minute"):
        rxllm.batch([1], rxllm.scripted("x").stream, concurrency=1, requests_per_minute=0)


def test_an_input_whose_pipeline_raises_is_a_result_not_the_end_of_the_run() -> None:
    llm = rxllm.scripted("ok")
    results = dict(
        run_batch(
            ["a", "", "c"],
            lambda item: llm.stream(item or None),  # no prompt: stream() raises ValueError
            concurrency=2,
        )
    )
    assert results["a"].text == results["c"].text == "ok"  # type: ignore[union-attr]
    failure = results[""]
    assert isinstance(failure, rxllm.LLMError) and not failure.retryable
    assert isinstance(failure.__cause__, ValueError)
    assert "ValueError" in str(failure)


def test_checkpoint_keeps_binary_audio(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    pcm = bytes(range(256)) * 4  # not UTF-8
    llm = rxllm.scripted([rxllm.Chunk(audio=pcm, audio_transcript="hi")])
    first = dict(run_batch(["a"], lambda _: llm.stream("q"), concurrency=1, checkpoint=path))
    assert first["a"].audio == pcm  # type: ignore[union-attr]
    second = dict(run_batch(["a"], lambda _: llm.stream("q"), concurrency=1, checkpoint=path))
    assert second["a"].audio == pcm  # type: ignore[union-attr]  (read back from the file)


@pytest.mark.parametrize(
    ("rpm", "waits"),
    [
        (0.5, [0, 120, 240]),  # one start per 120 s: it used to start three at once after 60 s
        (2.5, [0, 0, 48, 48, 96]),  # two per 48 s: 2.5 a minute in the long run
        (1, [0, 60, 120]),
    ],
)
def test_a_fraction_of_a_request_per_minute_spaces_the_starts(
    rpm: float, waits: list[float]
) -> None:
    limiter = batch_module._Limiter(rpm, None, clock=lambda: 1000.0)
    assert [limiter.reserve() for _ in waits] == pytest.approx(waits)


def test_a_checkpoint_in_a_missing_folder_is_refused_before_any_call(tmp_path: Path) -> None:
    llm = rxllm.scripted("x")
    with pytest.raises(ValueError, match="does not exist"):
        rxllm.batch(["a"], llm.stream, concurrency=1, checkpoint=tmp_path / "no" / "run.jsonl")
    with pytest.raises(ValueError, match="is a folder"):
        rxllm.batch(["a"], llm.stream, concurrency=1, checkpoint=tmp_path)
    assert llm._provider.requests == []  # type: ignore[attr-defined]


class Row:
    def __init__(self, text: str) -> None:
        self.text = text


def test_inputs_without_a_stable_key_need_key_with_a_checkpoint(tmp_path: Path) -> None:
    # An object's repr names its address: a resumed run would have redone every item.
    llm = rxllm.scripted("x")
    path = tmp_path / "run.jsonl"
    with pytest.raises(ValueError, match="key="):
        rxllm.batch([Row("a")], lambda r: llm.stream(r.text), concurrency=1, checkpoint=path)
    with pytest.raises(ValueError, match="key="):
        rxllm.batch([{(1, 2): "x"}], lambda r: llm.stream("x"), concurrency=1, checkpoint=path)
    # without a checkpoint no key is needed; with key= it works and resumes
    assert len(run_batch([Row("a")], lambda r: llm.stream(r.text), concurrency=1)) == 1
    for _ in range(2):
        run_batch(
            [Row("a"), Row("b")],
            lambda r: llm.stream(r.text),
            concurrency=1,
            checkpoint=path,
            key=lambda r: r.text,
        )
    assert len(llm._provider.requests) == 3  # type: ignore[attr-defined]  # 1 + 2, none redone


def test_pydantic_and_dataclass_inputs_have_stable_keys() -> None:
    import dataclasses

    @dataclasses.dataclass
    class Item:
        text: str

    assert batch_module._default_key(Item("a")) == batch_module._default_key(Item("a"))
    assert batch_module._default_key(rxllm.Usage(input_tokens=1)) == batch_module._default_key(
        rxllm.Usage(input_tokens=1)
    )
    assert batch_module._default_key(Item("a")) != batch_module._default_key(Item("b"))


def test_a_last_line_cut_off_by_a_kill_is_dropped_and_the_run_resumes(tmp_path: Path) -> None:
    llm = rxllm.scripted("x")
    path = tmp_path / "run.jsonl"
    run_batch(["a"], llm.stream, concurrency=1, checkpoint=path)
    whole = path.read_text()
    path.write_text(whole + whole[:25])  # a second record, cut mid-write
    results = run_batch(["a", "b"], llm.stream, concurrency=1, checkpoint=path)
    assert sorted(item for item, _ in results) == ["a", "b"]
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["key"] for line in lines)


@pytest.mark.parametrize(
    "line", ["[]", '"text"', '{"response": null}', '{"key": "k", "response": 3}']
)
def test_a_checkpoint_line_of_the_wrong_shape_names_the_file_and_line(
    tmp_path: Path, line: str
) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"key": "x", "response": null}\n' + line + "\n")
    with pytest.raises(ValueError, match=r"run\.jsonl line 2"):
        run_batch(["a"], rxllm.scripted("x").stream, concurrency=1, checkpoint=path)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"inputs": "abc"}, TypeError, "pass \\[text\\]"),
        ({"inputs": 3}, TypeError, "inputs"),
        ({"pipeline": "llm"}, TypeError, "pipeline"),
        ({"concurrency": "2"}, ValueError, "concurrency"),
        ({"concurrency": 1.5}, ValueError, "concurrency"),
        ({"progress": "yes"}, TypeError, "progress"),
        ({"key": "id"}, TypeError, "key"),
        ({"requests_per_minute": float("nan")}, ValueError, "requests_per_minute"),
        ({"tokens_per_minute": "100"}, ValueError, "tokens_per_minute"),
    ],
)
def test_bad_arguments_say_what_to_change(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    arguments: dict[str, object] = {
        "inputs": ["a"],
        "pipeline": rxllm.scripted("x").stream,
        "concurrency": 1,
    }
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        rxllm.batch(**arguments)  # type: ignore[arg-type]


def test_a_pipeline_that_returns_no_observable_is_that_input_s_failure() -> None:
    results = dict(run_batch(["a"], lambda item: "not a stream", concurrency=1))
    failure = results["a"]
    assert isinstance(failure, rxllm.LLMError)
    assert "must return an Observable" in str(failure)


def test_progress_without_a_terminal_writes_a_line_per_tenth() -> None:
    out = io.StringIO()
    llm = rxllm.scripted("x")
    run_batch(range(15), lambda i: llm.stream(str(i)), concurrency=1, progress=out)
    assert len(out.getvalue().splitlines()) == 10  # not one per item


def test_a_key_function_returning_numbers_resumes(tmp_path: Path) -> None:
    # key=lambda row: row.id with int ids: the second run refused its own checkpoint.
    llm = rxllm.scripted("x")
    path = tmp_path / "run.jsonl"
    rows = [Row("a"), Row("b")]
    for _ in range(2):
        run_batch(
            rows, lambda r: llm.stream(r.text), concurrency=1, checkpoint=path, key=rows.index
        )
    assert len(llm._provider.requests) == 2  # type: ignore[attr-defined]
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["0", "1"]


@pytest.mark.parametrize(
    ("ending", "redone"),
    [
        (b'\r\n{"key": "cut', 1),  # CRLF lines, a torn last record: that one item again
        (b"", 0),  # a whole last record without its newline (an editor's save)
    ],
)
def test_checkpoints_with_crlf_or_without_a_last_newline_resume(
    tmp_path: Path, ending: bytes, redone: int
) -> None:
    llm = rxllm.scripted("x")
    path = tmp_path / "run.jsonl"
    run_batch(["a", "b"], llm.stream, concurrency=1, checkpoint=path)
    records = path.read_bytes().splitlines()
    if ending:
        path.write_bytes(b"\r\n".join(records[:1]) + ending)  # "b" is lost in the torn line
    else:
        path.write_bytes(b"\n".join(records))
    for _ in range(2):  # the second run reads what the first appended
        results = run_batch(["a", "b"], llm.stream, concurrency=1, checkpoint=path)
        assert sorted(item for item, _ in results) == ["a", "b"]
    assert len(llm._provider.requests) == 2 + redone  # type: ignore[attr-defined]


def test_progress_none_means_no_progress() -> None:
    assert len(run_batch(["a"], rxllm.scripted("x").stream, concurrency=1, progress=None)) == 1


def test_failures_kept_as_results_hold_no_frames() -> None:
    # A result is data: the frames an error was raised through kept the call's connection
    # objects alive, 40-60 KB per failure.
    from rxllm.testing import Script, Server

    with Server() as server:
        server.push(Script("x", status=500))
        llm = rxllm.openai("m", base_url=server.url, api_key="k", max_retries=0)
        ((_, failure),) = run_batch(["a"], llm.stream, concurrency=1)
    assert isinstance(failure, rxllm.ServerError)
    chain: list[BaseException] = []
    current: BaseException | None = failure
    while current is not None:
        chain.append(current)
        current = current.__cause__ or current.__context__
    assert len(chain) >= 2  # the SDK's own error is still chained, for its message
    assert all(error.__traceback__ is None for error in chain)


def test_a_pipeline_s_own_bug_keeps_its_traceback() -> None:
    def pipeline(item: str) -> reactivex.Observable[rxllm.Chunk]:
        return rxllm.scripted("x").stream(item).pipe(rx.map(lambda c: 1 / 0))

    ((_, failure),) = run_batch(["a"], pipeline, concurrency=1)
    assert isinstance(failure, rxllm.LLMError)
    assert isinstance(failure.__cause__, ZeroDivisionError)
    assert failure.__cause__.__traceback__ is not None  # where the user's code failed


def test_the_checkpoint_is_final_once_the_batch_is_closed(tmp_path: Path) -> None:
    # Calls finish on their own threads; one finishing as the consumer closes the batch was
    # written a few ms after close() returned, so a resume read a shorter file than the
    # final one (and `docs/operators/batch.md`'s count was flaky).
    for attempt in range(20):
        checkpoint = tmp_path / f"run{attempt}.jsonl"
        prompts = [f"q{i}" for i in range(200)]
        run = rxllm.iterate(
            rxllm.batch(
                prompts,
                lambda p: rxllm.scripted(f"A {p}.", delay=0.001).stream(p),
                concurrency=32,
                checkpoint=checkpoint,
                progress=False,
            )
        )
        for n, _ in enumerate(run, start=1):
            if n == 40:
                break
        run.close()
        at_close = checkpoint.read_bytes()
        time.sleep(0.05)
        assert checkpoint.read_bytes() == at_close, f"attempt {attempt}"
        assert at_close.count(b"\n") >= 40
