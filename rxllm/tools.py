"""Tool definitions in each provider's own format, from dicts or plain Python functions.

A tool may be given as the provider's own dict (passed through untouched), as the other
provider's dict (translated), as a Python function, whose JSON schema pydantic derives
from the signature (string annotations included) and whose docstring's first paragraph
becomes the description (its `Args:` section describes the parameters), or as a pydantic
model class (its own JSON schema, field descriptions included).

>>> def weather(city: str, unit: str = "C") -> str:
...     '''Current weather in a city.'''
...     return "sunny"
>>> schema = tool_schema(weather, "anthropic")
>>> schema["name"], schema["input_schema"]["required"]
('weather', ['city'])
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import pydantic

__all__ = ["function_parameters", "tool_schema"]


def function_parameters(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON schema of `fn`'s parameters, as pydantic sees their annotations, with the
    descriptions of an `Args:` section of its docstring (Google style; a
    `Field(description=...)` in the annotation wins).

    >>> def weather(city: str, unit: str = "C") -> str:
    ...     '''Current weather.
    ...
    ...     Args:
    ...         city: The city, e.g. Oslo.
    ...         unit (str): C or F.
    ...     '''
    >>> function_parameters(weather)["properties"]["city"]
    {'description': 'The city, e.g. Oslo.', 'type': 'string'}
    """
    fields: dict[str, Any] = {}
    described = _argument_descriptions(inspect.getdoc(fn) or "")
    try:  # string annotations (`from __future__ import annotations`) read as types
        signature = inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, SyntaxError):  # e.g. a name imported only for type checking
        signature = inspect.signature(fn)
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = Any if parameter.annotation is parameter.empty else parameter.annotation
        default = ... if parameter.default is parameter.empty else parameter.default
        if name in described and not _described(annotation, default):
            default = pydantic.Field(default, description=described[name])
        fields[name] = (annotation, default)
    model = pydantic.create_model(f"{fn.__name__}_arguments", **fields)
    return _untitled(model.model_json_schema())


def _described(annotation: Any, default: Any) -> bool:
    """Whether the parameter already has a description (its annotation's or default's
    `Field`), which a docstring's does not override."""
    metadata = getattr(annotation, "__metadata__", ())
    return any(
        isinstance(item, pydantic.fields.FieldInfo) and item.description
        for item in (*metadata, default)
    )


_ARGS_HEADERS = ("args:", "arguments:", "parameters:", "params:")
_ARGUMENT = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _argument_descriptions(doc: str) -> dict[str, str]:
    """The `name: description` entries of a docstring's `Args:` section (continuation
    lines, indented deeper, are joined; the section ends at the next unindented line)."""
    found: dict[str, str] = {}
    inside = False
    indent: int | None = None
    current: str | None = None
    for line in doc.splitlines():
        stripped = line.strip()
        if not inside:
            inside = stripped.lower() in _ARGS_HEADERS
            continue
        if not stripped:
            current = None
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:
            break  # the next section ("Returns:")
        if indent is None:
            indent = depth
        match = _ARGUMENT.match(stripped) if depth == indent else None
        if match is not None:
            current = match.group(1).lstrip("*")
            found[current] = match.group(2).strip()
        elif current is not None:
            found[current] = f"{found[current]} {stripped}".strip()
    return {name: text for name, text in found.items() if text}


def _untitled(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without the titles pydantic derives from names (noise for the model)."""
    schema.pop("title", None)
    for value in schema.get("properties", {}).values():
        value.pop("title", None)
    return schema


def tool_parameters(tool: Any) -> dict[str, Any]:
    """The JSON schema of what a function or a pydantic model class as a tool takes."""
    if inspect.isclass(tool) and issubclass(tool, pydantic.BaseModel):
        return _untitled(tool.model_json_schema())
    return function_parameters(tool)


def tool_schema(tool: Any, provider: Literal["openai", "anthropic"]) -> Any:
    """`tool` in `provider`'s format (a function, an OpenAI dict or an Anthropic dict)."""
    if inspect.isclass(tool) and issubclass(tool, pydantic.BaseModel):
        # A model as a tool (instructor's habit): its own schema, with field descriptions.
        name = tool.__name__
        description = inspect.cleandoc(tool.__doc__ or "").split("\n\n")[0].strip()
        parameters = tool_parameters(tool)
    elif callable(tool) and not isinstance(tool, Mapping):
        name = tool.__name__
        description = inspect.getdoc(tool) or ""
        description = description.split("\n\n")[0].strip()
        parameters = function_parameters(tool)
    elif isinstance(tool, Mapping):
        if tool.get("type") == "function" and isinstance(tool.get("function"), Mapping):
            if provider == "openai":
                return tool
            function: Mapping[str, Any] = tool["function"]
            name = function["name"]
            description = function.get("description", "")
            parameters = function.get("parameters") or {"type": "object", "properties": {}}
        elif "input_schema" in tool:
            if provider == "anthropic":
                return tool
            name = tool["name"]
            description = tool.get("description", "")
            parameters = tool["input_schema"]
        else:
            return tool  # a provider-specific tool (web search, computer use, ...): as given
    else:
        raise ValueError(
            f"a tool must be a function, a pydantic model class or a dict in a provider's "
            "format, not "
            f"{type(tool).__name__}"
        )
    if provider == "openai":
        function_spec: dict[str, Any] = {"name": name, "parameters": parameters}
        if description:
            function_spec["description"] = description
        return {"type": "function", "function": function_spec}
    spec: dict[str, Any] = {"name": name, "input_schema": parameters}
    if description:
        spec["description"] = description
    return spec
