"""The `rxllm` command: stream an answer to the terminal, or run the showcase pipeline.

Why it exists: the README's first command has to show rxllm doing real work on a fresh
machine — no key, no network — so `rxllm demo` runs a reactive pipeline on the local model,
and `rxllm "prompt"` is the quickest way to watch any provider stream.

    rxllm "Why is the sky blue?"                       # the local model, streamed live
    rxllm --until '\\.' "Tell me a story"              # stop (and cancel) at the first "."
    rxllm --json --max-tokens 50 "Say hi"              # the final Response as JSON
    rxllm --provider openai --model gpt-4o-mini "Hi"   # keys come from the environment
    rxllm --model groq:llama-3.3-70b "Hi"              # any rxllm.model() string
    rxllm demo                                         # one call, three consumers (tee)
    rxllm chat                                         # a conversation with the local model
    rxllm chat anthropic:claude-haiku-4-5              # ... or with any model string

In `rxllm chat`, Ctrl-C during an answer stops the model (the call is cancelled) and keeps
the conversation, the partial answer included; Ctrl-C or Ctrl-D at the prompt ends it.

Exit codes: 0 done, 1 the call failed (e.g. no API key: the provider's
`AuthenticationError` names the variable to set), 2 a usage error (bad arguments, or the
`local` extra missing), 130 interrupted. Errors are one line on stderr, never a traceback.

Why ~480 lines in one module: one command's argument parsing, its modes (`demo`, a prompt,
`--until`, `--json`) and their terminal output, which share the same Ctrl-C and exit-code
rules.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import io
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex import operators as rx_ops
from reactivex.subject import Subject

import rxllm
from rxllm import ops
from rxllm.accumulator import Snapshot
from rxllm.models import Chunk, Response

__all__ = ["DEFAULT_MODELS", "chat_llm", "llm_from_string", "main", "response_json"]

DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
"""The model `--provider` uses when `--model` is not given."""

DEMO_PROMPT = "Explain in a few short sentences why the sky is blue."
EXIT_CALL_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

T = TypeVar("T")


class UsageError(Exception):
    """A problem with how rxllm was invoked or set up: exit code 2."""


def response_json(response: Response) -> dict[str, Any]:
    """The `Response` as JSON-ready data: every field, audio as base64 (`raw` is not a field).

    >>> import rxllm
    >>> response_json(rxllm.collect(rxllm.scripted("Hi.").stream("x")))["text"]
    'Hi.'
    """
    data = response.model_dump(mode="json", exclude={"audio"})
    data["audio"] = base64.b64encode(response.audio).decode("ascii")
    return {name: data[name] for name in type(response).model_fields}


# --------------------------------------------------------------------------- arguments


def _regex(value: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {exc}") from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _add_model_options(parser: argparse.ArgumentParser, *, providers: bool) -> None:
    if providers:
        parser.add_argument(
            "--provider",
            choices=("local", "openai", "anthropic"),
            help="who answers (default: local, the SmolLM2-135M model in this process; "
            "openai/anthropic read OPENAI_API_KEY/ANTHROPIC_API_KEY)",
        )
        parser.add_argument(
            "--model",
            metavar="NAME",
            help="a model string such as groq:llama-3.3-70b or ollama:qwen2.5:0.5b (any "
            "provider of rxllm.model, keys from each one's variable); or, with --provider, "
            f"the model's name (default {DEFAULT_MODELS['openai']} / "
            f"{DEFAULT_MODELS['anthropic']}), for local the path of a GGUF file (default: "
            "SmolLM2-135M-Instruct)",
        )
        parser.add_argument(
            "--base-url",
            metavar="URL",
            help="the server's URL: an OpenAI- or Anthropic-compatible server (a proxy), or "
            "the vllm:/llamacpp: server of a model string",
        )
    else:
        parser.add_argument(
            "--model", metavar="PATH", help="a GGUF file (default: SmolLM2-135M-Instruct)"
        )
    parser.add_argument("--system", metavar="TEXT", help="a system prompt")
    parser.add_argument(
        "--max-tokens", metavar="N", type=_positive_int, help="cap the answer's length"
    )
    parser.add_argument("--temperature", metavar="T", type=float, help="sampling temperature")
    parser.add_argument("--seed", metavar="N", type=int, help="sampling seed (local, openai)")


def _prompt_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rxllm",
        description="Stream an LLM's answer to the terminal as it is generated. "
        "`rxllm chat [MODEL]` holds a conversation (see `rxllm chat --help`); "
        "`rxllm demo` runs a showcase pipeline on the local model.",
        epilog="exit codes: 0 done, 1 the call failed, 2 usage error, 130 interrupted",
    )
    parser.add_argument(
        "prompt",
        nargs="*",
        help="the prompt (several words are joined; read from stdin when absent and piped)",
    )
    _add_model_options(parser, providers=True)
    parser.add_argument(
        "--until",
        metavar="REGEX",
        type=_regex,
        help="stop as soon as the text so far matches REGEX (the call is cancelled)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the final Response as JSON instead of streaming the text",
    )
    parser.add_argument(
        "--status",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a status line with tokens/s on stderr (default: when stdout is a terminal)",
    )
    parser.add_argument("--version", action="version", version=f"rxllm {rxllm.__version__}")
    return parser


def _demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rxllm demo",
        description="One call on the local model, shared by three consumers with rxllm.tee: "
        "a live printer, a sentence counter (ops.sentences) and a stop predicate "
        "(ops.take_until) that cancels the call after --sentences sentences.",
    )
    parser.add_argument("--prompt", default=DEMO_PROMPT, help=f"default: {DEMO_PROMPT!r}")
    parser.add_argument(
        "--sentences",
        metavar="N",
        type=_positive_int,
        default=2,
        help="stop the call once N sentences are complete (default 2)",
    )
    _add_model_options(parser, providers=False)
    return parser


def _chat_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rxllm chat",
        description="A conversation in the terminal: each answer streams as it is generated. "
        "Ctrl-C during an answer stops the model (the call is cancelled) and keeps what it "
        "said; Ctrl-C or Ctrl-D at the prompt ends the chat. Lines read from a pipe are "
        "the user's turns, one per line.",
    )
    parser.add_argument(
        "model",
        nargs="?",
        default="local",
        help="who answers, as a model string: local (default: SmolLM2-135M in this "
        "process), local:PATH.gguf, openai:MODEL, anthropic:MODEL, groq:MODEL, or any "
        "prefix rxllm.model() knows",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="an OpenAI- or Anthropic-compatible server (vLLM, Ollama, a proxy)",
    )
    parser.add_argument("--system", metavar="TEXT", help="a system prompt")
    parser.add_argument(
        "--max-tokens", metavar="N", type=_positive_int, help="cap each answer's length"
    )
    parser.add_argument("--temperature", metavar="T", type=float, help="sampling temperature")
    parser.add_argument("--seed", metavar="N", type=int, help="sampling seed (local, openai)")
    parser.add_argument(
        "--status",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a status line after each answer on stderr: tokens, tokens/s, elapsed "
        "(default: when stderr is a terminal)",
    )
    return parser


def chat_llm(spec: str, base_url: str | None = None) -> rxllm.LLM:
    """The `LLM` for a model string (`rxllm.model(spec)`), `base_url` over the provider's
    default; a `ValueError` names what is known.

    >>> chat_llm("openai:gpt-4o-mini", base_url="http://127.0.0.1:9/v1").model
    'gpt-4o-mini'
    """
    return rxllm.model(spec, **({"base_url": base_url} if base_url else {}))


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in ("max_tokens", "temperature", "seed"):
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    return params


def llm_from_string(spec: str, *, base_url: str | None = None) -> rxllm.LLM:
    """The LLM a model string names (`rxllm.model(spec)`); `UsageError` for what cannot
    work (an unknown provider, a missing base URL or extra). Every command that picks a
    model by string goes through here.

    >>> llm_from_string("ollama:qwen2.5:0.5b").provider
    'ollama'
    """
    try:
        return chat_llm(spec, base_url)
    except (ImportError, ValueError, TypeError, OSError) as exc:
        raise UsageError(str(exc)) from exc


def _is_model_string(model: str | None, provider: str | None = None) -> bool:
    """Whether `--model` is a model string ("groq:llama-3.3-70b"), not a model's own name:
    its prefix is a known provider; or, without `--provider`, it has a ':' and is no file
    (so a misspelt provider is reported as such, not as a missing GGUF file)."""
    if model is None or ":" not in model:
        return False
    if model.partition(":")[0] in rxllm.registry.providers():
        return True
    return provider is None and not os.path.exists(model)


def _make_llm(provider: str | None, model: str | None, base_url: str | None) -> rxllm.LLM:
    """The LLM for the command line's choice; `UsageError` for what cannot work."""
    if _is_model_string(model, provider):
        assert model is not None
        named = model.partition(":")[0]
        if provider is not None and provider != named:
            raise UsageError(
                f"--provider {provider} and --model {model} disagree: drop --provider (the "
                "model string names its provider)"
            )
        return llm_from_string(model, base_url=base_url)
    provider = provider or "local"
    try:
        if provider == "local":
            if base_url is not None:
                raise UsageError("--base-url is for openai/anthropic, not the local model")
            return rxllm.local(model)
        name = model or DEFAULT_MODELS[provider]
        if provider == "openai":
            return rxllm.openai(name, base_url=base_url)
        return rxllm.anthropic(name, base_url=base_url)
    except (ImportError, ValueError, OSError) as exc:  # missing extra, bad model path
        raise UsageError(str(exc)) from exc


# --------------------------------------------------------------------------- output


class _Clock:
    """When the call started, when its first text arrived, and when it ended."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.ended: float | None = None

    def saw(self, chunk: Chunk) -> None:
        if self.first is None and chunk.content:
            self.first = time.perf_counter()

    def end(self) -> None:
        self.ended = time.perf_counter()

    def rate(self, tokens: int) -> float | None:
        """Tokens per second of generation, from the first text to the end."""
        if self.first is None or self.ended is None or tokens < 2:
            return None
        seconds = self.ended - self.first
        return (tokens - 1) / seconds if seconds > 0 else None


def _tokens(response: Response) -> int:
    """Generated tokens: as reported, else one per chunk (what most providers send)."""
    if response.usage is not None and response.usage.output_tokens:
        return response.usage.output_tokens
    return response.chunk_count


def _status_line(response: Response, clock: _Clock) -> str:
    tokens = _tokens(response)
    parts = [f"{response.provider} {response.model or ''}".strip(), f"{tokens} tokens"]
    rate = clock.rate(tokens)
    if rate is not None:
        parts.append(f"{rate:.1f} tokens/s")
    if clock.first is not None:
        parts.append(f"first token {clock.first - clock.started:.2f} s")
    parts.append(f"finish {response.finish_reason or 'cut short'}")
    return "[" + " · ".join(parts) + "]"


def _write(stream: TextIO, text: str) -> None:
    stream.write(text)
    stream.flush()


# --------------------------------------------------------------------------- commands


def _read_prompt(words: Sequence[str], parser: argparse.ArgumentParser) -> str:
    if words:
        return " ".join(words)
    if not sys.stdin.isatty():
        text = sys.stdin.read().strip()
        if text:
            return text
    parser.print_usage(sys.stderr)
    raise UsageError('give a prompt, e.g. rxllm "Why is the sky blue?" (or try: rxllm demo)')


def _ask(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    prompt = _read_prompt(args.prompt, parser)
    llm = _make_llm(args.provider, args.model, args.base_url)
    try:
        source = llm.stream(prompt, system=args.system, **_params(args))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    clock = _Clock()
    snapshots = source.pipe(rx_ops.do_action(clock.saw), ops.accumulate())
    if args.until is not None:
        pattern: re.Pattern[str] = args.until

        def matched(snapshot: Snapshot) -> bool:  # the whole text: a match may span chunks
            return pattern.search(snapshot.text) is not None

        snapshots = snapshots.pipe(ops.take_until(matched))
    show_status = sys.stdout.isatty() if args.status is None else args.status
    live = not args.json
    last: Snapshot | None = None
    try:
        for snapshot in rxllm.iterate(snapshots):
            last = snapshot
            if live and snapshot.delta.content:
                _write(sys.stdout, snapshot.delta.content)
    except rxllm.LLMError as error:
        clock.end()
        if live and last is not None:
            _write(sys.stdout, "\n")
        _error(f"{type(error).__name__}: {error}")
        return EXIT_CALL_FAILED
    clock.end()
    response = last.response() if last is not None else Response(provider=llm.provider)
    if args.json:
        _write(sys.stdout, json.dumps(response_json(response), ensure_ascii=False) + "\n")
    elif response.text and not response.text.endswith("\n"):
        _write(sys.stdout, "\n")
    if show_status:
        _write(sys.stderr, _status_line(response, clock) + "\n")
    return 0


class _Turn:
    """One answer of a chat: streamed to stdout; Ctrl-C stops it and keeps what came."""

    def __init__(self, source: Observable[Chunk]) -> None:
        self.clock = _Clock()
        self.snapshots = source.pipe(rx_ops.do_action(self.clock.saw), ops.accumulate())
        self.last: Snapshot | None = None
        self.error: rxllm.LLMError | None = None
        self.stopped = False

    def run(self) -> Response:
        try:
            # Leaving this loop (Ctrl-C raises KeyboardInterrupt in it) closes the iterator,
            # which disposes the subscription: the call is cancelled.
            for snapshot in rxllm.iterate(self.snapshots):
                self.last = snapshot
                if snapshot.delta.content:
                    _write(sys.stdout, snapshot.delta.content)
        except KeyboardInterrupt:
            self.stopped = True
        except rxllm.LLMError as error:
            self.error = error
        self.clock.end()
        if self.last is not None:
            return self.last.response()
        if self.error is not None and self.error.partial is not None:
            return self.error.partial
        return Response()

    def status(self, response: Response) -> str:
        tokens = _tokens(response)
        parts = [f"{tokens} tokens"]
        rate = self.clock.rate(tokens)
        if rate is not None:
            parts.append(f"{rate:.1f} tokens/s")
        ended = self.clock.ended if self.clock.ended is not None else time.perf_counter()
        parts.append(f"{ended - self.clock.started:.1f} s")
        if self.stopped:
            parts.append("stopped (the call was cancelled)")
        elif self.error is None:
            parts.append(f"finish {response.finish_reason or 'cut short'}")
        return "[" + " · ".join(parts) + "]"


# A failure that the next turn would meet again: the chat ends (exit 1).
_FATAL = ("AuthenticationError", "PermissionDeniedError", "NotFoundError")


def _chat(args: argparse.Namespace) -> int:
    """A multi-turn conversation: the history grows by each question and answer."""
    llm = llm_from_string(args.model, base_url=args.base_url)
    params = _params(args)
    interactive = sys.stdin.isatty()
    show_status = sys.stderr.isatty() if args.status is None else args.status
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  # line editing and history for input()
    if interactive:
        _write(
            sys.stderr,
            f"rxllm chat · {llm.provider} {llm.model} · Ctrl-C stops an answer, "
            "Ctrl-D (or Ctrl-C here) leaves\n",
        )
    history: list[dict[str, Any]] = []
    while True:
        try:
            line = input("» " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            if interactive:
                _write(sys.stdout, "\n")
            return 0
        question = line.strip()
        if not question:
            continue
        asked = [*history, {"role": "user", "content": question}]
        try:
            source = llm.stream(messages=asked, system=args.system, **params)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        turn = _Turn(source)
        response = turn.run()
        if response.text and not response.text.endswith("\n"):
            _write(sys.stdout, "\n")
        if turn.error is not None:
            _error(f"{type(turn.error).__name__}: {turn.error}")
            if type(turn.error).__name__ in _FATAL:
                return EXIT_CALL_FAILED
        if show_status or turn.stopped:
            _write(sys.stderr, turn.status(response) + "\n")
        answer = response.messages() if response.chunk_count else []
        if answer:  # the partial answer of a stopped call is kept too
            history = [*asked, *answer]
        elif turn.stopped or turn.error is not None:
            _write(sys.stderr, "(no answer: that question was not kept)\n")


def _demo(args: argparse.Namespace) -> int:
    """One call, three consumers: print it, count its sentences, and stop it at N."""
    if _is_model_string(args.model) and not str(args.model).startswith("local:"):
        raise UsageError("rxllm demo runs the local model: --model takes a GGUF file")
    llm = _make_llm("local", args.model, None)
    model = llm._provider.shared  # type: ignore[attr-defined]  # the model this llm runs
    params = {"temperature": 0.0, **_params(args)}
    try:
        source = llm.stream(args.prompt, system=args.system, **params)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    # The call starts with the first subscribed branch; the gate holds it until all three
    # listen, so each chunk reaches them in the order described below (none catches up).
    gate: Subject[bool] = Subject()
    gated = gate.pipe(rx_ops.take(1), rx_ops.flat_map(lambda _: source))
    counter, stopper, printer = rxllm.tee(gated, 3)
    stop: Subject[bool] = Subject()
    clock = _Clock()
    sentences: list[str] = []
    wanted: int = args.sentences

    def print_chunk(chunk: Chunk) -> None:
        clock.saw(chunk)
        _write(sys.stdout, chunk.content)

    def enough(_: Snapshot) -> bool:
        return len(sentences) >= wanted

    _write(sys.stdout, f"» {args.prompt}\n\n")
    # tee hands each chunk to the branches in order: the counter sees a chunk before the
    # stop predicate looks at it, and both before the printer. A sentence is known complete
    # only when the next chunk arrives; when that completes the last one wanted, `stop` ends
    # the other branches before the printer shows the next sentence's first word, and with
    # no branch left listening the call is cancelled.
    completed: Observable[str] = ops.sentences()(counter)
    # The call's own errors reach all three branches and are reported from the stopper's.
    # The printer's own failure (stdout closed: `rxllm demo | head -3`) ends the run.
    printer_failed: list[Exception] = []
    halt: Subject[bool] = Subject()

    def printer_error(error: Exception) -> None:
        if not isinstance(error, rxllm.LLMError):
            printer_failed.append(error)
            halt.on_next(True)

    subscriptions = [
        printer.pipe(ops.take_until(stop)).subscribe(on_next=print_chunk, on_error=printer_error),
        completed.pipe(ops.take_until(stop)).subscribe(
            on_next=sentences.append, on_error=lambda _: None
        ),
    ]
    until_enough: Observable[Snapshot] = stopper.pipe(
        ops.accumulate(), ops.take_until(enough), ops.take_until(halt)
    )
    snapshots = until_enough.pipe(rx_ops.do_action(on_completed=lambda: stop.on_next(True)))
    try:
        response = rxllm.collect(_then(snapshots, lambda: gate.on_next(True)))
        if printer_failed:
            raise printer_failed[0]
    except rxllm.LLMError as error:
        _write(sys.stdout, "\n")
        _error(f"{type(error).__name__}: {error}")
        return EXIT_CALL_FAILED
    finally:
        clock.end()
        stop.on_next(True)
        for subscription in subscriptions:
            subscription.dispose()
    summary = _demo_summary(response, clock, len(sentences), wanted, model.load_seconds)
    _write(sys.stdout, "\n\n" + summary + "\n")
    return 0


def _then(source: Observable[T], action: Callable[[], None]) -> Observable[T]:
    """`source`, running `action` right after each subscription to it."""

    def subscribe(
        observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        subscription = source.subscribe(observer, scheduler=scheduler)
        action()
        return subscription

    return reactivex.create(subscribe)


def _demo_summary(
    response: Response, clock: _Clock, sentences: int, wanted: int, load_seconds: float | None
) -> str:
    tokens = _tokens(response)
    rate = clock.rate(tokens)
    counted = f"{sentences} sentence{'' if sentences == 1 else 's'}"
    if response.finish_reason is None:
        how = f"stopped by take_until after {counted} (the call was cancelled)"
    else:
        how = f"finished by the model ({response.finish_reason}) after {counted}"
    usage = response.usage
    if usage is not None:
        used = (
            f"{usage.input_tokens} prompt + {usage.output_tokens} generated = "
            f"{usage.total_tokens} tokens"
        )
    else:
        used = "not reported"
    speed = f"{rate:.1f} tokens/s" if rate is not None else "n/a"
    if clock.first is not None:
        speed += f", first token after {clock.first - clock.started:.2f} s"
    lines = [
        "── one call, three consumers (rxllm.tee): printer · ops.sentences() · "
        f"ops.take_until({wanted} sentence{'' if wanted == 1 else 's'})",
        f"   model        {response.provider} {response.model}",
        f"   finish       {how}",
        f"   text         {len(response.text)} characters in {response.chunk_count} chunks",
        f"   usage        {used}",
        f"   speed        {speed}",
    ]
    if load_seconds is not None:
        lines.append(f"   model load   {load_seconds:.2f} s (once per process)")
    return "\n".join(lines)


def _error(message: str) -> None:
    _write(sys.stderr, f"rxllm: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `rxllm` command line; returns the exit code.

    >>> main(["--base-url", "http://localhost:8000/v1", "Hi"])  # the message goes to stderr
    2
    """
    for stream in (sys.stdout, sys.stderr):
        # A terminal or file that cannot encode every character (e.g. cp1252) gets "?"
        # for it rather than a UnicodeEncodeError in the middle of an answer.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    arguments = list(sys.argv[1:] if argv is None else argv)
    commands = {"demo": (_demo_parser, _demo), "chat": (_chat_parser, _chat)}
    if arguments and arguments[0] in commands:
        make_parser, command = commands[arguments[0]]
        args = make_parser().parse_args(arguments[1:])
        run = functools.partial(command, args)
    else:
        parser = _prompt_parser()
        run = functools.partial(_ask, parser.parse_args(arguments), parser)
    try:
        return run()
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _write(sys.stderr, "\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `rxllm demo | head -3`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CALL_FAILED
    except OSError as exc:  # e.g. `rxllm demo > /dev/full`
        with contextlib.suppress(OSError):
            _error(f"cannot write the output: {exc}")
        return EXIT_CALL_FAILED
