"""The HTTP layer: FastAPI routes over :class:`~hub.api.service.ApiContext`.

Why FastAPI (on Starlette, under uvicorn): the request and response models below *are* the
OpenAPI 3.1 document the issue asks for (served at ``/openapi.json``, committed as
``schemas/api-openapi.json``), with validation of every parameter for free; Starlette alone would
need the document written and kept in step by hand. uvicorn is the ASGI server the TLS protocol
subclass (:mod:`hub.api.tls`) extends for mutual TLS.

Every answer that is not a success is an :class:`~hub.api.models.ErrorBody` with a reason code of
``hub/reasons.py`` and its Vietnamese and English texts; nothing else (no stack trace, no
framework default) reaches a client: the handlers below cover validation errors, unknown routes,
oversize bodies and unexpected exceptions.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.api.auth import (
    ApiError,
    Caller,
    CertificateMap,
    Guard,
    SignInBusy,
    SignInThrottle,
    WaitSlots,
    caller_for,
    served_entry,
)
from hub.api.credentials import SystemEntry
from hub.api.models import (
    AckRequest,
    AckResult,
    Agency,
    AgencyList,
    Edoc,
    ErrorBody,
    Evidence,
    MessageType,
    ReasonText,
    ReceivedList,
    SendResult,
    SentList,
    StatusRequest,
)
from hub.api.service import ApiContext, Verdict
from hub.api.tls import client_certificate
from hub.config import ApiSettings
from hub.edxml.model import StaffInfo
from hub.logs import get_logger
from hub.reasons import Reason

__all__ = ["API_PREFIX", "build_fastapi", "create_app", "openapi_document"]

log = get_logger("hub.api")

API_PREFIX = "/api/v1"
DOC_ID = r"^[0-9a-f]{64}$"
ORG_CODE = r"^[0-9A-Z][0-9A-Z.]{0,34}$"
XML_BODY = {"required": True, "content": {"application/xml": {"schema": {
    "type": "string", "format": "binary"}}}}

DocId = Annotated[str, Path(pattern=DOC_ID, description="SHA-256 (hex) of the exact bytes.")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "Bad request"), (401, "Not authenticated (API_AUTH_REQUIRED, "
                                    "API_CREDENTIALS_INVALID)"),
        (403, "Refused (API_CLIENT_CERT_UNKNOWN, API_CLIENT_CERT_REVOKED, "
              "API_CLIENT_CERT_INVALID, SENDER_ACCOUNT_MISMATCH)"),
        (404, "Not found (API_DOCUMENT_NOT_FOUND)"), (413, "Body too large (ENVELOPE_TOO_LARGE)"),
        (422, "Invalid request (API_REQUEST_INVALID) or packet refused by the intake"),
        (429, "Rate limited (API_RATE_LIMITED)"), (500, "Internal error (INTERNAL_ERROR)"),
        (503, "Broker or ledger unavailable, or the client certificate's revocation status "
              "unknown for now (API_CLIENT_CERT_STATUS_UNKNOWN)"))}


def error_body(reason: Reason, detail: str = "", doc_id: str | None = None) -> dict[str, Any]:
    return ErrorBody(errorCode=reason.value, errorDesc=reason.en,
                     message=ReasonText(vi=reason.vi, en=reason.en), detail=detail[:500],
                     docId=doc_id).model_dump()
def error_response(reason: Reason, status: int, detail: str = "", doc_id: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(reason, detail, doc_id), status_code=status, headers=headers)


class BodyTooLarge(StarletteHTTPException):
    """A request body over ``[api] max_body_bytes`` (an HTTPException so that FastAPI's body
    parsing lets it through to the handler)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body exceeds {limit} bytes")


class BodyLimit:
    """ASGI middleware: refuse a body over the limit by its Content-Length before reading it,
    and stop reading a body without one once it passes the limit."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes or declared < 0:
                    reason = Reason.ENVELOPE_TOO_LARGE if declared > 0 else Reason.API_REQUEST_INVALID
                    response = error_response(reason, 413 if declared > 0 else 400,
                                              f"Content-Length {value.decode('latin-1')[:20]}; "
                                              f"the limit is {self.max_bytes} bytes")
                    await response(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


class CrashBoundary:
    """ASGI middleware, outermost: a request that crashed leaves one ``api_request_crashed``
    event in the log and a 500 :class:`~hub.api.models.ErrorBody` to the client, nothing more.

    Starlette's ``ServerErrorMiddleware`` calls :func:`_bug` (the event, the 500 answer) and then
    re-raises "so that servers can log the error": uvicorn would print "Exception in ASGI
    application" and a plain-text traceback, with whatever the exception carries (an SQL
    statement and its values), beside the JSON events. The exception stops here instead.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Any) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:
                # _bug has logged it and answered (or the answer was under way: the server
                # closes the connection of a response left incomplete).
                return
            log.error("api_request_crashed", error=type(exc).__name__)
            await error_response(Reason.INTERNAL_ERROR, 500, "internal error (logged)")(
                scope, receive, send)


async def read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


_system_id = APIKeyHeader(name="X-System-Id", auto_error=False, scheme_name="systemId",
                          description="The agency system's id (the axis SDK's systemId).")
_secret = APIKeyHeader(name="X-System-Secret", auto_error=False, scheme_name="systemSecret",
                       description="The agency system's secret key.")
def _context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard


def _rate_limited(wait: float, detail: str) -> ApiError:
    return ApiError(Reason.API_RATE_LIMITED, 429, detail,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))})


def _signed_in(ctx: ApiContext, guard: Guard, address: str, system_id: str,
               secret: str) -> SystemEntry:
    """The system of a system id + secret. Failed sign-ins are throttled per address and per
    system id *before* the secret is checked (a secret that verified before skips that), and
    only a few secret checks run at once (:class:`~hub.api.auth.BoundedHasher`)."""
    signins = guard.signins
    known = signins.known(system_id, secret)
    if not known:
        wait = signins.reserve(address, system_id)
        if wait > 0:
            log.warning("api_sign_in_throttled", system=system_id[:64], address=address)
            raise _rate_limited(wait, "too many failed sign-ins from this address or for this "
                                      f"system; retry after {wait:.0f} s")
    try:
        system = ctx.credentials.verify(system_id, secret)
    except SignInBusy:
        if not known:
            signins.succeeded(address, system_id)  # nothing was checked: nothing spent
        raise _rate_limited(1, "too many sign-ins being checked; retry in a second") from None
    if system is None:
        signins.forget(system_id, secret)
        log.warning("api_credentials_refused", system=system_id[:64])
        raise ApiError(Reason.API_CREDENTIALS_INVALID, 401, "unknown system id or wrong secret")
    if not known:
        signins.succeeded(address, system_id)
        signins.remember(system_id, secret)
    return system


def authenticate(request: Request,
                 system_id: Annotated[str | None, Security(_system_id)] = None,
                 secret: Annotated[str | None, Security(_secret)] = None) -> Caller:
    """The caller: its client certificate first (clientAuth, not revoked, claimed by an
    organization), else its system id + secret; then its rate."""
    ctx = _context(request)
    guard = _guard(request)
    now = ctx.clock()
    der = client_certificate(request.scope)
    if der is not None:
        fingerprint = CertificateMap.fingerprint(der)
        if guard.client_certs is None:  # a certificate only reaches here under mutual TLS
            raise ApiError(Reason.API_CLIENT_CERT_INVALID, 403,
                           "client certificates are not configured on this hub")
        guard.client_certs.check(der, now)
        entry = ctx.certificates.organization(der, now)
        if entry is None:
            log.warning("api_certificate_unknown", fingerprint=fingerprint[:16])
            raise ApiError(Reason.API_CLIENT_CERT_UNKNOWN, 403,
                           f"client certificate sha-256 {fingerprint}")
        caller = caller_for(entry, f"cert:{fingerprint[:16]}", "certificate")
    elif system_id or secret:
        if ctx.require_client_cert:
            raise ApiError(Reason.API_AUTH_REQUIRED, 401, "this hub requires a client certificate")
        address = request.client.host if request.client else "unknown"
        system = _signed_in(ctx, guard, address, system_id or "", secret or "")
        served = served_entry(ctx.directory, system.organization, now)
        if served is None:
            raise ApiError(Reason.API_CREDENTIALS_INVALID, 403,
                           f"organization {system.organization} is not served by this hub")
        caller = caller_for(served, system.system_id, "secret")
    else:
        raise ApiError(Reason.API_AUTH_REQUIRED, 401,
                       "present a client certificate, or X-System-Id and X-System-Secret")
    wait = ctx.limiter.take(caller.organization)
    if wait > 0:
        raise _rate_limited(wait, f"retry after {wait:.2f} s")
    return caller


CallerDep = Annotated[Caller, Depends(authenticate)]
CtxDep = Annotated[ApiContext, Depends(_context)]


def _send_answer(doc_id: str, mid: str, verdict: Verdict) -> Response:
    if verdict.state == "refused":
        reason = verdict.reason or Reason.INTERNAL_ERROR
        return error_response(reason, 422, verdict.detail or "refused by the hub's intake",
                              doc_id=doc_id)
    state: Literal["accepted", "duplicate", "pending"] = (
        "accepted" if verdict.state == "accepted" else
        "duplicate" if verdict.state == "duplicate" else "pending")
    body = SendResult(docId=doc_id, messageId=mid, verdict=state)
    return JSONResponse(body.model_dump(), status_code=202 if state == "pending" else 200)


@contextmanager
def _waiting(request: Request, caller: Caller, wait: float) -> Iterator[float]:
    """The verdict wait a send may have: ``wait`` with one of the caller's waiting slots held,
    or 0 when it has none left (the answer is then ``202 pending`` at once: the packet is
    sent either way, and its signed receipt follows in the status list)."""
    if wait <= 0:
        yield 0.0
        return
    with _guard(request).waits.holding(caller.organization) as slot:
        yield wait if slot else 0.0


def create_app(ctx: ApiContext, guard: Guard | None = None) -> CrashBoundary:
    """The ASGI application: :func:`build_fastapi` wrapped in the body-size limit, inside the
    :class:`CrashBoundary`. ``guard`` (:func:`hub.api.server.build_guard`) defaults to the
    default ``[api]`` limits without client-certificate checks (no mutual TLS)."""
    return CrashBoundary(BodyLimit(build_fastapi(ctx, guard), ctx.max_body_bytes))


def default_guard() -> Guard:
    """The sign-in and waiting limits of a default ``[api]`` section, without mutual TLS."""
    api = ApiSettings()
    return Guard(SignInThrottle(api.signin_failure_per_s, api.signin_failure_burst),
                 WaitSlots(api.waits_per_org))


# -- errors ----------------------------------------------------------------------------------


async def _api_error(_request: Request, exc: ApiError) -> Response:
    return error_response(exc.reason, exc.status, exc.detail, headers=exc.headers)
async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return error_response(Reason.API_REQUEST_INVALID, 422,
                          f"{where}: {first.get('msg', 'invalid')}")
async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 413:
        return error_response(Reason.ENVELOPE_TOO_LARGE, 413, str(exc.detail))
    status = exc.status_code if exc.status_code in (400, 404, 405) else 400
    return error_response(Reason.API_REQUEST_INVALID, status, str(exc.detail)[:200])
async def _bug(_request: Request, exc: Exception) -> Response:
    log.error("api_request_crashed", error=type(exc).__name__)
    return error_response(Reason.INTERNAL_ERROR, 500, "internal error (logged)")


def utc_bound(name: str, value: datetime | None) -> datetime | None:
    """A ``since``/``until`` query value in UTC, the zone the ledger and the lists compare in.

    A value without an offset, or whose UTC form no ``datetime`` holds
    (``9999-12-31T23:59:59-14:00``), is bad input: 422 ``API_REQUEST_INVALID`` naming it,
    never an overflow in the ledger query (a 500).
    """
    if value is None:
        return None
    if value.tzinfo is None:
        raise ApiError(Reason.API_REQUEST_INVALID, 422,
                       f"query.{name}: dates need a time zone offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ApiError(Reason.API_REQUEST_INVALID, 422,
                       f"query.{name}: {value.isoformat()} is out of range: in UTC it must "
                       "fall between 0001-01-01 and 9999-12-31") from None


# -- the operations ------------------------------------------------------------------------
router = APIRouter()


@router.post(f"{API_PREFIX}/edocs", response_model=SendResult, status_code=200, tags=["documents"],
    summary="sendEdoc: send a signed document or status packet",
    responses={202: {"model": SendResult, "description": "Sent; verdict pending"}},
    openapi_extra={"requestBody": XML_BODY})
async def send_edoc(
    request: Request, caller: CallerDep, ctx: CtxDep,
    messageType: Annotated[MessageType, Query(description="The axis' messageType.")] = "edoc",
    from_: Annotated[str | None, Query(alias="from", pattern=ORG_CODE,
                                       description="The sender's code (must be yours).")] = None,
    serviceType: Annotated[Literal["eDoc"], Query(description="Always eDoc.")] = "eDoc",
    wait: Annotated[float | None, Query(ge=0, le=60, description=(
        "Seconds to wait for the intake's verdict (default [api] verdict_wait_s; "
        "0: answer at once)."))] = None,
) -> Response:
    """The exact bytes of the body are published to the hub's intake, never re-serialized;
    the intake validates them as it validates an AMQP publish."""
    body = await read_body(request, ctx.max_body_bytes)
    if not body:
        raise ApiError(Reason.API_REQUEST_INVALID, 422, "the body must be the EDXML packet")
    waited = ctx.verdict_wait_s if wait is None else wait
    with _waiting(request, caller, waited) as waited:
        doc_id, mid, verdict = await anyio.to_thread.run_sync(
            lambda: ctx.send(caller, body, messageType, from_, waited))
    return _send_answer(doc_id, mid, verdict)


@router.get(f"{API_PREFIX}/edocs", response_model=ReceivedList, tags=["documents"],
    summary="getReceivedEdocList: documents and statuses waiting for you")
def received(
    request: Request, caller: CallerDep, ctx: CtxDep,
    since: Annotated[datetime | None, Query(description="Received at or after.")] = None,
    until: Annotated[datetime | None, Query(description="Received before.")] = None,
    from_: Annotated[str | None, Query(alias="from", pattern=ORG_CODE,
                                       description="Only from this sender.")] = None,
    status: Annotated[Literal["new", "fetched"] | None,
                      Query(description="new: never fetched; fetched: not acknowledged")] = None,
    messageType: Annotated[MessageType | None, Query(description="Only this kind.")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    pageSize: Annotated[int, Query(ge=1, le=100)] = 50,
    wait: Annotated[float, Query(ge=0, le=30, description=(
        "Long poll: wait up to this many seconds for something to list."))] = 0,
) -> ReceivedList:
    since, until = utc_bound("since", since), utc_bound("until", until)
    with _guard(request).waits.holding(caller.organization) if wait > 0 else nullcontext(
            True) as slot:
        if not slot:
            raise _rate_limited(1, f"{caller.organization} already has "
                                   f"{_guard(request).waits.per_key} requests waiting; retry "
                                   "when one ends, or list without wait")
        total, items = ctx.received(caller, since=since, until=until, sender=from_,
                                    state=status, message_type=messageType, page=page,
                                    page_size=pageSize, wait=wait)
    return ReceivedList(total=total, page=page, pageSize=pageSize, items=items)


@router.get(f"{API_PREFIX}/edocs/{{docId}}", response_model=Edoc, tags=["documents"],
    summary="getEdoc: the exact bytes and the hub's receipts for them")
def get_edoc(caller: CallerDep, ctx: CtxDep, docId: DocId) -> Edoc:
    raw, item, receipts = ctx.fetch(caller, docId)
    return Edoc(item=item, content=base64.b64encode(raw).decode("ascii"),
                contentSha256=hashlib.sha256(raw).hexdigest(), receipts=receipts)


@router.get(f"{API_PREFIX}/edocs/{{docId}}/content", tags=["documents"],
    summary="getEdoc, bytes only: the EDXML file as received",
    response_class=Response,
    responses={200: {"content": {"application/xml": {"schema": {
             "type": "string", "format": "binary"}}}, "description": "The exact bytes"}})
def get_content(caller: CallerDep, ctx: CtxDep, docId: DocId) -> Response:
    raw, _item, _receipts = ctx.fetch(caller, docId)
    return Response(raw, media_type="application/xml")


@router.post(f"{API_PREFIX}/edocs/{{docId}}/ack", response_model=AckResult, tags=["documents"],
    summary="Confirm you have the document: the hub settles it")
def acknowledge(caller: CallerDep, ctx: CtxDep, docId: DocId) -> AckResult:
    done, already = ctx.acknowledge(caller, [docId])
    return AckResult(acknowledged=done, alreadyAcknowledged=already)


@router.post(f"{API_PREFIX}/acks", response_model=AckResult, tags=["documents"],
    summary="Confirm several documents at once")
def acknowledge_many(caller: CallerDep, ctx: CtxDep, request: AckRequest) -> AckResult:
    done, already = ctx.acknowledge(caller, request.docIds)
    return AckResult(acknowledged=done, alreadyAcknowledged=already)


@router.post(f"{API_PREFIX}/edocs/{{docId}}/status", response_model=SendResult, tags=["documents"],
    summary="updateStatus: report your handling of a document (settles it)",
    responses={202: {"model": SendResult, "description": "Sent; verdict pending"}},
    openapi_extra={"requestBody": {"required": True, "content": {
              "application/json": {"schema": {"$ref": "#/components/schemas/StatusRequest"}},
              "application/xml": {"schema": {"type": "string", "format": "binary"}}}}})
async def update_status(
    request: Request, caller: CallerDep, ctx: CtxDep, docId: DocId,
    wait: Annotated[float | None, Query(ge=0, le=60)] = None,
) -> Response:
    """JSON ``{"status": "acceptance"}``: the hub signs a QCVN 102 status packet as your
    organization (when it holds the key). An XML body: your own signed status packet,
    sent as it is."""
    body = await read_body(request, ctx.max_body_bytes)
    asked_wait = ctx.verdict_wait_s if wait is None else wait
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/xml", "text/xml"):
        if not body:
            raise ApiError(Reason.API_REQUEST_INVALID, 422, "empty status packet")
        with _waiting(request, caller, asked_wait) as waited:
            doc_id, mid, verdict = await anyio.to_thread.run_sync(
                lambda: ctx.send_status(caller, docId, body, waited))
        return _send_answer(doc_id, mid, verdict)
    try:
        asked = StatusRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ApiError(Reason.API_REQUEST_INVALID, 422,
                       f"{where or 'body'}: {first.get('msg', 'invalid')}") from None
    staff = StaffInfo(**asked.staff.model_dump()) if asked.staff is not None else None
    with _waiting(request, caller, asked_wait) as waited:
        doc_id, mid, verdict = await anyio.to_thread.run_sync(
            lambda: ctx.update_status(caller, docId, asked.status, asked.description, staff,
                                      waited))
    return _send_answer(doc_id, mid, verdict)


@router.get(f"{API_PREFIX}/sent", response_model=SentList, tags=["evidence"],
    summary="getSentEdocList: what you sent, and to whom it was delivered")
def sent(
    caller: CallerDep, ctx: CtxDep,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
    pageSize: Annotated[int, Query(ge=1, le=100)] = 50,
) -> SentList:
    since, until = utc_bound("since", since), utc_bound("until", until)
    total, items = ctx.sent(caller, since=since, until=until, limit=page * pageSize + 1)
    start = (page - 1) * pageSize
    return SentList(total=total, hasMore=len(items) > page * pageSize, page=page,
                    pageSize=pageSize, items=items[start:start + pageSize])


@router.get(f"{API_PREFIX}/sent/{{docId}}/evidence", response_model=Evidence, tags=["evidence"],
    summary="The receipts and statuses of a document you sent, and its timeline")
def evidence(caller: CallerDep, ctx: CtxDep, docId: DocId) -> Evidence:
    stored, receipts, statuses, timeline = ctx.evidence(caller, docId)
    return Evidence(docId=docId, documentId=stored.document_id, receipts=receipts,
                    statuses=statuses, timeline=timeline,
                    verify="base64-decode a receipt's content to a file and run "
                           "`hub receipt verify FILE --envelope ORIGINAL`")


@router.get(f"{API_PREFIX}/agencies", response_model=AgencyList, tags=["directory"],
    summary="getAgencies: the directory, with both code formats and validity dates")
def agencies(
    _caller: CallerDep, ctx: CtxDep,
    at: Annotated[date | None, Query(description="Only bodies that exist on this day.")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Name or code contains.")] = None,
    reach: Annotated[Literal["direct", "axis"] | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    pageSize: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AgencyList:
    moment = datetime.combine(at, datetime.min.time()) if at is not None else None
    found: list[Agency] = ctx.agencies(at=moment, query=q, reach=reach)
    start = (page - 1) * pageSize
    return AgencyList(total=len(found), page=page, pageSize=pageSize,
                      items=found[start:start + pageSize])
def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                             description=app.description, routes=app.routes,
                             openapi_version=app.openapi_version)
        components = schema.setdefault("components", {})
        # The status body is read by hand (JSON or XML): its schema is added here.
        status = StatusRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components.setdefault("schemas", {}).update(status.pop("$defs", {}))
        components["schemas"]["StatusRequest"] = status
        schemes = components.setdefault("securitySchemes", {})
        schemes["mutualTLS"] = {"type": "mutualTLS", "description": (
            "The agency system's client certificate, mapped to an organization through "
            "the directory (an organization signer's uid or fingerprint).")}
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if "security" in operation:
                    operation["security"] = [{"mutualTLS": []},
                                             {"systemId": [], "systemSecret": []}]
        app.openapi_schema = schema
    return app.openapi_schema



def build_fastapi(context: ApiContext | None, guard: Guard | None = None) -> FastAPI:
    """The FastAPI application; ``None`` builds it for its OpenAPI document only."""
    app = FastAPI(
        title="edxml-hub agency API",
        version="1.0.0",
        summary="The national document axis' operations, served by a provincial edxml-hub.",
        description=(
            "Send, list, fetch, acknowledge and report the status of QCVN 102:2016 EDXML "
            "documents; the agency directory; the evidence of a sent document. Every packet "
            "goes through the hub's intake (signatures enforced) exactly as over AMQP. "
            "Authentication: mutual TLS with the agency system's certificate, or a system id "
            "and secret. See docs/API.md."),
        openapi_url="/openapi.json", docs_url=None, redoc_url=None,
        responses=_ERRORS,
    )
    app.state.ctx = context
    app.state.guard = guard or default_guard()

    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _bug)
    app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document the API serves (``schemas/api-openapi.json`` is this)."""
    return build_fastapi(None).openapi()
