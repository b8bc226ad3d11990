"""Input parts through the real SDKs over the loopback server: the exact request body each
protocol is sent (the bytes decode back to the file), the parts a provider cannot take
refused by `stream()` before any request, and parts kept by a tool loop's next call and a
retry's continuation."""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path
from typing import Any

import pytest
from conftest import Media
from PIL import Image as PILImage

import rxllm
from rxllm import ops
from rxllm.llm import LLM
from rxllm.models import Chunk, ToolCallDelta
from rxllm.parts import UnsupportedPart
from rxllm.providers.anthropic import AnthropicProvider
from rxllm.providers.anthropic_messages import MessagesCodec
from rxllm.providers.openai import OpenAIProvider
from rxllm.providers.openai_chat import ChatCodec
from rxllm.testing import Script, Server

KEY = "sk-parts"
PROVIDERS = ["openai", "anthropic"]


def make(provider: str, server: Server, **defaults: Any) -> rxllm.LLM:
    factory = rxllm.openai if provider == "openai" else rxllm.anthropic
    return factory("test-model", base_url=server.url, api_key=KEY, max_retries=0, **defaults)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{b64(data)}"


def test_chat_completions_request_body(server: Server, media: Media, tmp_path: Path) -> None:
    (tmp_path / "cat.jpg").write_bytes(media.jpeg)
    (tmp_path / "paper.pdf").write_bytes(media.pdf)
    server.push(Script("A red square, silence and a page."))
    prompt = [
        "What are these?",
        rxllm.Image(tmp_path / "cat.jpg", detail="low"),
        rxllm.Image("https://example.com/dog.png"),
        rxllm.Audio(media.wav),
        rxllm.Audio(f"data:audio/mpeg;base64,{b64(media.mp3)}"),
        rxllm.Document(tmp_path / "paper.pdf"),
    ]
    answer = rxllm.collect(make("openai", server).stream(prompt), timeout=10)

    assert answer.text == "A red square, silence and a page."
    assert server.last.body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What are these?"},
                {
                    "type": "image_url",
                    "image_url": {"url": data_url("image/jpeg", media.jpeg), "detail": "low"},
                },
                {"type": "image_url", "image_url": {"url": "https://example.com/dog.png"}},
                {"type": "input_audio", "input_audio": {"data": b64(media.wav), "format": "wav"}},
                {"type": "input_audio", "input_audio": {"data": b64(media.mp3), "format": "mp3"}},
                {
                    "type": "file",
                    "file": {
                        "filename": "paper.pdf",
                        "file_data": data_url("application/pdf", media.pdf),
                    },
                },
            ],
        }
    ]


def test_anthropic_request_body(server: Server, media: Media, tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(media.png)
    server.push(Script("Two pictures and two papers."))
    messages = [
        {"role": "system", "content": "You read pictures and papers."},
        {
            "role": "user",
            "content": [
                rxllm.Image(tmp_path / "cat.png"),
                rxllm.Image("https://example.com/dog.webp"),
                rxllm.Document(media.pdf),
                rxllm.Document("https://example.com/paper.pdf"),
                "Summarize them.",
            ],
        },
    ]
    answer = rxllm.collect(make("anthropic", server).stream(messages=messages), timeout=10)

    assert answer.text == "Two pictures and two papers."
    body = server.last.body
    assert body["system"] == "You read pictures and papers."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": b64(media.png)},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/dog.webp"}},
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": b64(media.pdf),
                    },
                },
                {
                    "type": "document",
                    "source": {"type": "url", "url": "https://example.com/paper.pdf"},
                },
                {"type": "text", "text": "Summarize them."},
            ],
        }
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_sent_bytes_are_the_file(server: Server, media: Media, provider: str) -> None:
    """What the server received decodes back to the image and the sound."""
    server.push(Script("Seen."))
    parts: list[Any] = ["Look", rxllm.Image(media.png)]
    parts += [rxllm.Audio(media.wav)] if provider == "openai" else []
    rxllm.collect(make(provider, server).stream(parts), timeout=10)
    content = server.last.body["messages"][0]["content"]
    if provider == "openai":
        image = base64.b64decode(content[1]["image_url"]["url"].split(",", 1)[1])
        with wave.open(io.BytesIO(base64.b64decode(content[2]["input_audio"]["data"]))) as sound:
            assert (sound.getframerate(), sound.getnframes()) == (8000, 80)
    else:
        image = base64.b64decode(content[1]["source"]["data"])
    with PILImage.open(io.BytesIO(image)) as picture:
        assert (picture.format, picture.size) == ("PNG", (3, 2))
        assert picture.convert("RGB").getpixel((0, 0)) == (200, 30, 40)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_asyncio_calls_send_the_same_parts(
    server: Server, media: Media, provider: str
) -> None:
    server.push(Script("A red square."))
    answer = await rxllm.acollect(make(provider, server).stream(["What?", rxllm.Image(media.gif)]))
    assert answer.text == "A red square."
    request = await server.wait_for_request_async()
    sent = request.body["messages"][0]["content"][1]
    if provider == "openai":
        assert sent["image_url"]["url"] == data_url("image/gif", media.gif)
    else:
        assert sent["source"] == {
            "type": "base64",
            "media_type": "image/gif",
            "data": b64(media.gif),
        }


@pytest.mark.parametrize(
    ("provider", "make_part", "says"),
    [
        ("anthropic", lambda m: rxllm.Audio(m.wav), "takes no audio input"),
        (
            "anthropic",
            lambda m: rxllm.Image(m.bmp),
            "JPEG, PNG, GIF and WebP images, not image/bmp",
        ),
        ("openai", lambda m: rxllm.Audio("https://example.com/a.wav"), "as data, not a URL"),
        ("openai", lambda m: rxllm.Audio(m.ogg), "WAV or MP3 audio, not audio/ogg"),
        ("openai", lambda m: rxllm.Document("https://example.com/a.pdf"), "api='responses'"),
    ],
)
def test_a_part_the_provider_cannot_take_is_refused_by_stream(
    server: Server, media: Media, provider: str, make_part: Any, says: str
) -> None:
    part = make_part(media)
    protocol = "Chat Completions" if provider == "openai" else "the Messages API"
    with pytest.raises(UnsupportedPart, match=says) as caught:
        make(provider, server).stream(["Hi", part])
    assert str(caught.value).startswith(
        f"{provider} ({protocol}) cannot take {part!r} at messages[0].content[1]: "
    )
    assert isinstance(caught.value, ValueError)
    assert server.requests == []  # refused before anything was sent


def test_a_service_speaking_the_protocol_is_named(server: Server, media: Media) -> None:
    groq = LLM(OpenAIProvider("m", ChatCodec, api_key=KEY, base_url=server.url, name="groq"))
    with pytest.raises(ValueError, match=r"^groq \(Chat Completions\) cannot take Audio"):
        groq.stream(["Hi", rxllm.Audio("https://example.com/a.mp3")])
    bedrock = LLM(
        AnthropicProvider("m", MessagesCodec, api_key=KEY, base_url=server.url, name="bedrock")
    )
    with pytest.raises(ValueError, match=r"^bedrock \(the Messages API\) cannot take Audio"):
        bedrock.stream(messages=[{"role": "user", "content": [rxllm.Audio(media.wav)]}])
    assert server.requests == []


def call(index: int, id: str, name: str, arguments: str) -> Chunk:
    return Chunk(tool_calls=(ToolCallDelta(index=index, id=id, name=name, arguments=arguments),))


def zoom(factor: int) -> str:
    """Zoom into the picture."""
    return f"zoomed {factor}x: a red square"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_tool_loop_s_next_call_keeps_the_parts(
    server: Server, media: Media, provider: str
) -> None:
    server.push(Script(["Let me zoom.", call(0, "call_1", "zoom", '{"factor": 2}')]))
    server.push(Script("It is a red square."))
    prompt = ["What is in this picture?", rxllm.Image(media.png)]
    answer = rxllm.collect(
        make(provider, server).stream(prompt, tools=[zoom]).pipe(ops.tool_loop()), timeout=10
    )

    assert answer.text == "It is a red square."
    assert len(server.requests) == 2
    first, second = (request.body["messages"] for request in server.requests)
    assert second[0] == first[0]  # the user's turn, with its image, sent again as it was
    image = first[0]["content"][1]
    if provider == "openai":
        assert image["image_url"]["url"] == data_url("image/png", media.png)
        assert [m["role"] for m in second] == ["user", "assistant", "tool"]
    else:
        assert image["source"]["data"] == b64(media.png)
        assert [m["role"] for m in second] == ["user", "assistant", "user"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_retry_continuation_keeps_the_parts(server: Server, media: Media, provider: str) -> None:
    server.push(Script(["The picture ", "shows ", "a red ", "square."], drop_after=2))
    server.push(Script(["a red ", "square."]))
    prompt = ["Describe:", rxllm.Document(media.pdf), rxllm.Image(media.png)]
    answer = rxllm.collect(
        make(provider, server).stream(prompt).pipe(ops.retry(attempts=2, backoff=0)), timeout=10
    )

    assert answer.text == "The picture shows a red square."
    assert len(server.requests) == 2
    first, second = (request.body["messages"] for request in server.requests)
    assert second[0] == first[0]  # the parts, sent again as they were
    kinds = [part["type"] for part in first[0]["content"]]
    if provider == "openai":
        assert kinds == ["text", "file", "image_url"]
        assert second[1:] == [
            {"role": "assistant", "content": "The picture shows "},
            {"role": "user", "content": second[2]["content"]},  # the instruction to continue
        ]
    else:
        assert kinds == ["text", "document", "image"]
        assert second[1:] == [{"role": "assistant", "content": "The picture shows"}]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_answer_continues_a_conversation_with_parts(
    server: Server, media: Media, provider: str
) -> None:
    """A history written by hand, with a part in an earlier user turn, goes back whole."""
    llm = make(provider, server)
    server.push(Script("A red square."))
    first_turn = {"role": "user", "content": ["What is this?", rxllm.Image(media.png)]}
    answer = rxllm.collect(llm.stream(messages=[first_turn]), timeout=10)
    server.push(Script("Red."))
    history = [first_turn, answer.message(), {"role": "user", "content": "Which color?"}]
    assert rxllm.collect(llm.stream(messages=history), timeout=10).text == "Red."
    sent = server.last.body["messages"]
    assert sent[0] == server.requests[0].body["messages"][0]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]


def test_the_responses_api_gets_input_image_and_refuses_audio(media: Media) -> None:
    """The Responses codec sends parts in its own form, and refuses audio at `stream()`."""
    with Server() as server:
        server.push(Script("A picture."))
        llm = rxllm.openai("m", api="responses", base_url=server.url, api_key="k")
        image = rxllm.Image(media.png)
        assert rxllm.collect(llm.stream(["What is this?", image]), timeout=10).text == "A picture."
        content = server.last.body["input"][0]["content"]
        assert content[0] == {"type": "input_text", "text": "What is this?"}
        assert content[1]["type"] == "input_image"
        assert content[1]["image_url"] == image.as_data_url()
        with pytest.raises(ValueError, match=r"Responses API.*Audio"):
            llm.stream(["Listen", rxllm.Audio(media.wav)])
        assert len(server.requests) == 1  # nothing sent for the refused call
