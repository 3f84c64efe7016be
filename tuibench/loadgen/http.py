"""The load's HTTP/1.1 client: keep-alive connections, a response's body handed over as it arrives.

It does what the load needs of HTTP and nothing more: POST a JSON body or GET, with headers, over TCP or TLS, read
a status and a streamed body (chunked or sized), and keep the connection for the next request. Responses are
parsed by httptools (llhttp, in C); a request is one bytes write. aiohttp did the same with a Python object graph
per request (request and response objects, a stream reader, a payload, timers), and the client spent a third
more CPU per request with it (0.19 against 0.13 ms at 800 req/s, benchmarks/loadgen_capacity.py): what decides
how many requests one core sends on time. Tests script their own session with the same calls in its place.
"""

import asyncio
import os
import socket
import ssl
import weakref
from urllib.parse import urlsplit


class HttpError(Exception):
    """The exchange failed; the message says how, in a reader's words."""


class ConnectFailed(HttpError):
    """No connection could be made (refused, unreachable, name unknown, TLS)."""

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


class Disconnected(HttpError):
    """The server closed or reset the connection before its response ended."""


class MalformedResponse(HttpError):
    """What came back is not HTTP/1.1."""


def _reason(exc: OSError, host: str) -> str:
    """Why a connection could not be made, in the system's words: asyncio's own ("Connect call failed (host, port)")
    hide the errno's, and a TLS error's errno is OpenSSL's, not the system's."""
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {getattr(exc, 'verify_message', None) or exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"{host}: {exc.strerror}"
    return os.strerror(exc.errno) if isinstance(exc.errno, int) and exc.errno > 0 else str(exc)


class _Target:
    """A URL, split once: where to connect and what to write in the request line."""

    __slots__ = ("key", "host", "port", "tls", "path", "host_header")

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectFailed(f"not an http(s) URL: {url}")  # a request's failure, named, as any other
        self.tls = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port or (443 if self.tls else 80)
        self.key = (self.host, self.port, self.tls)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.host_header = parts.netloc.rpartition("@")[2]


class _Connection(asyncio.Protocol):
    """One TCP connection: httptools parses what arrives into the response now being read."""

    def __init__(self):
        import httptools

        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self._framed = False  # the response says where its body ends (a length, or chunks); else at the close
        self._parser = httptools.HttpResponseParser(self)
        self._parse_error = httptools.HttpParserError

    # asyncio's side
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except self._parse_error as exc:
            self._end(MalformedResponse(f"malformed HTTP response: {exc}"))
            self.transport.close()

    def eof_received(self) -> bool:
        if self.response is not None and self.response.status and not self._framed:
            self.on_message_complete()  # a body that runs to the close has ended
        self._end(Disconnected("server disconnected mid-stream"))
        return False  # and close ours

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._end(Disconnected(f"connection lost: {exc.strerror or exc}" if isinstance(exc, OSError) else
                               "server disconnected mid-stream"))

    # httptools' side
    def on_message_begin(self) -> None:
        self._framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        if self.response is not None:
            self.response._headed(self._parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._body(body)

    def on_message_complete(self) -> None:
        response, self.response = self.response, None
        if response is not None:
            response._complete(self._parser.should_keep_alive())

    def _end(self, error: HttpError) -> None:
        response, self.response = self.response, None
        if response is not None:
            response._fail(error)


class Response:
    """A response being read: its status once its headers are in, then its body as it comes (`content.iter_any()`,
    as aiohttp's), or whole (`read`, `text`)."""

    __slots__ = ("status", "content", "_pieces", "_waiter", "_done", "_error", "_keep_alive", "_headers_in",
                 "_on_end")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.status = 0
        self.content = self  # aiohttp's response.content.iter_any(), spelled the same
        self._pieces: list[bytes] = []
        self._waiter: asyncio.Future | None = None
        self._done = False
        self._error: HttpError | None = None
        self._keep_alive = False
        self._headers_in = loop.create_future()
        self._on_end = None  # called with whether its connection may be kept, once it ends after its reader left

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _headed(self, status: int) -> None:
        self.status = status
        if not self._headers_in.done():
            self._headers_in.set_result(None)

    def _body(self, piece: bytes) -> None:
        self._pieces.append(piece)
        self._wake()

    def _complete(self, keep_alive: bool) -> None:
        self._done, self._keep_alive = True, keep_alive
        self._wake()
        self._ended(keep_alive)

    def _fail(self, error: HttpError) -> None:
        self._error = error
        if not self._headers_in.done():
            self._headers_in.set_exception(error)
        self._wake()
        self._ended(False)

    def _ended(self, keep_alive: bool) -> None:
        on_end, self._on_end = self._on_end, None  # once; and no cycle left through it for the collector to find
        if on_end is not None:
            on_end(keep_alive)

    def iter_any(self) -> "Response":
        """Each part of the body as it arrives (all that came since the last), until it ends. The response is its
        own iterator, not an async generator: a generator left at [DONE] is closed by asyncio's finalizer hook, a
        thread-safe call through the loop's self-pipe for every request."""
        return self

    def __aiter__(self) -> "Response":
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._pieces:
                pieces, self._pieces = self._pieces, []
                return pieces[0] if len(pieces) == 1 else b"".join(pieces)
            if self._done:
                raise StopAsyncIteration
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.iter_any()])

    async def text(self) -> str:
        return (await self.read()).decode(errors="replace")


class _Exchange:
    """`async with session.post(...) as response`: the request written on a pooled connection, the response once its
    headers are in; on leaving, the connection back to the pool if its response ended and it may be kept."""

    __slots__ = ("session", "method", "url", "body", "headers", "connection", "response")

    def __init__(self, session: "Session", method: str, url: str, body: bytes, headers: dict[str, str] | None):
        self.session, self.method, self.url, self.body, self.headers = session, method, url, body, headers
        self.connection: _Connection | None = None
        self.response: Response | None = None

    async def __aenter__(self) -> Response:
        session = self.session
        target = session._target(self.url)
        self.connection = connection = await session._connection(target)
        self.response = response = Response(asyncio.get_running_loop())
        connection.response = response
        head = f"{self.method} {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
        if self.headers:
            head += "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
        if self.method == "POST":
            head += f"Content-Length: {len(self.body)}\r\n"
        try:
            connection.transport.write(head.encode("latin-1") + b"\r\n" + self.body)
            await response._headers_in
        except BaseException as exc:  # failed, timed out or cancelled before the headers: `async with` won't exit
            await self.__aexit__(type(exc), exc, None)
            raise
        return response

    async def __aexit__(self, kind, error, traceback) -> None:
        connection, response = self.connection, self.response
        if connection is None:
            return
        if error is None and response is not None and response._error is None and not response._done:
            # Left before the end (a stream read to its [DONE]; the terminating chunk is on its way): the
            # connection goes back to the pool when the response ends, not closed for a few bytes.
            response._on_end = self._release
        else:
            self._release(error is None and response is not None and response._done and response._keep_alive)

    def _release(self, keep_alive: bool) -> None:
        connection = self.connection
        if keep_alive and not connection.closed:
            self.session._idle.setdefault(self.session._target(self.url).key, []).append(connection)
        else:  # cut short (a timeout, a failure): nobody else can read what is left of this stream
            connection.response = None
            if connection.transport is not None:
                connection.transport.close()


class Session:
    """The load's connections to its server(s), kept alive between requests. No limit of its own: the load's
    concurrency limit is its driver's."""

    def __init__(self):
        self._idle: dict[tuple, list[_Connection]] = {}
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()  # idle or busy: all closed with the session
        self._targets: dict[str, _Target] = {}
        self._tls: ssl.SSLContext | None = None

    def post(self, url: str, data: bytes, headers: dict[str, str] | None = None) -> _Exchange:
        return _Exchange(self, "POST", url, data, headers)

    def get(self, url: str, headers: dict[str, str] | None = None) -> _Exchange:
        return _Exchange(self, "GET", url, b"", headers)

    def _target(self, url: str) -> _Target:
        if (target := self._targets.get(url)) is None:
            target = self._targets[url] = _Target(url)
        return target

    async def _connection(self, target: _Target) -> _Connection:
        idle = self._idle.get(target.key)
        while idle:
            connection = idle.pop()
            if not connection.closed and not connection.transport.is_closing():
                return connection
        if target.tls and self._tls is None:
            self._tls = ssl.create_default_context()
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                _Connection, target.host, target.port, ssl=self._tls if target.tls else None)
        except OSError as exc:  # refused, unreachable, unknown name (socket.gaierror), TLS (ssl.SSLError)
            raise ConnectFailed(_reason(exc, target.host), exc.errno) from None
        self._open.add(connection)
        return connection

    async def close(self) -> None:
        for connection in list(self._open):
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()

    async def __aenter__(self) -> "Session":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
