"""The web chat example in a real browser: Debian's chromium, driven by Playwright.

The page's model is `rxllm.openai(...)` on the loopback server, answering slowly from a
script. The test types a prompt, watches the answer grow chunk by chunk and the token
counter climb, takes the screenshot `docs/web_chat.png` mid-stream, presses Stop, and reads
the loopback server's record: the upstream call was closed and nothing more was written
to it than a second's worth.

Chromium is never downloaded: `apt-get install chromium` (see `.ci/run`). Without it the
test fails in CI (`CI=true`) and is skipped elsewhere, saying why.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import rxllm
from rxllm import Usage
from rxllm.testing import Script, Server

from .conftest import serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RXLLM_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "web_chat.png"

STORY = (
    "Once upon a time, a stream of tokens left a model and crossed the network one word "
    "at a time. Every word was an event, every event a small promise that more would come. "
    "The reader watched the sentence grow, and when she had read enough she pressed Stop. "
    "The browser dropped its connection, the server noticed at once, and the model, "
    "far away, was told to stop writing. Nobody paid for the words that were never written. "
) * 4
FIRST_ANSWER = "Hello! I stream every answer as it is written. Ask me for a story."


def need_browser() -> Any:
    """Playwright's sync API, or a loud failure in CI / a skip elsewhere when the browser
    cannot be driven."""
    missing = []
    if shutil.which(CHROMIUM) is None:
        missing.append(f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        missing.append("the playwright package (pip install 'rxllm[web-test]')")
        sync_api = None
    if missing:
        reason = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: CI must install it (.ci/run)")
        pytest.skip(reason)
    return sync_api


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_chat", ROOT / "examples/web_chat/app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def chat_url(server: Server) -> Iterator[str]:
    llm = rxllm.openai("gpt-4o-mini", base_url=server.url, api_key="test-key", max_retries=0)
    with serve(load_example().create_app(llm)) as url:
        yield url


def test_the_text_streams_in_and_stop_cancels_the_model(server: Server, chat_url: str) -> None:
    sync_api = need_browser()
    server.push(Script(FIRST_ANSWER, delay=0.02, usage=Usage(input_tokens=9, output_tokens=14)))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page(viewport={"width": 960, "height": 640})
            page.goto(chat_url)
            page.wait_for_function("document.getElementById('model').textContent !== ''")
            assert page.inner_text("#model") == "openai · gpt-4o-mini"

            # a first turn, to the end: the exact token count comes from the usage
            page.fill("#prompt", "Hi!")
            page.press("#prompt", "Enter")
            page.wait_for_function("document.getElementById('status').textContent !== 'streaming…'")
            assert page.inner_text("#status") == "done (stop)"
            assert page.inner_text(".message.assistant .part.text") == FIRST_ANSWER
            assert page.inner_text("#tokens").startswith("14 tokens")

            # a second turn, slow: watch it grow, then stop it
            server.push(Script(STORY, delay=0.08))
            page.fill("#prompt", "Tell me a story about streams.")
            page.click("#send")
            answer = ".message.assistant >> nth=1 >> .part.text"
            lengths = [0]
            for _ in range(6):  # the text grows, a chunk at a time, while we watch
                page.wait_for_function(
                    "n => (document.querySelectorAll('.message.assistant')[1]"
                    "?.querySelector('.part.text')?.textContent.length ?? 0) > n",
                    arg=lengths[-1],
                    timeout=15_000,
                )
                lengths.append(len(page.inner_text(answer)))
            shown = page.inner_text(answer)
            assert STORY.startswith(shown.rstrip())
            assert lengths == sorted(lengths) and len(set(lengths)) == len(lengths)
            assert len(shown) < len(STORY)
            counter = page.inner_text("#tokens")
            assert counter.startswith("~") and int(counter[1:].split()[0]) >= 6
            assert page.is_visible("#stop") and not page.is_visible("#send")

            page.wait_for_function(  # a few lines of text for the picture
                "document.querySelectorAll('.message.assistant')[1]"
                ".querySelector('.part.text').textContent.length > 240",
                timeout=15_000,
            )
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))

            record = server.last
            page.click("#stop")
            written = record.chunks_written
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('stopped')"
            )
            assert record.wait_closed(10), "Stop did not close the upstream call"
            assert record.chunks_written - written <= 13  # a second at 0.08 s a chunk
            assert not record.finished
            assert page.is_visible("#send")

            # what the page shows stopped with the model: it is what was written, no more
            final = page.inner_text(answer)
            assert STORY.startswith(final.rstrip())
            assert len(final.split()) <= record.chunks_written
        finally:
            browser.close()

    # the second request carried the conversation, the first answer included
    assert [(m["role"], m["content"]) for m in record.body["messages"]] == [
        ("user", "Hi!"),
        ("assistant", FIRST_ANSWER),
        ("user", "Tell me a story about streams."),
    ]
