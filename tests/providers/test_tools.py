"""Tool definitions in each provider's format, from functions, models and dicts."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rxllm.tools import function_parameters, tool_schema


def search(
    query: str, limit: Annotated[int, Field(description="At most this many.")] = 5
) -> list[str]:
    """Search the archive.

    Longer notes for humans, not sent.

    Args:
        query: What to look for; quoted phrases
            are matched exactly.
        limit (int): How many results (overridden by the annotation's description).

    Returns:
        The titles found.
    """
    return []


def test_a_google_style_args_section_describes_the_parameters() -> None:
    # this module's `from __future__ import annotations` makes them strings: they are
    # evaluated (an Annotated[...] used to fail the call with PydanticUserError)
    schema = function_parameters(search)
    assert schema["properties"]["query"] == {
        "description": "What to look for; quoted phrases are matched exactly.",
        "type": "string",
    }
    assert schema["properties"]["limit"]["description"] == "At most this many."
    assert schema["required"] == ["query"]
    spec = tool_schema(search, "anthropic")
    assert spec["description"] == "Search the archive."


def test_a_function_without_an_args_section_has_no_descriptions() -> None:
    def ping(host: str) -> str:
        """Ping a host: host means the name."""
        return host

    assert function_parameters(ping)["properties"]["host"] == {"type": "string"}


class Lookup(BaseModel):
    """Find a customer."""

    customer_id: str = Field(description="The CRM id")


def test_a_model_class_keeps_its_field_descriptions_in_both_formats() -> None:
    openai_spec = tool_schema(Lookup, "openai")["function"]
    anthropic_spec = tool_schema(Lookup, "anthropic")
    assert openai_spec["parameters"] == anthropic_spec["input_schema"]
    assert openai_spec["parameters"]["properties"]["customer_id"]["description"] == "The CRM id"
    assert openai_spec["description"] == anthropic_spec["description"] == "Find a customer."
