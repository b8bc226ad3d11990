"""Input parts (`rxllm.Image`, `rxllm.Audio`, `rxllm.Document`): what they are made from,
how their media type is told, each protocol's form of them, and prompts and messages that
hold them. The same parts through the real SDKs: `tests/providers/test_parts_loopback.py`."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from conftest import Media

import rxllm
from rxllm.parts import (
    Part,
    UnsupportedPart,
    check_parts,
    part_problem,
    part_to_wire,
    wire_message,
    wire_messages,
)

KINDS = [
    # (class, media fixture's name, file name, media type)
    (rxllm.Image, "png", "cat.png", "image/png"),
    (rxllm.Image, "jpeg", "cat.jpg", "image/jpeg"),
    (rxllm.Image, "gif", "cat.gif", "image/gif"),
    (rxllm.Image, "webp", "cat.webp", "image/webp"),
    (rxllm.Audio, "wav", "clip.wav", "audio/wav"),
    (rxllm.Audio, "mp3", "clip.mp3", "audio/mpeg"),
    (rxllm.Document, "pdf", "paper.pdf", "application/pdf"),
]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class TestMadeFrom:
    """A path (str or PathLike), the bytes, an http(s) URL or a data: URL."""

    @pytest.mark.parametrize(("cls", "kind", "name", "media_type"), KINDS)
    def test_a_path_is_read_at_once(
        self, media: Media, tmp_path: Path, cls: type[Part], kind: str, name: str, media_type: str
    ) -> None:
        path = tmp_path / name
        path.write_bytes(getattr(media, kind))
        for given in (path, str(path)):
            part = cls(given)
            assert part.data == getattr(media, kind)
            assert part.media_type == media_type
            assert part.filename == name
            assert part.url is None
        path.unlink()  # read when made: the part keeps what it will send
        assert part.data == getattr(media, kind)

    @pytest.mark.parametrize(("cls", "kind", "name", "media_type"), KINDS)
    def test_bytes_are_told_by_their_magic_numbers(
        self, media: Media, cls: type[Part], kind: str, name: str, media_type: str
    ) -> None:
        for given in (getattr(media, kind), bytearray(getattr(media, kind))):
            part = cls(given)
            assert part.data == getattr(media, kind)
            assert type(part.data) is bytes
            assert part.media_type == media_type
            assert part.filename is None

    def test_the_bytes_win_over_a_wrong_extension(self, media: Media, tmp_path: Path) -> None:
        """Anthropic refuses an image whose declared type is not what its bytes are."""
        path = tmp_path / "photo.png"
        path.write_bytes(media.jpeg)
        assert rxllm.Image(path).media_type == "image/jpeg"

    def test_the_name_tells_what_the_bytes_do_not(self, tmp_path: Path) -> None:
        path = tmp_path / "raw.wav"
        path.write_bytes(bytes(64))
        assert rxllm.Audio(path).media_type == "audio/wav"
        assert rxllm.Audio(bytes(64), filename="take.mp3").media_type == "audio/mpeg"

    def test_a_given_media_type_wins_and_is_normalized(self, media: Media) -> None:
        assert rxllm.Image(media.png, media_type="image/jpg").media_type == "image/jpeg"
        assert rxllm.Audio(bytes(64), media_type="audio/x-wav").media_type == "audio/wav"
        assert rxllm.Audio(bytes(64), media_type="Audio/MP3").media_type == "audio/mpeg"

    def test_home_is_expanded(
        self, media: Media, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        (tmp_path / "cat.png").write_bytes(media.png)
        assert rxllm.Image("~/cat.png").data == media.png

    def test_an_http_url_is_kept_for_the_provider_to_fetch(self) -> None:
        part = rxllm.Image("https://example.com/photos/cat.jpg?size=large")
        assert part.url == "https://example.com/photos/cat.jpg?size=large"
        assert part.data is None
        assert part.media_type == "image/jpeg"  # the path's extension, not the query's
        assert part.filename == "cat.jpg"
        assert rxllm.Image("http://example.com/render?id=3").media_type is None
        assert rxllm.Audio("https://example.com/a%20b.mp3").filename == "a b.mp3"

    def test_a_document_url_is_a_pdf_whatever_its_name(self) -> None:
        assert rxllm.Document("https://arxiv.org/pdf/2401.00001").media_type == "application/pdf"
        assert rxllm.Document("https://example.com/a.pdf").filename == "a.pdf"

    def test_a_data_url_holds_the_bytes(self, media: Media) -> None:
        part = rxllm.Image(f"data:image/png;base64,{b64(media.png)}")
        assert part.data == media.png and part.media_type == "image/png" and part.url is None
        # no declared type: the bytes say; a declared type the bytes contradict: the bytes
        assert rxllm.Image(f"data:;base64,{b64(media.gif)}").media_type == "image/gif"
        assert rxllm.Image(f"data:image/png;base64,{b64(media.jpeg)}").media_type == "image/jpeg"
        # not base64: percent-encoded bytes (RFC 2397)
        assert rxllm.Document("data:application/pdf,%25PDF-1.4%0A").data == b"%PDF-1.4\n"

    def test_audio_format_is_openai_s_name(self, media: Media) -> None:
        assert rxllm.Audio(media.wav).format == "wav"
        assert rxllm.Audio(media.mp3).format == "mp3"
        assert rxllm.Audio(media.ogg).format is None
        assert rxllm.Audio(media.ogg).media_type == "audio/ogg"

    def test_base64_and_data_url(self, media: Media) -> None:
        part = rxllm.Image(media.png)
        assert base64.b64decode(part.as_base64()) == media.png
        assert part.as_data_url() == f"data:image/png;base64,{b64(media.png)}"
        with pytest.raises(ValueError, match="has no data: it is fetched from its URL"):
            rxllm.Image("https://example.com/cat.png").as_base64()


class TestValue:
    """Frozen, compared by content, shown without the bytes."""

    def test_frozen(self, media: Media) -> None:
        part = rxllm.Image(media.png)
        with pytest.raises(dataclasses.FrozenInstanceError):
            part.data = b"other"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            part.media_type = "image/gif"  # type: ignore[misc]

    def test_equal_by_content_and_hashable(self, media: Media, tmp_path: Path) -> None:
        path = tmp_path / "cat.png"
        path.write_bytes(media.png)
        assert rxllm.Image(path) == rxllm.Image(path)
        assert rxllm.Image(media.png) != rxllm.Image(path)  # no filename
        assert rxllm.Image(media.png) == rxllm.Image(bytearray(media.png))
        assert rxllm.Image(media.png, detail="low") != rxllm.Image(media.png)
        assert rxllm.Image(media.png) != rxllm.Document(media.pdf)
        assert len({rxllm.Image(path), rxllm.Image(path), rxllm.Image(media.png)}) == 2

    def test_repr_names_the_source_never_the_bytes(self, media: Media, tmp_path: Path) -> None:
        path = tmp_path / "cat.png"
        path.write_bytes(media.png)
        assert repr(rxllm.Image(path)) == (
            f"Image({str(path)!r}, media_type='image/png', {len(media.png)} bytes)"
        )
        assert repr(rxllm.Audio(media.wav)) == (
            f"Audio(<{len(media.wav)} bytes>, media_type='audio/wav')"
        )
        url = "https://example.com/" + "x" * 200 + ".pdf"
        shown = repr(rxllm.Document(url))
        assert len(shown) < 140 and shown.startswith("Document('https://example.com/xxx")
        assert b64(media.pdf)[:20] not in repr(rxllm.Document(f"data:;base64,{b64(media.pdf)}"))


class TestRefused:
    """What cannot be read or told is a ValueError (a TypeError for a wrong type) that
    says what to pass."""

    def test_a_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"Image: there is no file at .*nope\.png.*pass an"):
            rxllm.Image(tmp_path / "nope.png")

    def test_base64_text_taken_for_a_path(self, media: Media) -> None:
        with pytest.raises(ValueError, match=r"looks like base64 text: pass base64.b64decode"):
            rxllm.Image(b64(media.jpeg))

    def test_a_part_is_one_of_the_three_kinds(self, media: Media) -> None:
        with pytest.raises(TypeError, match=r"make an rxllm\.Image, rxllm\.Audio or"):
            Part(media.png)

    def test_a_directory(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="is a directory: pass a file's path"):
            rxllm.Document(tmp_path)

    def test_empty(self, tmp_path: Path) -> None:
        (tmp_path / "empty.wav").write_bytes(b"")
        with pytest.raises(ValueError, match="is empty"):
            rxllm.Audio(tmp_path / "empty.wav")
        with pytest.raises(ValueError, match=r"Image\(b''\) is empty"):
            rxllm.Image(b"")
        with pytest.raises(ValueError, match="holds no bytes"):
            rxllm.Image("data:image/png;base64,")

    def test_a_type_that_cannot_be_told(self, tmp_path: Path) -> None:
        with pytest.raises(
            ValueError, match=r"could not tell the type of .* media_type='image/png'"
        ):
            rxllm.Image(b"hello, world")
        (tmp_path / "blob").write_bytes(bytes(50))
        with pytest.raises(
            ValueError, match=r"could not tell the type of .* media_type='audio/wav'"
        ):
            rxllm.Audio(tmp_path / "blob")

    @pytest.mark.parametrize(
        ("cls", "kind", "says"),
        [
            (rxllm.Image, "pdf", "holds application/pdf, not an image: use rxllm.Document"),
            (rxllm.Audio, "png", "holds image/png, not audio: use rxllm.Image"),
            (rxllm.Document, "wav", "holds audio/wav, not a PDF: use rxllm.Audio"),
        ],
    )
    def test_a_file_of_another_kind_names_the_right_class(
        self, media: Media, tmp_path: Path, cls: type[Part], kind: str, says: str
    ) -> None:
        with pytest.raises(ValueError, match=says):
            cls(getattr(media, kind))
        path = tmp_path / f"file.{kind}"
        path.write_bytes(getattr(media, kind))
        with pytest.raises(ValueError, match=f"file.{kind}' {says}"):
            cls(path)

    def test_a_url_naming_another_kind(self) -> None:
        with pytest.raises(ValueError, match="names application/pdf, not an image"):
            rxllm.Image("https://example.com/paper.pdf")

    def test_a_given_media_type_of_another_kind(self, media: Media) -> None:
        with pytest.raises(ValueError, match="must be an image type like 'image/png'"):
            rxllm.Image(media.png, media_type="audio/wav")
        with pytest.raises(ValueError, match="must be a document type like 'application/pdf'"):
            rxllm.Document(media.pdf, media_type="text/plain")
        with pytest.raises(ValueError, match="media_type must be a str like 'audio/wav'"):
            rxllm.Audio(media.wav, media_type="wav")

    def test_other_url_schemes(self) -> None:
        with pytest.raises(ValueError, match=r"takes http\(s\) and data: URLs, not 'ftp://"):
            rxllm.Image("ftp://example.com/cat.png")
        with pytest.raises(ValueError, match="download the file"):
            rxllm.Document("s3://bucket/paper.pdf")

    def test_a_broken_data_url(self) -> None:
        with pytest.raises(ValueError, match=r"is not a data URL \(no ','\)"):
            rxllm.Image("data:image/png;base64")
        with pytest.raises(ValueError, match="is not valid base64"):
            rxllm.Image("data:image/png;base64,@@@not base64@@@")

    def test_a_source_of_the_wrong_type(self) -> None:
        with pytest.raises(TypeError, match=r"takes a path, the file's bytes or a URL .* not int"):
            rxllm.Image(42)  # type: ignore[arg-type]

    def test_a_bad_detail(self, media: Media) -> None:
        with pytest.raises(ValueError, match="detail must be 'auto', 'low', 'high'"):
            rxllm.Image(media.png, detail="max")  # type: ignore[arg-type]


class TestWireForms:
    """Each protocol's own form of each part (the forms of the APIs' reference)."""

    def test_chat_completions(self, media: Media, tmp_path: Path) -> None:
        (tmp_path / "paper.pdf").write_bytes(media.pdf)
        assert part_to_wire(rxllm.Image(media.png), "chat") == {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{b64(media.png)}"},
        }
        assert part_to_wire(rxllm.Image("https://x.org/a.jpg", detail="high"), "chat") == {
            "type": "image_url",
            "image_url": {"url": "https://x.org/a.jpg", "detail": "high"},
        }
        assert part_to_wire(rxllm.Audio(media.mp3), "chat") == {
            "type": "input_audio",
            "input_audio": {"data": b64(media.mp3), "format": "mp3"},
        }
        assert part_to_wire(rxllm.Document(tmp_path / "paper.pdf"), "chat") == {
            "type": "file",
            "file": {
                "filename": "paper.pdf",
                "file_data": f"data:application/pdf;base64,{b64(media.pdf)}",
            },
        }
        # bytes have no name: OpenAI wants one with file_data
        assert part_to_wire(rxllm.Document(media.pdf), "chat")["file"]["filename"] == (
            "document.pdf"
        )

    def test_responses(self, media: Media) -> None:
        assert part_to_wire(rxllm.Image(media.webp), "responses") == {
            "type": "input_image",
            "image_url": f"data:image/webp;base64,{b64(media.webp)}",
            "detail": "auto",
        }
        assert part_to_wire(rxllm.Image("https://x.org/a.png", detail="low"), "responses") == {
            "type": "input_image",
            "image_url": "https://x.org/a.png",
            "detail": "low",
        }
        assert part_to_wire(rxllm.Document(media.pdf, filename="q3.pdf"), "responses") == {
            "type": "input_file",
            "filename": "q3.pdf",
            "file_data": f"data:application/pdf;base64,{b64(media.pdf)}",
        }
        assert part_to_wire(rxllm.Document("https://x.org/q3.pdf"), "responses") == {
            "type": "input_file",
            "file_url": "https://x.org/q3.pdf",
        }

    def test_anthropic(self, media: Media) -> None:
        assert part_to_wire(rxllm.Image(media.jpeg, detail="low"), "anthropic") == {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": b64(media.jpeg)},
        }
        assert part_to_wire(rxllm.Image("https://x.org/a.gif"), "anthropic") == {
            "type": "image",
            "source": {"type": "url", "url": "https://x.org/a.gif"},
        }
        assert part_to_wire(rxllm.Document(media.pdf), "anthropic") == {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": b64(media.pdf)},
        }
        assert part_to_wire(rxllm.Document("https://x.org/q3.pdf"), "anthropic") == {
            "type": "document",
            "source": {"type": "url", "url": "https://x.org/q3.pdf"},
        }

    @pytest.mark.parametrize(
        ("make", "protocol", "says"),
        [
            (lambda m: rxllm.Audio(m.wav), "anthropic", "takes no audio input"),
            (lambda m: rxllm.Audio(m.wav), "responses", "takes no audio input"),
            (lambda m: rxllm.Audio("https://x.org/a.wav"), "chat", "as data, not a URL"),
            (lambda m: rxllm.Audio(m.ogg), "chat", "WAV or MP3 audio, not audio/ogg"),
            (lambda m: rxllm.Document("https://x.org/a.pdf"), "chat", "api='responses'"),
            (
                lambda m: rxllm.Image(m.bmp),
                "anthropic",
                "JPEG, PNG, GIF and WebP images, not image/bmp",
            ),
        ],
    )
    def test_what_a_protocol_cannot_take(
        self, media: Media, make: Any, protocol: Any, says: str
    ) -> None:
        part = make(media)
        problem = part_problem(part, protocol)
        assert problem is not None and says in problem
        with pytest.raises(UnsupportedPart, match=says):
            part_to_wire(part, protocol)

    @pytest.mark.parametrize("protocol", ["chat", "responses", "anthropic"])
    def test_what_each_protocol_takes(self, media: Media, protocol: Any) -> None:
        taken = [rxllm.Image(media.png), rxllm.Image("https://x.org/a"), rxllm.Document(media.pdf)]
        taken += [rxllm.Document("https://x.org/a.pdf")] if protocol != "chat" else []
        taken += [rxllm.Audio(media.wav), rxllm.Audio(media.mp3)] if protocol == "chat" else []
        taken += [rxllm.Image(media.bmp)] if protocol != "anthropic" else []  # compatible servers
        for part in taken:
            assert part_problem(part, protocol) is None, part

    def test_messages_for_the_responses_api(self, media: Media) -> None:
        image = rxllm.Image(media.png)
        own = {"type": "input_file", "file_id": "file-123"}
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Compare"}, image, own]},
        ]
        sent = wire_messages(messages, "responses")
        assert sent[0] == {"role": "system", "content": "Be brief."}
        assert sent[1]["content"] == [
            {"type": "input_text", "text": "Compare"},
            part_to_wire(image, "responses"),
            own,
        ]
        assert sent[1]["content"][2] is own  # a provider's own part goes as given
        assert messages[1]["content"][1] is image  # the request's messages are not changed

    def test_messages_without_parts_are_copied_unchanged(self) -> None:
        message = {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
        assert wire_message(message, "chat") == message
        assert wire_message(message, "chat") is not message

    def test_check_parts_says_which_provider_which_part_and_where(self, media: Media) -> None:
        audio = rxllm.Audio(media.wav)
        messages = [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": [{"type": "text", "text": "Listen"}, audio]},
        ]
        check_parts(messages, "chat", "openai")  # Chat Completions takes WAV
        with pytest.raises(UnsupportedPart) as caught:
            check_parts(messages, "anthropic", "bedrock")
        error = caught.value
        assert isinstance(error, ValueError)
        assert (error.provider, error.where, error.part) == (
            "bedrock",
            "messages[2].content[1]",
            audio,
        )
        assert str(error).startswith(
            f"bedrock (the Messages API) cannot take {audio!r} at messages[2].content[1]: "
        )
        assert str(error.for_provider("vertex")).startswith("vertex (the Messages API)")


class TestPrompts:
    """A prompt may be a list of text and parts; a message's content such a list."""

    def llm(self) -> rxllm.LLM:
        return rxllm.scripted("A red square.")

    def test_a_prompt_list_is_one_user_message(self, media: Media) -> None:
        image = rxllm.Image(media.png)
        request = self.llm().request(["What is in this picture?", image, "Be brief."])
        assert request.messages == (
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    image,
                    {"type": "text", "text": "Be brief."},
                ],
            },
        )
        assert request.messages[0]["content"][1] is image

    def test_a_lone_part_or_a_tuple_is_a_prompt_too(self, media: Media) -> None:
        image = rxllm.Image(media.png)
        assert self.llm().request(image).messages[0]["content"] == [image]
        assert self.llm().request(("Hi", image)).messages[0]["content"][1] is image

    def test_the_call_gets_the_parts(self, media: Media) -> None:
        llm = self.llm()
        image = rxllm.Image(media.png)
        assert rxllm.collect(llm.stream(["What is this?", image])).text == "A red square."
        assert llm._provider.requests[0].messages[0]["content"][1] is image  # type: ignore[attr-defined]

    def test_message_content_may_mix_text_parts_and_provider_dicts(self, media: Media) -> None:
        image = rxllm.Image(media.png)
        own = {"type": "image_url", "image_url": {"url": "https://x.org/b.png"}}
        text = {"type": "text", "text": "and this one"}
        request = self.llm().request(
            messages=[
                {"role": "system", "content": "You describe pictures."},
                {"role": "user", "content": ["Compare", image, text, own], "name": "ann"},
            ]
        )
        system, user = request.messages
        assert system == {"role": "system", "content": "You describe pictures."}
        assert user == {
            "role": "user",
            "content": [{"type": "text", "text": "Compare"}, image, text, own],
            "name": "ann",
        }
        assert user["content"][2] is text and user["content"][3] is own

    def test_a_content_list_of_provider_dicts_only_is_the_caller_s_own(self) -> None:
        message = {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
        assert self.llm().request(messages=[message]).messages[0] is message

    def test_a_prompt_function_may_return_a_list(self, media: Media) -> None:
        llm = self.llm()
        image = rxllm.Image(media.png)

        @llm.prompt
        def describe(picture: rxllm.Image) -> list[Any]:
            return ["Describe this picture.", picture]

        assert rxllm.collect(describe(image)).text == "A red square."
        sent = llm._provider.requests[0].messages  # type: ignore[attr-defined]
        assert sent == ({"role": "user", "content": [describe_text(), image]},)

    @pytest.mark.parametrize(
        ("prompt", "says"),
        [
            ([], "the prompt is an empty list"),
            (["Hi", "  "], r"prompt\[1\] is empty text"),
            ([{"role": "user", "content": "Hi"}], r"prompt\[0\] is a message .* messages=\["),
            (["Hi", {"text": "x"}], r"prompt\[1\] is a dict without a 'type'"),
            (["Hi", Path("cat.png")], r"prompt\[1\] is .*Path.*wrap a file in rxllm.Image"),
            (["Hi", b"\x89PNG"], r"prompt\[1\] is bytes.*wrap a file"),
            (["Hi", 42], r"prompt\[1\] is int: a content part is text"),
            ({"role": "user"}, "prompt must be a str or a list of text and parts"),
            (b"Hi", "prompt must be a str or a list"),
        ],
    )
    def test_a_bad_prompt_list(self, prompt: Any, says: str) -> None:
        llm = self.llm()
        with pytest.raises(ValueError, match=says):
            llm.stream(prompt)
        assert llm._provider.requests == []  # type: ignore[attr-defined]

    @pytest.mark.parametrize("role", ["assistant", "system", "developer", "tool"])
    def test_parts_go_in_user_messages_only(self, media: Media, role: str) -> None:
        messages = [
            {"role": "user", "content": "Hi"},
            {"role": role, "content": ["Look:", rxllm.Image(media.png)]},
        ]
        with pytest.raises(ValueError, match=rf"messages\[1\].content\[1\] is Image.* in a {role}"):
            self.llm().stream(messages=messages)

    def test_a_bad_content_item_names_its_place(self) -> None:
        with pytest.raises(ValueError, match=r"messages\[0\].content\[1\] is float"):
            self.llm().stream(messages=[{"role": "user", "content": ["Hi", 1.5]}])

    def test_the_local_model_names_the_part_it_cannot_read(self, media: Media) -> None:
        pytest.importorskip("llama_cpp")
        image = rxllm.Image(media.png)
        with pytest.raises(UnsupportedPart) as caught:
            rxllm.local().stream(["What is this?", image])
        assert caught.value.provider == "local" and caught.value.part is image
        assert str(caught.value).startswith(
            f"local cannot take {image!r} at messages[0].content[1]: the local model reads "
            "text only"
        )


def describe_text() -> dict[str, str]:
    return {"type": "text", "text": "Describe this picture."}
