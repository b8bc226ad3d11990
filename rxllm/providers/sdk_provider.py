"""A model reached through an official SDK: its credentials and its SDK clients.

`SDKProvider` is what `rxllm.openai(...)`, `rxllm.anthropic(...)` and every OpenAI-compatible
service bind an `LLM` to: the model name, the key (given, or from the provider's
environment variable, never another provider's), one sync client and one async client per
event loop (made on first use, or given), and the wire protocol's codec class, which makes
one `HTTPCodec` per call. A client given for one kind of call (sync or asyncio) is copied
for the other kind, with its key, base URL, headers, query, timeout and retries.

Why ~400 lines in one module: keys, the clients of both kinds, copying a given client for
the other kind, transports and pickling are one provider's lifecycle of its clients.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

from rxllm import errors
from rxllm._loops import at_loop_end
from rxllm.parts import UnsupportedPart
from rxllm.providers import _sdk_private
from rxllm.providers.http_call import HTTPCall, HTTPCodec, HTTPCodecClass
from rxllm.request import check_params

if TYPE_CHECKING:
    from rxllm.request import Request

__all__ = ["TRANSPORTS", "SDKProvider", "client_options"]

TRANSPORTS = ("httpx", "aiohttp")
"""The HTTP transports of the async clients rxllm makes (the SDKs' two)."""

_default_transport: str | None = None
"""The transport of providers given none (None: aiohttp when the SDK's extra is installed);
the tests run the asyncio suite on each."""

_AIOHTTP_HINT = "pip install 'rxllm[aiohttp]' (the SDKs' aiohttp extra)"


def _credential(client: Any, name: str) -> str | None:
    """A client's `api_key` / `auth_token` (public attributes; Anthropic's clients have a
    token, OpenAI's none)."""
    value = getattr(client, name, None)
    return value if isinstance(value, str) and value else None


_CREDENTIAL_WORDS = ("auth", "key", "token", "secret")


def _header_credentials(client: Any) -> list[str]:
    """Credentials a client sends in its `default_headers` (an `api-key` header, an
    `Authorization` of a gateway): each value, and the token after an auth scheme."""
    found: list[str] = []
    for name, value in _sdk_private.custom_headers(client).items():
        if isinstance(value, str) and any(w in str(name).lower() for w in _CREDENTIAL_WORDS):
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.isalpha():
                found.append(token.strip())
    return found


def client_options(defaults: dict[str, Any]) -> dict[str, Any]:
    """Take what configures a provider's SDK clients (`max_retries`, `transport`) out of the
    keyword arguments a provider's factory got, checked; what is left are the `LLM`'s
    default request parameters.

    >>> defaults = {"max_retries": 2, "temperature": 0.5}
    >>> client_options(defaults), defaults
    ({'max_retries': 2, 'transport': None}, {'temperature': 0.5})
    """
    max_retries = defaults.pop("max_retries", None)
    check_params({"max_retries": max_retries})
    return {"max_retries": max_retries, "transport": defaults.pop("transport", None)}


class SDKProvider:
    """Configuration and SDK clients of one model (a `rxllm.codec.Provider`).

    Subclasses are one per SDK (`OpenAIProvider`, `AnthropicProvider`): how to make its
    clients, which clients can be copied, the environment variable of the key. The wire
    protocol is the `codec` class given: Chat Completions or the Responses API on OpenAI's
    SDK, Messages on Anthropic's. `name` and `env_var` default to the SDK's own and are
    given for the services that speak its protocol (`"groq"`, `GROQ_API_KEY`).
    """

    name = "http"
    env_var = ""
    key_hint = ""
    _sent: dict[bool, dict[str, Any]] | None = None
    """Unpickled from a provider given clients: the settings of its (sync, async) clients."""
    _sent_credentials = False
    """Whether `_sent` holds credentials (else the key is read here, as for `api_key=None`)."""

    def __init__(
        self,
        model: str,
        codec: HTTPCodecClass,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        async_client: Any = None,
        max_retries: int | None = None,
        name: str | None = None,
        env_var: str | None = None,
        label: str | None = None,
        transport: str | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        if env_var is not None:
            self.env_var = env_var
        self.label = label or f"rxllm.{self.name}()"
        """How users made this provider, for messages: `rxllm.openai()`,
        `rxllm.model("groq:llama-3.3-70b")`."""
        if not isinstance(model, str) or not model:
            raise ValueError(f"{self.label} needs a model name as its first argument")
        if (client is not None or async_client is not None) and (api_key or base_url):
            raise ValueError(
                f"{self.label} got a client and api_key/base_url: those configure the "
                "clients rxllm makes, and a client you pass has its own; set them on the client"
            )
        self.model = model
        self._codec = codec  # the wire protocol's codec class: one codec per call
        self.api_key = api_key
        self.base_url = base_url
        self._client = client  # the sync client in use: given, or made on first use
        self._async_client = async_client
        self._given = (client, async_client)  # what the user passed, never what rxllm made
        self._max_retries = max_retries
        if transport not in (None, *TRANSPORTS):
            raise ValueError(
                f"transport must be one of {', '.join(map(repr, TRANSPORTS))} or None (aiohttp "
                f"when installed), not {transport!r}"
            )
        if transport == "aiohttp" and importlib.util.find_spec("aiohttp") is None:
            raise ImportError(f"transport='aiohttp' needs aiohttp: {_AIOHTTP_HINT}")
        self.transport = transport
        """The async clients' HTTP transport: "httpx", "aiohttp", or None (aiohttp when the
        SDK's aiohttp extra is installed); the sync clients always send with httpx2."""
        self._lock = threading.Lock()
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    # --- to be provided by each SDK ---------------------------------------------------------

    def new_client(self, options: dict[str, Any], *, asynchronous: bool) -> Any:
        """A new SDK client (`asynchronous` selects the async one)."""
        raise NotImplementedError

    # --- shared ------------------------------------------------------------------------------

    def key(self) -> str | None:
        """The API key for the clients rxllm makes (None: the credentials are a given
        client's, or a token the SDK reads itself); `AuthenticationError` naming the
        variable when there is no credential at all."""
        key = self.api_key or os.environ.get(self.env_var)
        if key:
            return key
        given = [client for client in self._given if client is not None]
        if any(self.has_credentials(client) for client in given) or self._sent_credentials:
            return None  # a given client brings its own: a key, a token, a key provider
        if any(self.extra_secrets()):  # e.g. ANTHROPIC_AUTH_TOKEN, read by the SDK
            return None
        raise errors.AuthenticationError(
            f"no {self.name} API key: set the {self.env_var} environment variable or pass "
            f"api_key=... to {self.label}{self.key_hint}",
            provider=self.name,
        )

    def secrets(self) -> tuple[str, ...]:
        """Every credential this provider may send (given, from the environment, or held by
        a client): none of them may appear in an error message."""
        found = [self.api_key, os.environ.get(self.env_var), *self.extra_secrets()]
        for options in (self._sent or {}).values():
            found.extend(options.get(name) for name in _CREDENTIALS)
        for client in (self._client, self._async_client, *self._async_clients.values()):
            found.extend(_credential(client, name) for name in ("api_key", "auth_token"))
            if client is not None:
                found.extend(_header_credentials(client))
        return tuple({s for s in found if isinstance(s, str) and s})

    def environment_credentials(self) -> dict[str, str]:
        """The client options the SDK reads from the environment when they are not given
        (option -> variable): a pickle leaves a credential that came from there out."""
        return {"api_key": self.env_var}

    def extra_secrets(self) -> tuple[str | None, ...]:
        """Other credentials the SDK reads on its own (e.g. an auth-token variable)."""
        return ()

    def has_credentials(self, client: Any) -> bool:
        """Whether a given client can authenticate (clients of other auth schemes, such as
        Bedrock's or Vertex's, are trusted to)."""
        if not self.copyable(client):
            return True
        headers = _sdk_private.custom_headers(client)
        return bool(
            _credential(client, "api_key")
            or _credential(client, "auth_token")
            or _sdk_private.api_key_provider(client)
            or {str(name).lower() for name in headers} & _AUTH_HEADERS
        )

    def copyable(self, client: Any) -> bool:
        """Whether rxllm can make a client of the other kind (sync/async) like `client`:
        the SDK's own two classes, not Azure, Bedrock or Vertex ones."""
        return False

    def twin_options(self, client: Any, *, asynchronous: bool) -> dict[str, Any]:
        """What a client of the other kind (`asynchronous` or not) needs to talk as `client`
        does (beyond its key, base URL, timeout, retries, headers and query)."""
        return {}

    def _options(self, *, asynchronous: bool) -> dict[str, Any]:
        # A client given for one kind of call is the model for the other kind: same
        # endpoint, credentials, headers and query, never the SDK's
        # default host with this client's key.
        given_sync, given_async = self._given
        twin = given_sync if asynchronous else given_async
        options: dict[str, Any]
        if twin is not None:
            given, wanted = (
                ("client=", "async_client=") if asynchronous else ("async_client=", "client=")
            )
            if not self._can_copy(twin):
                raise ValueError(
                    f"{self.label} was given only {given}, a client ({type(twin).__name__}"
                    f"{', with its own http_client' if self.copyable(twin) else ''}) that rxllm "
                    f"cannot copy for the other kind of call: pass {wanted} too"
                )
            options = self._copy_options(twin, asynchronous=asynchronous)
        elif self._sent is not None:  # unpickled: the settings of the clients given there
            options = dict(self._sent[asynchronous])
            if not self._sent_credentials:
                options["api_key"] = self.key()
        else:
            options = {"api_key": self.key(), "base_url": self.base_url}
        if self._max_retries is not None:
            options["max_retries"] = self._max_retries
        return options

    def async_http_client(self, aiohttp_client: Any, httpx_client: Any) -> Any:
        """The http client of an async SDK client rxllm makes: the SDK's own
        `DefaultAioHttpClient` or `DefaultAsyncHttpxClient` (see `transport`)."""
        chosen = self.transport or _default_transport
        if chosen != "httpx":
            try:
                return aiohttp_client()
            except RuntimeError as error:  # the SDK's stand-in when its extra is missing
                if chosen == "aiohttp":
                    raise ImportError(
                        f"transport='aiohttp': the {self.name} SDK cannot use aiohttp here "
                        f"({error}): {_AIOHTTP_HINT}"
                    ) from error
        return httpx_client()

    def _can_copy(self, client: Any) -> bool:
        http = _sdk_private.http_client(client)
        return self.copyable(client) and type(http).__name__ in _sdk_private.SDK_HTTP_CLIENTS

    def _copy_options(self, client: Any, *, asynchronous: bool) -> dict[str, Any]:
        """A given client's settings, exactly, for a client of the kind `asynchronous`."""
        return {
            "api_key": client.api_key,
            "base_url": str(client.base_url),
            "timeout": client.timeout,
            "max_retries": client.max_retries,
            "default_headers": _sdk_private.custom_headers(client) or None,
            "default_query": _sdk_private.custom_query(client) or None,
            **self.twin_options(client, asynchronous=asynchronous),
        }

    def sync_client(self) -> Any:
        """The sync SDK client (made once, on first use)."""
        if self._client is not None:
            return self._client
        with self._lock:
            if self._client is None:
                self._client = self.new_client(
                    self._options(asynchronous=False), asynchronous=False
                )
            return self._client

    def async_client(self) -> Any:
        """The async SDK client for the running loop (one per loop: connections are per loop)."""
        if self._async_client is not None:
            return self._async_client
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            with self._lock:  # loops in several threads share this table
                client = self._async_clients.get(loop)
                if client is None:
                    self._forget_closed_loops()
                    options = self._options(asynchronous=True)
                    client = self.new_client(options, asynchronous=True)
                    self._async_clients[loop] = client
                    # its connections (an aiohttp session) are closed as the loop ends
                    self._closers[loop] = at_loop_end(client.close)
        return client

    def _forget_closed_loops(self) -> None:
        """Drop the clients of loops that are closed (each `asyncio.run` is a new loop): a
        client's pooled connections keep its loop alive, so the weak keys alone never let
        go. A loop ended by a runner (`asyncio.run`, ...) closed them as it ended
        (`at_loop_end`); after a bare `loop.close()` the garbage collector closes the
        sockets (the async clients rxllm makes have no finalizer that would try an
        `aclose()` on another loop)."""
        for old in [loop for loop in list(self._async_clients) if loop.is_closed()]:
            self._async_clients.pop(old, None)
            self._closers.pop(old, None)

    def endpoint(self) -> str | None:
        """The base URL this provider's calls go to, when known without making a client:
        the one given, or that of a client given or already made (None before the first
        call to the SDK's default host)."""
        if self.base_url:
            return str(self.base_url)
        try:
            clients = [self._client, self._async_client, *list(self._async_clients.values())]
        except RuntimeError:  # a loop's client added meanwhile
            clients = [self._client, self._async_client]
        for client in clients:
            url = getattr(client, "base_url", None)
            if url is not None:
                return str(url)
        return None

    def check(self, request: Request) -> None:
        """Reject what the wire protocol cannot take, before any request."""
        try:
            self._codec.check(request)
        except UnsupportedPart as exc:  # a service speaking the protocol: say its name
            if exc.provider == self.name:
                raise
            raise exc.for_provider(self.name) from None

    def codec(self, request: Request) -> HTTPCodec:
        """The codec of one call of `request`."""
        return self._codec(request, model=self.model, name=self.name, secrets=self.secrets)

    def make_call(self, request: Request) -> HTTPCall:
        """One call of this model (at subscription: may raise `AuthenticationError`)."""
        self.key()
        return HTTPCall(self, request, self.codec(request))

    # --- pickling ------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """A pickle (an `LLM` sent to Ray workers, or to another process) holds the
        configuration, never a client, lock or connection: the clients are made again where
        it is unpickled, on first use.

        Credentials: a key given as `api_key=` travels in the pickle, as it would in a
        closure of yours that held it; a key read from the environment never does (the
        receiving process reads its own `env_var`). A given client is sent as its settings
        (base URL, headers, query, timeout, retries, organization/project, its key or
        token or key provider), its credential left out when it is the environment's. A
        client rxllm cannot copy (Azure, Bedrock, Vertex, one with its own `http_client`)
        cannot be pickled: make the `LLM` in the process that uses it instead.
        """
        state = {k: v for k, v in self.__dict__.items() if k not in _NOT_PICKLED}
        if any(client is not None for client in self._given):
            sent = {kind: self._sent_options(asynchronous=kind) for kind in (False, True)}
            state["_sent"] = sent
            state["_sent_credentials"] = any(
                options.get(name) for options in sent.values() for name in _CREDENTIALS
            ) or any(
                str(header).lower() in _AUTH_HEADERS
                for options in sent.values()
                for header in options.get("default_headers") or {}
            )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._async_clients = weakref.WeakKeyDictionary()
        self._closers = weakref.WeakKeyDictionary()
        self._client = self._async_client = None
        self._given = (None, None)

    def _sent_options(self, *, asynchronous: bool) -> dict[str, Any]:
        """The settings a pickle sends for the clients of one kind (from the given client of
        that kind, or of the other kind as for a twin)."""
        given_sync, given_async = self._given
        client = (given_async or given_sync) if asynchronous else (given_sync or given_async)
        if not self._can_copy(client):
            raise TypeError(
                f"cannot pickle an LLM on a {type(client).__name__} client"
                f"{' with its own http_client' if self.copyable(client) else ''}: rxllm sends "
                "a client as its settings and cannot copy this one; make the LLM in the "
                "process that uses it (e.g. inside the pipeline function, made once there)"
            )
        options = self._copy_options(client, asynchronous=asynchronous)
        for name, variable in self.environment_credentials().items():
            value = options.get(name)
            if isinstance(value, str) and value and value == os.environ.get(variable):
                options[name] = None  # read from the environment where it is unpickled
        return options


_NOT_PICKLED = frozenset(
    {"_lock", "_async_clients", "_closers", "_client", "_async_client", "_given"}
)
_CREDENTIALS = ("api_key", "auth_token")
_AUTH_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})
