"""Input parts: images, audio and PDF documents in a prompt or a message's content.

A prompt may be a list of text and parts, and a user message's `content` such a list:

>>> import rxllm
>>> png = bytes.fromhex("89504e470d0a1a0a0000000d49484452")  # the start of a PNG file
>>> rxllm.Image(png)
Image(<16 bytes>, media_type='image/png')
>>> rxllm.Image("https://example.com/cat.jpg").media_type
'image/jpeg'
>>> llm = rxllm.scripted("A cat.")
>>> rxllm.collect(llm.stream(["What is in this picture?", rxllm.Image(png)])).text
'A cat.'

`Image`, `Audio` and `Document` (a PDF) each take a path (`str` or `os.PathLike`), the file's
bytes, or a URL (`http(s)://`, or a `data:` URL that holds the bytes). A path is read at
once, so a missing file is a `ValueError` where the part is made, and the part holds the
bytes it will send (every retry and tool-loop step sends the same). The media type is the
one given, else what the bytes are (their magic numbers), else what the
file's or URL's extension says.

Each protocol sends a part in its own form; this module holds those forms, so a codec only
asks for them (`check_parts` in its `check`, `wire_messages` in its `arguments`):

- `Image`: Chat Completions `image_url` (the URL, or a data URL); Responses `input_image`;
  Anthropic an `image` block with a `base64` or `url` source.
- `Audio`: Chat Completions `input_audio` (WAV or MP3, as data only); the Responses API
  and Anthropic take no audio.
- `Document`: Chat Completions `file` (`file_data` only: no URL); Responses `input_file`
  (`file_data` or `file_url`); Anthropic a `document` block with a `base64` or `url` source.

A part a protocol cannot take is an `UnsupportedPart` (a `ValueError`) that names the
provider, the part and where it is, raised by `stream()` before anything is sent.

Why ~660 lines in one module: the three part types, telling a file's type, and each
protocol's form of each part, so a codec only asks for them.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

__all__ = [
    "Audio",
    "Document",
    "Image",
    "Part",
    "UnsupportedPart",
    "WireProtocol",
    "check_parts",
    "part_problem",
    "part_to_wire",
    "wire_message",
    "wire_messages",
]

WireProtocol = Literal["chat", "responses", "anthropic"]
"""The protocols whose part forms are here: OpenAI Chat Completions (and every
OpenAI-compatible server), OpenAI Responses, Anthropic Messages."""

_PROTOCOL_NAMES: dict[str, str] = {
    "chat": "Chat Completions",
    "responses": "the Responses API",
    "anthropic": "the Messages API",
}

_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/x-ms-bmp": "image/bmp",
    "image/x-bmp": "image/bmp",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-pn-wav": "audio/wav",
    "audio/mp3": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg",
    "audio/x-mpeg-3": "audio/mpeg",
    "audio/x-flac": "audio/flac",
    "audio/x-m4a": "audio/mp4",
    "application/ogg": "audio/ogg",
    "application/x-pdf": "application/pdf",
}
"""Other names of one media type (what `mimetypes` and users may say) -> the
name the APIs take."""

_MIMETYPES = mimetypes.MimeTypes()  # Python's own table only: not the machine's mime.types
for _type, _extension in (
    ("image/webp", ".webp"),  # in Python's own table from 3.13
    ("image/heic", ".heic"),
    ("image/avif", ".avif"),
    ("audio/ogg", ".ogg"),
    ("audio/ogg", ".oga"),
    ("audio/opus", ".opus"),
    ("audio/flac", ".flac"),
    ("audio/mp4", ".m4a"),
    ("audio/aac", ".aac"),
    ("audio/webm", ".weba"),
):
    _MIMETYPES.add_type(_type, _extension)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _normal(media_type: str) -> str:
    media_type = media_type.split(";", maxsplit=1)[0].strip().lower()
    return _ALIASES.get(media_type, media_type)


def _by_name(name: str) -> str | None:
    guessed, _ = _MIMETYPES.guess_type(name, strict=False)
    return _normal(guessed) if guessed else None


def _by_content(data: bytes) -> list[str]:
    """The media types the bytes are, by their signature (the formats the providers take,
    and a few they refuse, so an error can name what a file is)."""
    head = data[:16]
    found = [media for magic, media in _SIGNATURES if head.startswith(magic)]
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        found.append(_RIFF[head[8:12]])
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        found.append(_FTYP.get(brand, "video/mp4"))
    if not found and len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        found.append("audio/mpeg")  # an MPEG audio frame without an ID3 tag
    return found


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"ID3", "audio/mpeg"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
    (b"\x1aE\xdf\xa3", "audio/webm"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
"""Magic numbers at the start of a file -> its media type."""
_RIFF = {b"WAVE": "audio/wav", b"WEBP": "image/webp"}
_FTYP = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heic",
    b"avif": "image/avif",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
}


def _size(count: int) -> str:
    return f"{count:,} byte" + ("" if count == 1 else "s")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, init=False, repr=False)
class Part:
    """A file in a prompt: an `Image`, `Audio` or `Document` (see the module docstring).

    Frozen: `data` (the bytes; None for a part given by an http(s) URL), `url` (that URL),
    `media_type` (None only for a URL whose type its name does not tell), `filename` (the
    file's or URL's last name, or the one given).
    """

    data: bytes | None
    """The file's bytes (read from the path, given, or decoded from a `data:` URL)."""
    url: str | None
    """The http(s) URL the provider fetches the file from (None for a part with data)."""
    media_type: str | None
    """The IANA media type, e.g. `"image/png"`."""
    filename: str | None
    """The file's name (sent where a protocol names files: OpenAI's PDFs)."""
    origin: str = field(compare=False)
    """What the part was made from, for messages: the path, the URL or `<n bytes>`."""

    kind: ClassVar[str] = "part"
    """What the part is: `image`, `audio` or `document`."""
    example: ClassVar[str] = "image/png"
    """A media type of this kind, for messages."""
    noun: ClassVar[str] = "a file"
    """What the part holds, for messages ("an image")."""

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes | bytearray | memoryview,
        *,
        media_type: str | None = None,
        filename: str | None = None,
    ) -> None:
        name = type(self).__name__
        if type(self) is Part:
            raise TypeError("make an rxllm.Image, rxllm.Audio or rxllm.Document, not a Part")
        if media_type is not None:
            if not isinstance(media_type, str) or "/" not in media_type:
                raise ValueError(
                    f"{name} media_type must be a str like {self.example!r}, not {media_type!r}"
                )
            media_type = _normal(media_type)
            self._check_kind(media_type, repr(media_type), given=True)
        if filename is not None and not isinstance(filename, str):
            raise ValueError(f"{name} filename must be a str, not {type(filename).__name__}")
        data: bytes | None = None
        url: str | None = None
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            origin = f"<{_size(len(data))}>"
            where = f"these {_size(len(data))}"
            if not data:
                raise ValueError(f"{name}(b'') is empty: pass the file's bytes, path or URL")
            media_type = media_type or self._guess(data, where, name=filename)
        elif isinstance(source, str) and source[:5].lower() == "data:":
            origin = repr(_short(source.partition(",")[0], 40) + ",…")  # not the data
            data, declared = _read_data_url(name, source)
            where = f"the data URL {origin}"
            media_type = media_type or self._guess(data, where, declared=declared)
        elif isinstance(source, str) and _SCHEME.match(source):
            if not source[:8].lower().startswith(("http://", "https://")):
                raise ValueError(
                    f"{name} takes http(s) and data: URLs, not {_short(source)!r}: download "
                    f"the file and pass its path or bytes, e.g. rxllm.{name}(Path('file'))"
                )
            url = source
            origin = repr(_short(source, 80))
            url_path = urllib.parse.unquote(urllib.parse.urlsplit(source).path)
            filename = filename or (url_path.rsplit("/", 1)[-1] or None)
            media_type = media_type or self._url_type(url_path, source)
        elif isinstance(source, str | os.PathLike):
            path = Path(os.fspath(source)).expanduser()
            origin = repr(os.fspath(source))
            data = _read_file(name, path)
            filename = filename or path.name
            media_type = media_type or self._guess(data, origin, name=path.name)
        else:
            raise TypeError(
                f"{name} takes a path, the file's bytes or a URL (http(s) or data:), not "
                f"{type(source).__name__}"
            )
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "media_type", media_type)
        object.__setattr__(self, "filename", filename)
        object.__setattr__(self, "origin", origin)

    def _fits(self, media_type: str) -> bool:
        return media_type.startswith(self.kind + "/")

    def _check_kind(
        self, media_type: str, what: str, *, given: bool = False, verb: str = "holds"
    ) -> None:
        if self._fits(media_type):
            return
        name = type(self).__name__
        other = _class_for(media_type)
        hint = f": use rxllm.{other}" if other and other != name else ""
        if given:
            raise ValueError(
                f"{name} media_type must be {_a(self.kind)} type like {self.example!r}, "
                f"not {media_type!r}{hint}"
            )
        raise ValueError(f"{what} {verb} {media_type}, not {self.noun}{hint}")

    def _guess(
        self, data: bytes, where: str, *, name: str | None = None, declared: str | None = None
    ) -> str:
        """The type of `data` (a file named `name`, or a data URL that declares a type):
        what the bytes are, else what the name or declaration says (both when they agree);
        a ValueError when none fits this kind."""
        sniffed = _by_content(data)
        by_name = _normal(declared) if declared else _by_name(name) if name else None
        candidates = [*sniffed, by_name] if by_name and by_name not in sniffed else sniffed
        if by_name in sniffed:  # the name and the bytes agree: that one
            candidates = [by_name, *(c for c in sniffed if c != by_name)]
        for candidate in candidates:
            if candidate and self._fits(candidate):
                return candidate
        if candidates and candidates[0]:
            self._check_kind(candidates[0], where)
        raise ValueError(
            f"could not tell the type of {where}: neither the bytes nor a name say what "
            f"{self.noun} it is; pass media_type=, e.g. rxllm.{type(self).__name__}(..., "
            f"media_type={self.example!r})"
        )

    def _url_type(self, path: str, url: str) -> str | None:
        guessed = _by_name(path)
        if guessed is None:
            return None
        self._check_kind(guessed, repr(_short(url, 80)), verb="names")
        return guessed

    def __repr__(self) -> str:
        size = (
            f", {_size(len(self.data))}" if self.data is not None and self.origin[0] != "<" else ""
        )
        return f"{type(self).__name__}({self.origin}, media_type={self.media_type!r}{size})"

    def as_base64(self) -> str:
        """The bytes in base64 (a ValueError for a part given by an http(s) URL).

        >>> Image(b"GIF89a;").as_base64()
        'R0lGODlhOw=='
        """
        return base64.b64encode(self._data()).decode("ascii")

    def as_data_url(self) -> str:
        """The bytes as a `data:` URL (a ValueError for a part given by an http(s) URL).

        >>> Image(b"GIF89a;").as_data_url()
        'data:image/gif;base64,R0lGODlhOw=='
        """
        return f"data:{self.media_type};base64,{self.as_base64()}"

    def _data(self) -> bytes:
        if self.data is None:
            raise ValueError(f"{self!r} has no data: it is fetched from its URL by the provider")
        return self.data


def _a(kind: str) -> str:
    return "an " + kind if kind[0] in "aeiou" else "a " + kind


def _class_for(media_type: str) -> str | None:
    if media_type.startswith("image/"):
        return "Image"
    if media_type.startswith("audio/"):
        return "Audio"
    if media_type == "application/pdf":
        return "Document"
    return None


_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/\s]{64,}={0,2}")


def _read_file(name: str, path: Path) -> bytes:
    shown = repr(_short(str(path), 80))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        where = "" if path.is_absolute() else f" (relative to {os.getcwd()!r})"
        raise ValueError(
            f"{name}: there is no file at {shown}{where}: pass an existing file's path, its "
            f"bytes, or an http(s) URL{_base64_hint(path)}"
        ) from None
    except IsADirectoryError:
        raise ValueError(f"{name}: {shown} is a directory: pass a file's path") from None
    except OSError as exc:
        raise ValueError(
            f"{name}: cannot read {shown} ({exc.strerror or exc}): pass a readable file's "
            f"path, or its bytes{_base64_hint(path)}"
        ) from None
    if not data:
        raise ValueError(f"{name}: {shown} is empty: pass a file that holds the {name.lower()}")
    return data


def _base64_hint(path: Path) -> str:
    """A hint for base64 text taken for a path (a common slip)."""
    if not _BASE64_TEXT.fullmatch(str(path)):
        return ""
    return (
        "; that looks like base64 text: pass base64.b64decode(text), or a data URL "
        "('data:image/png;base64,' + text)"
    )


def _read_data_url(name: str, url: str) -> tuple[bytes, str | None]:
    """The bytes and the declared media type of a `data:` URL (RFC 2397)."""
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise ValueError(
            f"{name}: {_short(url, 40)!r} is not a data URL (no ','): it looks like "
            "data:image/png;base64,iVBORw0..."
        )
    params = header.split(";")
    declared = params[0].strip() or None
    try:
        if params[-1].strip().lower() == "base64":
            data = base64.b64decode(urllib.parse.unquote(payload), validate=True)
        else:
            data = urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            f"{name}: the data URL {_short(url, 40)!r} is not valid base64 ({exc})"
        ) from None
    if not data:
        raise ValueError(f"{name}: the data URL {_short(url, 40)!r} holds no bytes")
    return data, declared


@dataclass(frozen=True, init=False, repr=False)
class Image(Part):
    """An image in a prompt: a path, the bytes, or an http(s)/data URL.

    `detail` is OpenAI's resolution hint (`"low"`, `"high"`, `"auto"`, `"original"`);
    Anthropic has none and ignores it. The APIs take PNG, JPEG, GIF and WebP (Anthropic
    only those; OpenAI-compatible servers may take more).

    >>> import rxllm
    >>> rxllm.Image("https://example.com/photos/cat.png", detail="low")
    Image('https://example.com/photos/cat.png', media_type='image/png')
    """

    detail: str | None = None
    """OpenAI's image detail, or None for the API's default."""

    kind: ClassVar[str] = "image"
    example: ClassVar[str] = "image/png"
    noun: ClassVar[str] = "an image"

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes | bytearray | memoryview,
        *,
        media_type: str | None = None,
        filename: str | None = None,
        detail: Literal["auto", "low", "high", "original"] | None = None,
    ) -> None:
        if detail not in (None, "auto", "low", "high", "original"):
            raise ValueError(
                f"Image detail must be 'auto', 'low', 'high' or 'original', not {detail!r}"
            )
        super().__init__(source, media_type=media_type, filename=filename)
        object.__setattr__(self, "detail", detail)


@dataclass(frozen=True, init=False, repr=False)
class Audio(Part):
    """A sound in a prompt: a path, the bytes, or an http(s)/data URL.

    OpenAI's Chat Completions take WAV and MP3 as data (not a URL); the Responses API and
    Anthropic take no audio. `format` is OpenAI's name of the type (`"wav"`, `"mp3"`).

    >>> import rxllm
    >>> rxllm.Audio(b"ID3\\x04\\x00\\x00\\x00\\x00\\x00\\x00", filename="clip.mp3").format
    'mp3'
    """

    kind: ClassVar[str] = "audio"
    example: ClassVar[str] = "audio/wav"
    noun: ClassVar[str] = "audio"

    @property
    def format(self) -> str | None:
        """`"wav"` or `"mp3"` (OpenAI's names), else None."""
        return _AUDIO_FORMATS.get(self.media_type or "")


_AUDIO_FORMATS = {"audio/wav": "wav", "audio/mpeg": "mp3"}


@dataclass(frozen=True, init=False, repr=False)
class Document(Part):
    """A PDF in a prompt: a path, the bytes, or an http(s)/data URL.

    OpenAI's Chat Completions take it as data (not a URL), named `filename` (default: the
    file's name, or `document.pdf`); the Responses API and Anthropic also take a URL.

    >>> import rxllm
    >>> rxllm.Document(b"%PDF-1.7\\n...").media_type
    'application/pdf'
    """

    kind: ClassVar[str] = "document"
    example: ClassVar[str] = "application/pdf"
    noun: ClassVar[str] = "a PDF"

    def _fits(self, media_type: str) -> bool:
        return media_type == "application/pdf"

    def _url_type(self, path: str, url: str) -> str:
        # the URL's name may say nothing (https://arxiv.org/pdf/2401.00001): a PDF
        return super()._url_type(path, url) or "application/pdf"


class UnsupportedPart(ValueError):
    """A part a provider cannot take (a `ValueError` raised by `stream()`): says which
    provider, which part, where it is and what to do instead."""

    def __init__(self, provider: str, protocol: str, where: str, part: Any, reason: str) -> None:
        self.provider = provider
        self.protocol = protocol
        self.where = where
        self.part = part
        self.reason = reason
        via = f" ({_PROTOCOL_NAMES[protocol]})" if protocol in _PROTOCOL_NAMES else ""
        super().__init__(f"{provider}{via} cannot take {part!r} at {where}: {reason}")

    def for_provider(self, provider: str) -> UnsupportedPart:
        """The same error naming another provider (a service that speaks this protocol)."""
        return UnsupportedPart(provider, self.protocol, self.where, self.part, self.reason)


_ANTHROPIC_IMAGES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def part_problem(part: Part, protocol: WireProtocol) -> str | None:
    """Why `protocol` cannot take `part` (with what to do instead), or None when it can.

    >>> part_problem(Audio(b"RIFF\\x00\\x00\\x00\\x00WAVEfmt "), "chat") is None
    True
    >>> part_problem(Audio(b"RIFF\\x00\\x00\\x00\\x00WAVEfmt "), "anthropic")[:25]
    'it takes no audio input: '
    """
    if isinstance(part, Audio):
        return _audio_problem(part, protocol)
    if isinstance(part, Document):
        if protocol == "chat" and part.data is None:
            return (
                "a PDF goes as data, not a URL: download it and pass its path or bytes, or "
                "use the Responses API (rxllm.openai(model, api='responses')), which takes "
                "file URLs"
            )
        return None
    if isinstance(part, Image):
        if (
            protocol == "anthropic"
            and part.data is not None
            and part.media_type not in _ANTHROPIC_IMAGES
        ):
            return (
                f"it takes JPEG, PNG, GIF and WebP images, not {part.media_type}: "
                "convert it to PNG first"
            )
        return None
    return f"{type(part).__name__} is no part rxllm knows how to send"


def _audio_problem(part: Audio, protocol: WireProtocol) -> str | None:
    if protocol != "chat":
        return (
            "it takes no audio input: transcribe it first, or send it to a model that hears "
            "audio (OpenAI's Chat Completions, e.g. rxllm.openai('gpt-4o-audio-preview'))"
        )
    if part.data is None:
        return (
            "audio goes as data, not a URL: download it and pass its path or bytes, e.g. "
            "rxllm.Audio('clip.wav')"
        )
    if part.format is None:
        return (
            f"it takes WAV or MP3 audio, not {part.media_type}: convert it first "
            "(e.g. ffmpeg -i clip.ogg clip.mp3)"
        )
    return None


def part_to_wire(part: Part, protocol: WireProtocol) -> dict[str, Any]:
    """`part` in `protocol`'s own form (check `part_problem` first).

    >>> part_to_wire(Image("https://example.com/cat.png"), "anthropic")
    {'type': 'image', 'source': {'type': 'url', 'url': 'https://example.com/cat.png'}}
    >>> part_to_wire(Image(b"GIF89a;", detail="low"), "chat")["image_url"]
    {'url': 'data:image/gif;base64,R0lGODlhOw==', 'detail': 'low'}
    """
    problem = part_problem(part, protocol)
    if problem is not None:
        raise UnsupportedPart(_DEFAULT_PROVIDERS[protocol], protocol, "a message", part, problem)
    if isinstance(part, Image):
        return _image(part, protocol)
    if isinstance(part, Audio):  # Chat Completions only
        return {
            "type": "input_audio",
            "input_audio": {"data": part.as_base64(), "format": part.format},
        }
    return _document(part, protocol)


_DEFAULT_PROVIDERS = {"chat": "openai", "responses": "openai", "anthropic": "anthropic"}


def _image(part: Image, protocol: WireProtocol) -> dict[str, Any]:
    url = part.url or part.as_data_url()
    if protocol == "chat":
        image_url: dict[str, Any] = {"url": url}
        if part.detail is not None:
            image_url["detail"] = part.detail
        return {"type": "image_url", "image_url": image_url}
    if protocol == "responses":
        return {"type": "input_image", "image_url": url, "detail": part.detail or "auto"}
    if part.url is not None:
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    source = {"type": "base64", "media_type": part.media_type, "data": part.as_base64()}
    return {"type": "image", "source": source}


def _document(part: Part, protocol: WireProtocol) -> dict[str, Any]:
    filename = part.filename or "document.pdf"
    if protocol == "chat":
        return {"type": "file", "file": {"filename": filename, "file_data": part.as_data_url()}}
    if protocol == "responses":
        if part.url is not None:
            return {"type": "input_file", "file_url": part.url}
        return {"type": "input_file", "filename": filename, "file_data": part.as_data_url()}
    if part.url is not None:
        return {"type": "document", "source": {"type": "url", "url": part.url}}
    source = {"type": "base64", "media_type": "application/pdf", "data": part.as_base64()}
    return {"type": "document", "source": source}


def check_parts(
    messages: Sequence[Mapping[str, Any]], protocol: WireProtocol, provider: str
) -> None:
    """Raise `UnsupportedPart` for the first part in `messages` that `protocol` cannot take
    (a codec's `check`: before any request, without encoding anything)."""
    for i, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, str) or not isinstance(content, Sequence):
            continue
        for j, item in enumerate(content):
            if isinstance(item, Part):
                problem = part_problem(item, protocol)
                if problem is not None:
                    where = f"messages[{i}].content[{j}]"
                    raise UnsupportedPart(provider, protocol, where, item, problem)


def wire_message(message: Mapping[str, Any], protocol: WireProtocol) -> dict[str, Any]:
    """`message` as a dict for `protocol`'s request, its parts in the protocol's form (a
    provider's own part dicts pass unchanged). For the Responses API a user message's text
    parts become `input_text`."""
    content = message.get("content")
    if isinstance(content, str) or not isinstance(content, Sequence):
        return dict(message)
    responses = protocol == "responses" and message.get("role") == "user"
    if not responses and not any(isinstance(item, Part) for item in content):
        return dict(message)
    converted: list[Any] = []
    for item in content:
        if isinstance(item, Part):
            converted.append(part_to_wire(item, protocol))
        elif responses and isinstance(item, Mapping) and item.get("type") == "text":
            converted.append({**item, "type": "input_text"})
        else:
            converted.append(item)
    return {**message, "content": converted}


def wire_messages(
    messages: Sequence[Mapping[str, Any]], protocol: WireProtocol
) -> list[dict[str, Any]]:
    """Every message of a request for `protocol` (see `wire_message`).

    >>> wire_messages([{"role": "user", "content": [{"type": "text", "text": "Hi"},
    ...     Document("https://example.com/a.pdf")]}], "responses")[0]["content"]
    [{'type': 'input_text', 'text': 'Hi'}, {'type': 'input_file', 'file_url': 'https://example.com/a.pdf'}]
    """
    return [wire_message(message, protocol) for message in messages]
