"""`rxllm.display`: live Markdown in a real Jupyter kernel, printing elsewhere, and the
interrupt that cancels the call.

The notebook tests execute a notebook with `nbclient` in an IPython kernel (`python3`,
this interpreter), against a loopback server in the test process: its record shows the
call closed when the kernel is interrupted mid-answer.
"""

from __future__ import annotations

import _thread
import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

import rxllm
from rxllm import ops
from rxllm.notebook import STOPPED
from rxllm.testing import Script, Server

ANSWER = "# Why\n\nThe sky is **blue** because air scatters short waves more."
LONG = [f"w{i} " for i in range(3000)]


def llm(server: Server) -> rxllm.LLM:
    return rxllm.openai("m", base_url=server.url, api_key="sk-notebook", max_retries=0)


def _interrupt_main_when(condition: Callable[[], bool]) -> threading.Thread:
    """Ctrl-C for this (the main) thread, once `condition` holds: as a user would."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while not condition():
            if time.monotonic() > deadline:
                return  # never interrupt outside the display: the test fails on its own
            time.sleep(0.01)
        _thread.interrupt_main()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def _streaming(server: Server, chunks: int = 5) -> Callable[[], bool]:
    return lambda: bool(server.requests) and server.requests[-1].chunks_written >= chunks


@pytest.mark.timeout(60)
class TestOutsideANotebook:
    """Printed as it arrives; Ctrl-C cancels the call; the Response is returned."""

    def test_prints_the_text_and_returns_the_response(
        self, server: Server, capsys: pytest.CaptureFixture[str]
    ) -> None:
        server.push(Script(ANSWER, delay=0.002))
        response = rxllm.display(llm(server).stream("why?"))
        assert capsys.readouterr().out == ANSWER + "\n"
        assert response.text == ANSWER
        assert response.finish_reason == "stop"

    def test_takes_snapshots_too(self, capsys: pytest.CaptureFixture[str]) -> None:
        source = rxllm.scripted("One. Two.").stream("x").pipe(ops.accumulate())
        assert rxllm.display(source).text == "One. Two."
        assert capsys.readouterr().out == "One. Two.\n"

    def test_ctrl_c_cancels_the_call_and_returns_what_came(
        self, server: Server, capsys: pytest.CaptureFixture[str]
    ) -> None:
        server.push(Script(LONG, delay=0.005))
        watcher = _interrupt_main_when(_streaming(server))
        response = rxllm.display(llm(server).stream("talk"))
        watcher.join()
        request = server.last
        assert request.wait_closed(5)
        assert request.chunks_written < len(LONG)
        assert response.finish_reason is None
        assert response.text and "".join(LONG).startswith(response.text)
        out = capsys.readouterr().out
        assert out == response.text + "\n" + STOPPED + "\n"

    def test_ctrl_c_with_interrupt_raise_cancels_then_raises(self, server: Server) -> None:
        server.push(Script(LONG, delay=0.005))
        watcher = _interrupt_main_when(_streaming(server))
        with pytest.raises(KeyboardInterrupt):
            rxllm.display(llm(server).stream("talk"), interrupt="raise")
        watcher.join()
        assert server.last.wait_closed(5)
        assert server.last.chunks_written < len(LONG)

    def test_a_failed_call_shows_what_came_then_raises(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        failing = rxllm.scripted("Half an", error=rxllm.StreamInterrupted("cut"))
        with pytest.raises(rxllm.StreamInterrupted) as raised:
            rxllm.display(failing.stream("x"))
        assert raised.value.partial is not None and raised.value.partial.text == "Half an"
        assert capsys.readouterr().out == "Half an\n**StreamInterrupted**: cut\n"

    def test_items_that_are_not_chunks_are_a_type_error_and_cancel(self, server: Server) -> None:
        server.push(Script(LONG, delay=0.005))
        with pytest.raises(TypeError, match=r"drop operators like text\(\)"):
            rxllm.display(llm(server).stream("x").pipe(ops.text()))
        assert server.last.wait_closed(5)
        assert server.last.chunks_written < len(LONG)

    @pytest.mark.parametrize(
        ("call", "error", "match"),
        [
            (lambda: rxllm.display("hi"), TypeError, "takes an Observable"),
            (
                lambda: rxllm.display(rxllm.scripted("x").stream("x"), interrupt="stop"),
                ValueError,
                "interrupt",
            ),
            (
                lambda: rxllm.display(rxllm.scripted("x").stream("x"), interval=-1),
                ValueError,
                "interval",
            ),
        ],
    )
    def test_bad_arguments(self, call: Callable[[], Any], error: type, match: str) -> None:
        with pytest.raises(error, match=match):
            call()


# ----------------------------------------------------------------------------- notebook

SETUP = """\
import json
import rxllm
from IPython.display import DisplayHandle

llm = rxllm.openai("m", base_url={url!r}, api_key="sk-notebook", max_retries=0)
shown = []  # every Markdown the output was updated to, in order
_update = DisplayHandle.update
def _spy(self, obj, **kwargs):
    shown.append(obj["text/markdown"] if isinstance(obj, dict) else obj.data)
    _update(self, obj, **kwargs)
DisplayHandle.update = _spy
"""
STREAM = 'response = rxllm.display(llm.stream("Why is the sky blue?"))'
REPORT = """\
print(json.dumps({"text": response.text, "finish": response.finish_reason, "shown": shown}))
shown.clear()
"""
INTERRUPTED = 'stopped = rxllm.display(llm.stream("Talk for ever."))'
REPORT_STOPPED = """\
print(json.dumps({"text": stopped.text, "finish": stopped.finish_reason, "shown": shown[-1]}))
"""


def _notebook(url: str) -> nbformat.NotebookNode:
    cells = [SETUP.format(url=url), STREAM, REPORT, INTERRUPTED, REPORT_STOPPED]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.cells[3].metadata["interrupt_when_streaming"] = True
    return notebook


async def _execute(
    notebook: nbformat.NotebookNode, streaming: Callable[[], Awaitable[None]]
) -> None:
    """Run every cell in a fresh `python3` kernel; interrupt the marked one mid-stream."""
    client = NotebookClient(notebook, timeout=120, kernel_name="python3")
    async with client.async_setup_kernel():
        for index, cell in enumerate(notebook.cells):
            running = asyncio.ensure_future(client.async_execute_cell(cell, index))
            if cell.metadata.get("interrupt_when_streaming"):
                await streaming()
                await client.km.interrupt_kernel()  # Jupyter's stop button
            await running


def _printed(cell: nbformat.NotebookNode) -> dict[str, Any]:
    [output] = [o for o in cell.outputs if o.output_type == "stream"]
    return json.loads(output.text)  # type: ignore[no-any-return]


def _markdown(cell: nbformat.NotebookNode) -> str:
    [output] = cell.outputs
    assert output.output_type == "display_data"
    assert output.data["text/plain"] == output.data["text/markdown"]
    return output.data["text/markdown"]  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_notebook_shows_the_stream_live_and_its_stop_button_cancels_the_call(
    server: Server,
) -> None:
    server.push(Script(ANSWER, delay=0.08))  # slow enough for several updates
    server.push(Script(LONG, delay=0.01))
    notebook = _notebook(server.url)

    async def streaming() -> None:  # the second call is under way
        deadline = time.monotonic() + 120
        while not (len(server.requests) >= 2 and server.requests[1].chunks_written >= 5):
            assert time.monotonic() < deadline, "the interrupted cell never streamed"
            await asyncio.sleep(0.02)

    asyncio.run(_execute(notebook, streaming))

    # The answer is one Markdown output, updated in place until it held the whole text.
    assert _markdown(notebook.cells[1]) == ANSWER
    report = _printed(notebook.cells[2])
    assert report["text"] == ANSWER and report["finish"] == "stop"
    shown = report["shown"]
    assert len(shown) >= 3  # it grew while streaming, not once at the end
    assert all(ANSWER.startswith(text) for text in shown[:-1])
    assert [len(text) for text in shown] == sorted(len(text) for text in shown)
    assert shown[-1] == ANSWER

    # The stop button: the call was closed mid-answer; the cell kept the partial answer.
    interrupted = server.requests[1]
    assert interrupted.wait_closed(10)
    assert interrupted.chunks_written < len(LONG)
    stopped = _printed(notebook.cells[4])
    assert stopped["finish"] is None
    assert stopped["text"] and "".join(LONG).startswith(stopped["text"])
    assert stopped["shown"] == stopped["text"] + "\n\n" + STOPPED
    assert _markdown(notebook.cells[3]) == stopped["shown"]
    assert not any(o.output_type == "error" for cell in notebook.cells for o in cell.outputs)
