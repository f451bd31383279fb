"""The HTTP face of the engine: OpenAI-compatible routes, errors as OpenAI error JSON, the chat page.

``create_app(engine, settings)`` builds the FastAPI app; ``lhama serve`` runs it with uvicorn.
Every user error becomes a 4xx ``{"error": {"message", "type", "param", "code"}}``; only bugs
give a 500.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from lhama.errors import LhamaError
from lhama.inference.generate import Completion
from lhama.serve.engine import Engine, Job
from lhama.serve.moderation import moderate
from lhama.serve.errors import Unauthorized
from lhama.serve.prompt import Target, build_prompt, generation_config
from lhama.serve.schemas import (
    AssistantMessage, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice, ChunkChoice, Delta,
    ErrorResponse, FunctionCall, FunctionCallDelta, ModelCard, ModelList, ModerationRequest, ModerationResponse,
    ToolCall, ToolCallDelta, Usage,
)
from lhama.serve.settings import ServeSettings
from lhama.serve.toolrun import ToolRun
from lhama.serve.tools import ToolReply, plan_tools

WEB = Path(__file__).parent / "web"
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 404, 408, 413, 429)
}


def create_app(engine: Engine, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving ``engine``; the engine's worker starts and stops with the app.

    ``settings`` gives the request limits and the API key (default: the engine's settings;
    the queue, batch and timeout settings are always the engine's own)."""
    settings = settings or engine.settings
    target = Target(engine.loaded, engine.model_id, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine.start()
        yield
        engine.close()

    app = FastAPI(title="lhama", version="0.1.0", lifespan=lifespan,
                  description="OpenAI-compatible chat completions for lhama models (text and images).")
    app.state.started = int(time.time())
    _add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    auth = [Depends(_auth_dependency(settings.api_key))]
    _add_api_routes(app, engine, target, auth)
    _add_page_routes(app, engine)
    return app


def _add_api_routes(app: FastAPI, engine: Engine, target: Target, auth: list) -> None:
    @app.get("/v1/models", response_model=ModelList, responses=ERRORS, dependencies=auth)
    def models() -> ModelList:
        return ModelList(data=[ModelCard(id=engine.model_id, created=app.state.started)])

    @app.post("/v1/chat/completions", response_model=ChatCompletion, responses=ERRORS, dependencies=auth)
    async def chat_completions(request: ChatCompletionRequest) -> Any:
        tools = plan_tools(request, getattr(target.loaded.tokenizer, "chat_template", None), engine.model_id)
        prompt = await run_in_threadpool(build_prompt, request, target, tools)  # decodes images: keep it off the loop
        config = generation_config(request, target)
        # submit may run the guard (and a caption of the images): keep it off the loop too
        job = await run_in_threadpool(engine.submit, prompt, config)
        run = ToolRun(engine, request, target, tools, config) if tools else None
        reply = _Reply(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), engine.model_id)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            events = _sse(engine, job, reply, include_usage, run)
            return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        completion = await run_in_threadpool(_finish, engine, job)
        if run is None:
            return reply.completion(completion)
        answer, completion = await run_in_threadpool(run.finish, completion)
        return reply.completion(completion, answer)

    @app.post("/v1/moderations", response_model=ModerationResponse, responses=ERRORS, dependencies=auth)
    async def moderations(request: ModerationRequest) -> ModerationResponse:
        return await run_in_threadpool(moderate, request, engine, target)  # the guard and captions block


def _add_page_routes(app: FastAPI, engine: Engine) -> None:
    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": engine.model_id, "queued": engine.queued}

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB / "index.html")

    app.mount("/web", StaticFiles(directory=WEB), name="web")


class _Reply:
    """Builds the response objects of one completion."""

    def __init__(self, id_: str, created: int, model: str) -> None:
        self.id, self.created, self.model = id_, created, model

    def completion(self, done: Completion, tools: ToolReply | None = None) -> ChatCompletion:
        message = AssistantMessage(content=done.text)
        if tools is not None:
            calls = [ToolCall(id=c.id, function=FunctionCall(name=c.name, arguments=c.arguments)) for c in tools.calls]
            message = AssistantMessage(content=tools.content, tool_calls=calls or None)
        reason = "tool_calls" if message.tool_calls else done.finish_reason
        choice = Choice(message=message, finish_reason=reason, categories=list(done.categories) or None)
        return ChatCompletion(id=self.id, created=self.created, model=self.model, choices=[choice], usage=_usage(done))

    def chunk(self, delta: Delta, finish_reason: str | None = None, usage: Usage | None = None,
              categories: tuple[str, ...] = ()) -> str:
        choices = [] if usage else [ChunkChoice(delta=delta, finish_reason=finish_reason, categories=list(categories) or None)]
        chunk = ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=choices, usage=usage)
        return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"


def _usage(done: Completion) -> Usage:
    completion_tokens = len(done.token_ids)
    return Usage(prompt_tokens=done.prompt_tokens, completion_tokens=completion_tokens,
                 total_tokens=done.prompt_tokens + completion_tokens)


def _finish(engine: Engine, job: Job) -> Completion:
    *_, done = engine.stream(job)
    return done


async def _sse(engine: Engine, job: Job, reply: _Reply, include_usage: bool,
               run: ToolRun | None = None) -> AsyncIterator[str]:
    """OpenAI server-sent events: a role chunk, content chunks (then, with tools, one chunk per
    call), a finish chunk, [DONE]. An error after the stream started is sent as an ``error``
    event (the status is already 200)."""
    stream: Iterator = engine.stream(job) if run is None else run.stream(engine.stream(job))
    called = False
    try:
        yield reply.chunk(Delta(role="assistant", content=""))
        async for item in iterate_in_threadpool(stream):
            if isinstance(item, Completion):
                yield reply.chunk(Delta(), "tool_calls" if called else item.finish_reason, categories=item.categories)
                if include_usage:
                    yield reply.chunk(Delta(), usage=_usage(item))
            elif isinstance(item, ToolReply):
                called = bool(item.calls)
                for chunk in _tool_chunks(reply, item):
                    yield chunk
            elif item:
                yield reply.chunk(Delta(content=item))
    except LhamaError as exc:
        yield f"data: {json.dumps(_error_body(exc))}\n\n"
    finally:
        job.cancel()  # also when the client went away mid-stream
    yield "data: [DONE]\n\n"


def _tool_chunks(reply: _Reply, answer: ToolReply) -> Iterator[str]:
    """The held-back content, then each call whole as one OpenAI tool-call delta."""
    if answer.content:
        yield reply.chunk(Delta(content=answer.content))
    for index, call in enumerate(answer.calls):
        function = FunctionCallDelta(name=call.name, arguments=call.arguments)
        yield reply.chunk(Delta(tool_calls=[ToolCallDelta(index=index, id=call.id, type="function", function=function)]))


def _auth_dependency(api_key: str | None):
    def check(request: Request) -> None:
        if api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), api_key.encode()):
            raise Unauthorized("missing or wrong API key: send the header 'Authorization: Bearer <key>'",
                               None, "invalid_api_key")
    return check


def _error_body(exc: LhamaError) -> dict:
    return {"error": {
        "message": str(exc),
        "type": getattr(exc, "type", "invalid_request_error"),
        "param": getattr(exc, "param", None),
        "code": getattr(exc, "code", None),
    }}


def _error(status: int, message: str, type_: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LhamaError)
    async def lhama_error(_: Request, exc: LhamaError) -> JSONResponse:
        return JSONResponse(_error_body(exc), status_code=getattr(exc, "status", 400))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc.errors())

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), "invalid_request_error", None, str(exc.status_code))


def _validation_error(errors: Any) -> JSONResponse:
    """400 naming the field of the most specific pydantic error (the deepest location: for
    ``content: str | list[part]`` that is the part, not "content is not a string")."""
    first = max(errors, key=lambda e: len(e.get("loc", ()))) if errors else {}
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return _error(400, f"body: the request body is not valid JSON ({detail})", "invalid_request_error",
                      "body", "json_invalid")
    param = _field_name(tuple(first.get("loc", ())))
    message = f"{param}: {first.get('msg', 'invalid value')}"
    return _error(400, message, "invalid_request_error", param, first.get("type"))


def _field_name(loc: tuple) -> str:
    """('body', 'messages', 0, 'content', 'list[...]', 1, 'image_url', 'image_url', 'url')
    -> 'messages[0].content[1].image_url.url'."""
    name, previous = "", None
    for part in loc[1:] if loc[:1] == ("body",) else loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part == "str" or "[" in part or part == previous:
            pass  # pydantic's union-branch labels and discriminator tags are not field names
        else:
            name += f".{part}" if name else part
        previous = part
    return name or "body"


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413 before parsing them."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._refuse(send)
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> dict:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any) -> None:
        response = _error(413, f"the request body is larger than the server's limit of {self.max_bytes} bytes",
                          "invalid_request_error", "body", "body_too_large")
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})
