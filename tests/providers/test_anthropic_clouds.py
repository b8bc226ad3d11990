"""Claude on Bedrock and Vertex AI through the anthropic SDK's own clients over the loopback
server: Bedrock's AWS event stream (SigV4-signed requests, binary frames, exception frames)
and Vertex's `:streamRawPredict`; text, tools, usage, errors with their partial, and
cancellation closing the HTTP response, sync and asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

import rxllm
from rxllm import ops
from rxllm.models import Chunk, ToolCallDelta
from rxllm.testing import Script, Server

pytest.importorskip("botocore")

BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_MODEL = "claude-sonnet-4-5@20250929"
ACCESS_KEY = "AKIDEXAMPLE0123456789"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "ya29.a0-fake-google-access-token-0123456789"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Fake AWS credentials in the environment, and nothing that could send botocore or
    google-auth off this machine looking for others (no instance metadata, no files)."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "ANTHROPIC_BEDROCK_BASE_URL",
        "ANTHROPIC_VERTEX_BASE_URL",
        "ANTHROPIC_VERTEX_PROJECT_ID",
        "CLOUD_ML_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-adc.json"))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")  # never the metadata server
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    yield


def bedrock(server: Server, **kw: Any) -> rxllm.LLM:
    kw.setdefault("max_retries", 0)
    return rxllm.model(f"bedrock:{BEDROCK_MODEL}", base_url=server.url, **kw)


def vertex(server: Server, **kw: Any) -> rxllm.LLM:
    kw.setdefault("max_retries", 0)
    kw.setdefault("access_token", TOKEN)
    return rxllm.model(
        f"vertex:{VERTEX_MODEL}", region="us-east5", project_id="proj-1", base_url=server.url, **kw
    )


CLOUDS = {"bedrock": bedrock, "vertex": vertex}


def run(source: Any, mode: str) -> rxllm.Response:
    if mode == "sync":
        return rxllm.collect(source, timeout=10)
    return asyncio.run(rxllm.acollect(source, timeout=10))


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_text_usage_and_the_sdks_message(server: Server, cloud: str, mode: str) -> None:
    usage = rxllm.Usage(input_tokens=12, output_tokens=5, total_tokens=17)
    server.push(Script("Claude, from the cloud.", usage=usage))
    llm = CLOUDS[cloud](server)
    response = run(llm.stream("hi", max_tokens=64), mode)
    assert response.text == "Claude, from the cloud."
    assert (response.finish_reason, response.usage) == ("stop", usage)
    assert response.provider == cloud
    assert isinstance(response.raw, anthropic.types.Message)  # the SDK's own accumulator
    assert response.raw.content[0].text == "Claude, from the cloud."
    server.push(Script("Each chunk says who."))
    chunks = list(rxllm.iterate(llm.stream("hi")))
    assert chunks and {chunk.provider for chunk in chunks} == {cloud}


def test_bedrock_signs_with_sigv4_and_sends_the_invoke_stream_request(server: Server) -> None:
    server.push(Script("ok"))
    rxllm.collect(bedrock(server).stream("hi", max_tokens=64), timeout=10)
    record = server.last
    assert record.protocol == "bedrock"
    assert record.path == f"/model/{BEDROCK_MODEL}/invoke-with-response-stream"
    authorization = record.headers["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/us-east-1/bedrock/aws4_request" in authorization
    assert "x-amz-date" in record.headers
    assert SECRET_KEY not in str(dict(record.headers))
    body = record.body
    assert "model" not in body and "stream" not in body  # in the path
    assert body["anthropic_version"]
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_bedrock_api_key_is_a_bearer_token(server: Server) -> None:
    server.push(Script("ok"))
    rxllm.collect(bedrock(server, api_key="bedrock-api-key-0123").stream("hi"), timeout=10)
    assert server.last.headers["authorization"] == "Bearer bedrock-api-key-0123"


def test_vertex_sends_stream_raw_predict_with_the_token(server: Server) -> None:
    server.push(Script("ok"))
    rxllm.collect(vertex(server).stream("hi", max_tokens=64), timeout=10)
    record = server.last
    assert record.protocol == "anthropic"
    assert record.path == (
        f"/projects/proj-1/locations/us-east5/publishers/anthropic/models/"
        f"{VERTEX_MODEL}:streamRawPredict"
    )
    assert record.headers["authorization"] == f"Bearer {TOKEN}"
    assert record.body["stream"] is True and "model" not in record.body
    assert record.body["anthropic_version"]  # set by the SDK


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_tool_calls_and_the_tool_loop(server: Server, cloud: str, mode: str) -> None:
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    call = ToolCallDelta(index=0, id="toolu_1", name="weather", arguments='{"city": "Oslo"}')
    server.push(Script(["Let me look.", Chunk(tool_calls=(call,))]))
    server.push(Script("It is sunny in Oslo."))
    llm = CLOUDS[cloud](server)
    answer = run(llm.stream("Weather?", tools=[weather]).pipe(ops.tool_loop()), mode)
    assert answer.text == "It is sunny in Oslo."
    (step,) = answer.steps
    assert step.tool_calls[0].args == {"city": "Oslo"}
    second = server.requests[1].body["messages"]
    assert second[1]["role"] == "assistant"
    result = second[2]["content"][0]
    assert (result["type"], result["tool_use_id"]) == ("tool_result", "toolu_1")
    assert result["content"] == "sunny in Oslo"


@pytest.mark.parametrize(
    ("kind", "error_class", "bedrock_name"),
    [
        ("overloaded_error", rxllm.ServerStreamError, "serviceUnavailableException"),
        ("rate_limit_error", rxllm.RateLimitStreamError, "throttlingException"),
        ("invalid_request_error", rxllm.StreamError, "validationException"),
    ],
)
@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_an_error_mid_stream_keeps_the_partial(
    server: Server, cloud: str, kind: str, error_class: type, bedrock_name: str
) -> None:
    server.push(Script(["Half ", "an answer"], error_event=kind))
    with pytest.raises(error_class) as caught:
        rxllm.collect(CLOUDS[cloud](server).stream("hi"), timeout=10)
    error = caught.value
    assert error.partial is not None and error.partial.text == "Half an answer"
    assert error.provider == cloud
    assert error.retryable == (kind != "invalid_request_error")
    # on Bedrock the frame is an exception message, named as AWS names it
    assert (bedrock_name if cloud == "bedrock" else kind) in str(error)
    assert isinstance(error.__cause__, anthropic.APIStatusError)  # what the SDK raises


@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_a_dropped_connection_is_interrupted_with_the_partial(server: Server, cloud: str) -> None:
    server.push(Script(["one ", "two ", "three"], drop_after=2))
    with pytest.raises(rxllm.StreamInterrupted) as caught:
        rxllm.collect(CLOUDS[cloud](server).stream("hi"), timeout=10)
    assert caught.value.partial is not None
    assert caught.value.partial.text == "one two "


@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_an_http_status_error_is_mapped(server: Server, cloud: str) -> None:
    server.push(Script(status=429, headers={"retry-after": "3"}))
    with pytest.raises(rxllm.RateLimitError) as caught:
        rxllm.collect(CLOUDS[cloud](server).stream("hi"), timeout=10)
    assert caught.value.retry_after == 3.0
    assert caught.value.provider == cloud


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_take_until_closes_the_http_stream(server: Server, cloud: str, mode: str) -> None:
    server.push(Script([f"w{i} " for i in range(300)], delay=0.01))
    stream = (
        CLOUDS[cloud](server)
        .stream("count")
        .pipe(ops.accumulate(), ops.take_until(lambda s: "w4 " in s.text))
    )
    response = run(stream, mode)
    assert response.text == "w0 w1 w2 w3 w4 "
    assert response.finish_reason is None
    record = server.last
    assert record.wait_closed(2)
    assert record.chunks_after_close == 0
    assert record.chunks_written <= 7
    assert not record.finished


def test_missing_aws_credentials_say_where_to_put_them(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    server.push(Script("never sent"))
    # a region no other test uses: the SDK keeps one boto3 session per set of settings,
    # and an earlier test's session holds the credentials it found then
    llm = bedrock(server, aws_region="ap-south-2")
    with pytest.raises(rxllm.AuthenticationError) as caught:
        rxllm.collect(llm.stream("hi"), timeout=10)
    message = str(caught.value)
    assert "AWS_ACCESS_KEY_ID" in message and "AWS_BEARER_TOKEN_BEDROCK" in message
    assert caught.value.provider == "bedrock"
    assert server.requests == []  # nothing was sent unsigned


def test_missing_google_credentials_say_where_to_put_them(server: Server) -> None:
    pytest.importorskip("google.auth")
    server.push(Script("never sent"))
    llm = vertex(server, access_token=None)
    with pytest.raises(rxllm.AuthenticationError) as caught:
        rxllm.collect(llm.stream("hi"), timeout=10)
    message = str(caught.value)
    assert "access_token" in message and "GOOGLE_APPLICATION_CREDENTIALS" in message
    assert server.requests == []


@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_a_cloud_client_given_for_one_kind_of_call_is_not_copied(
    server: Server, cloud: str
) -> None:
    if cloud == "bedrock":
        client: Any = anthropic.AnthropicBedrock(base_url=server.url, aws_region="us-east-1")
        llm = rxllm.model(f"bedrock:{BEDROCK_MODEL}", client=client)
    else:
        client = anthropic.AnthropicVertex(
            region="us-east5", project_id="p", access_token=TOKEN, base_url=server.url
        )
        llm = rxllm.model(f"vertex:{VERTEX_MODEL}", client=client)
    server.push(Script("sync works"))
    assert rxllm.collect(llm.stream("hi"), timeout=10).text == "sync works"  # the client given
    with pytest.raises(rxllm.LLMError, match="pass async_client= too"):
        asyncio.run(rxllm.acollect(llm.stream("hi"), timeout=10))


def test_the_clouds_secrets_never_show_in_errors(server: Server) -> None:
    server.push(Script(status=403, error_body={"message": f"denied for {SECRET_KEY}"}))
    with pytest.raises(rxllm.PermissionDeniedError) as caught:
        rxllm.collect(bedrock(server).stream("hi"), timeout=10)
    assert SECRET_KEY not in str(caught.value)
    server.push(Script(status=401, error_body={"message": f"bad token {TOKEN}"}))
    with pytest.raises(rxllm.AuthenticationError) as caught_vertex:
        rxllm.collect(vertex(server).stream("hi"), timeout=10)
    assert TOKEN not in str(caught_vertex.value)
