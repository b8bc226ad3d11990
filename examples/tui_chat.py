"""A terminal chat with Textual: the answer streams in as Markdown, Esc stops the model.

Run: python examples/tui_chat.py                       # the local model (rxllm[local])
     python examples/tui_chat.py --model openai:gpt-4o-mini
     python examples/tui_chat.py --model scripted      # a canned answer, no model at all
(needs `pip install 'rxllm[tui]'`).

Each question is one `llm.stream(messages=...)` call carrying the conversation so far.
Its chunks go through `ops.accumulate()` and `ops.take_until(stop)`: pressing Esc emits on
`stop`, which ends the stream and disposes the subscription, so the provider call is
cancelled (its HTTP response closed, or the local model stopped) and the partial answer
is kept in the conversation. The status line shows tokens, tokens/s and elapsed time.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, ClassVar

from reactivex.subject import Subject
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Input, Markdown, Static

import rxllm
from rxllm import ops
from rxllm.cli import chat_llm

DEMO_ANSWER = (
    "## Reactive streams\n\nEvery call is an **Observable** of chunks. You can:\n\n"
    "- stop it early with `take_until` (press *Esc* now),\n"
    "- fan it out with `tee`,\n- or materialize a `Response` at the end.\n\n"
    + " ".join(f"Word {i}." for i in range(200))
)


class Turn:
    """How one answer is going: tokens so far, speed, elapsed time, and how it ended."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first: float | None = None
        self.ended: float | None = None
        self.tokens = 0
        self.state = "thinking…"

    def saw(self, snapshot: rxllm.Snapshot) -> None:
        if snapshot.delta.content:
            if self.first is None:
                self.first = time.monotonic()
            self.state = "streaming · Esc stops"
        usage = snapshot.usage
        # Tokens as reported, else one per chunk with text (what most providers send).
        if usage is not None and usage.output_tokens:
            self.tokens = usage.output_tokens
        elif snapshot.delta.content:
            self.tokens += 1

    def end(self, state: str) -> None:
        self.ended = time.monotonic()
        self.state = state

    def line(self, model: str) -> str:
        now = self.ended if self.ended is not None else time.monotonic()
        parts = [model, f"{self.tokens} tokens"]
        if self.first is not None and self.tokens > 1 and now > self.first:
            parts.append(f"{(self.tokens - 1) / (now - self.first):.1f} tokens/s")
        parts += [f"{now - self.started:.1f} s", self.state]
        return " · ".join(parts)


class ChatApp(App[None]):
    """A chat with one `rxllm.LLM`; the conversation is kept across turns."""

    CSS = """
    #log { height: 1fr; padding: 0 1; }
    .user { background: $boost; margin: 1 0 0 0; }
    .assistant { margin: 0 0 1 0; }
    #status { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "stop", "Stop the answer", priority=True),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, llm: rxllm.LLM, *, system: str | None = None, **params: Any) -> None:
        super().__init__()
        self.llm = llm
        self.system = system
        self.params = params
        self.messages: list[dict[str, Any]] = []
        """The conversation so far, as sent with each call."""
        self.responses: list[rxllm.Response] = []
        """Every answer's `Response` (a stopped one's is partial: `finish_reason` None)."""
        self.turn: Turn | None = None
        self.streaming = False
        self._stop: Subject[bool] = Subject()
        self.model_name = f"{llm.provider} {llm.model}"

    def compose(self) -> ComposeResult:
        yield VerticalScroll(id="log")
        yield Input(placeholder="Ask something; Enter sends, Esc stops the answer", id="prompt")
        yield Static(f"{self.model_name} · ready", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"rxllm chat · {self.model_name}"
        self.query_one("#prompt", Input).focus()
        self.set_interval(0.2, self.refresh_status)

    def refresh_status(self) -> None:
        if self.turn is not None:
            self.query_one("#status", Static).update(self.turn.line(self.model_name))

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question or self.streaming:
            return
        event.input.clear()
        log = self.query_one("#log", VerticalScroll)
        await log.mount(Markdown(question, classes="user"))
        answer = Markdown("", classes="assistant")
        await log.mount(answer)
        self.streaming = True
        self.answer(question, answer)

    @work(exclusive=True)
    async def answer(self, question: str, widget: Markdown) -> None:
        """Stream one answer into `widget`; Esc (`action_stop`) ends it early."""
        asked = [*self.messages, {"role": "user", "content": question}]
        turn = self.turn = Turn()
        source = self.llm.stream(messages=asked, system=self.system, **self.params).pipe(
            ops.accumulate(), ops.take_until(self._stop)
        )
        stream = Markdown.get_stream(widget)
        log = self.query_one("#log", VerticalScroll)
        last: rxllm.Snapshot | None = None
        failure: rxllm.LLMError | None = None
        try:
            async for snapshot in rxllm.aiterate(source):
                last = snapshot
                turn.saw(snapshot)
                await stream.write(snapshot.delta.content)
                log.scroll_end(animate=False)
        except rxllm.LLMError as error:
            failure = error
        finally:
            await stream.stop()
        response = last.response() if last is not None else rxllm.Response()
        if failure is not None:
            turn.end(f"failed: {type(failure).__name__}")
            await widget.append(f"\n\n**{type(failure).__name__}**: {failure}")
        elif response.finish_reason is None:
            turn.end("stopped (the call was cancelled)")
        else:
            turn.end(f"done ({response.finish_reason})")
        self.responses.append(response)
        kept = response.messages() if response.chunk_count else []
        if kept:  # a stopped answer is kept too: the model sees what it had said
            self.messages = [*asked, *kept]
        self.streaming = False
        self.refresh_status()

    def action_stop(self) -> None:
        """Esc: end the stream; disposing it cancels the provider call."""
        if self.streaming:
            self._stop.on_next(True)


def make_llm(model: str, base_url: str | None = None) -> rxllm.LLM:
    """The model named on the command line (`scripted` is a canned demo answer)."""
    if model == "scripted":
        return rxllm.scripted(DEMO_ANSWER, delay=0.03)
    return chat_llm(model, base_url)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        default="local",
        help="local (default), local:PATH.gguf, openai:MODEL, anthropic:MODEL, scripted, "
        "or any model string rxllm.model() knows",
    )
    parser.add_argument("--base-url", help="an OpenAI- or Anthropic-compatible server")
    parser.add_argument("--system", help="a system prompt")
    parser.add_argument("--max-tokens", type=int, help="cap each answer's length")
    args = parser.parse_args(argv)
    params = {"max_tokens": args.max_tokens} if args.max_tokens else {}
    try:
        llm = make_llm(args.model, args.base_url)
    except (ImportError, ValueError, OSError) as exc:
        parser.error(str(exc))
    ChatApp(llm, system=args.system, **params).run()


if __name__ == "__main__":
    main()
