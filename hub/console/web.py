"""The console's pages: FastAPI routes rendering Jinja2 templates, plain HTML forms, no script.

Security, in one place:

- **Sign-in** with a login name and password (argon2id, :mod:`hub.console.users`); the session
  token lives in an ``HttpOnly; SameSite=Strict`` cookie (``Secure`` and the ``__Host-`` prefix
  unless ``[console] secure_cookies = false``), a new token at every sign-in.
- **CSRF**: every form carries the session's token (the sign-in form a token double-submitted
  in its own cookie); every POST without the right token is refused (403) before anything else
  is looked at.
- **Roles** (:data:`PERMISSIONS`): a POST the role does not allow is refused (403) and the
  attempt is recorded in the ledger; buttons a role cannot use are not shown.
- **Audit**: sign-in (and refusals), sign-out, replay, discard, bulk replay, downloads of bytes,
  evidence and CSV, account changes, refused attempts (pages and forms) — each written to the
  ledger with the person as actor *before* it happens; when the ledger cannot record it,
  nothing happens. Sign-out alone ends the session first and records it after (a failed
  record is logged): nobody is kept signed in at a shared workstation by a ledger outage.
- **Dead letters** are named by their key (:func:`hub.ops.dlq.letter_key`), never by the
  message id their publisher chose: an action reaches the one letter confirmed.
- **Never on the event loop**: whatever may block (argon2, the ledger, RabbitMQ, SQLite) runs in
  plain ``def`` routes and dependencies, which FastAPI runs in its thread pool; only reading the
  form (:func:`_form`) is ``async``. Sign-in attempts are still checked one at a time
  (:meth:`UserStore.authenticate`), so parallel guesses cannot race past the lockout.
- Headers: a strict Content-Security-Policy (no script at all), ``no-store`` on pages,
  ``nosniff``, no framing. No traceback ever reaches a page: every error is one line.
"""

import contextlib
import hmac
import math
import secrets
import tempfile
import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.console.i18n import DEFAULT, LANGUAGES, action_text, translator
from hub.console.services import (
    AuditUnavailable,
    ConsoleServices,
    FoundLetter,
    Report,
    counts,
    letter_digest,
)
from hub.console.throttle import AddressFailures
from hub.console.users import Role, Session, UserError, UserStore
from hub.edxml import VIETNAM_TZ, Envelope, EnvelopeRefused, StatusPacket, parse_packet
from hub.errors import HubError
from hub.ledger.search import OUTCOMES, organ_codes, search_documents
from hub.logs import get_logger
from hub.messages import UNFIT_CHAR
from hub.ops import dlq
from hub.reasons import Reason

log = get_logger("hub.console")

HERE = Path(__file__).parent

PERMISSIONS: Mapping[Role, frozenset[str]] = {
    Role.OPERATOR: frozenset({"dlq", "dlq.act", "ledger", "evidence", "report", "health"}),
    Role.AUDITOR: frozenset({"dlq", "ledger", "evidence", "report", "health"}),
    Role.ADMIN: frozenset({"users", "health"}),
}
"""What each role may do. ``dlq.act`` (replay, discard) is the operator's alone; ``users`` the
administrator's alone; an auditor only reads."""

_HOME = {Role.OPERATOR: "/dlq", Role.AUDITOR: "/ledger", Role.ADMIN: "/users"}
_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")


class _SignIn(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class _Refused(Exception):
    """Shown as a one-line error page with ``status``."""

    def __init__(self, status: int, key: str, detail: str = "") -> None:
        self.status, self.key, self.detail = status, key, detail


def _cookie_names(secure: bool) -> tuple[str, str]:
    return (("__Host-hub-session", "__Host-hub-signin") if secure
            else ("hub-session", "hub-signin"))


def _seconds_until(until: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``until``, at least one (a Retry-After value)."""
    return max(1, math.ceil((until - now).total_seconds()))


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _local(at: datetime | None) -> str:
    if at is None:
        return ""
    return at.astimezone(VIETNAM_TZ).strftime("%Y-%m-%d %H:%M:%S")


_UNITS = {"vi": ("giây", "phút", "giờ", "ngày"), "en": ("s", "min", "h", "d")}


def _age(seconds: float | None, lang: str = DEFAULT) -> str:
    """How long ago, in the reader's words: ``12 phút``, ``3 giờ 5 phút``, ``2 ngày 4 giờ``."""
    if seconds is None:
        return ""
    sec, minute, hour, day = _UNITS.get(lang, _UNITS[DEFAULT])
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} {sec}"
    if s < 3600:
        return f"{s // 60} {minute}"
    if s < 86400:
        return f"{s // 3600} {hour} {s % 3600 // 60} {minute}"
    return f"{s // 86400} {day} {s % 86400 // 3600} {hour}"


def _date_param(text: str | None) -> datetime | None:
    """A form date (``YYYY-MM-DD``), midnight Vietnam time; None when empty. A day that does
    not exist, or whose midnight is before year 1 in UTC (``0001-01-01``), is a bad input."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text.strip())
        return datetime(day.year, day.month, day.day, tzinfo=VIETNAM_TZ).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _Refused(400, "error.bad_input", f"{text[:40]!r} is not a date (YYYY-MM-DD)") from None


_SEQ_MAX = 2**63 - 1
"""The largest ledger sequence number SQLite (and PostgreSQL's bigint) can hold."""


def _seq_param(text: str) -> int | None:
    """A page cursor (``before``): a ledger sequence number, or None when empty."""
    if not text:
        return None
    digits = text.strip()
    value = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 19 else -1
    if not 0 <= value <= _SEQ_MAX:
        raise _Refused(400, "error.bad_input", f"before={text[:24]!r} is not a page of the ledger")
    return value


def _plain(name: str, text: str) -> str:
    """A text typed into a search field or taken from a path: refused (400) when it holds a
    control character (:data:`~hub.messages.UNFIT_CHAR`). PostgreSQL cannot hold a NUL in a
    text value (the query fails where SQLite finds nothing), and no organization code,
    DocumentId or digest holds one."""
    if UNFIT_CHAR.search(text):
        raise _Refused(400, "error.control_chars", f"{name}={text[:40]!r}")
    return text


def _same_token(sent: str, expected: str) -> bool:
    """Whether a form returned the token it was given. Compared as bytes:
    :func:`hmac.compare_digest` refuses a ``str`` holding anything but ASCII (a TypeError),
    and a token sent by someone else may hold anything."""
    return bool(sent) and bool(expected) and hmac.compare_digest(
        sent.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


_HEX = frozenset("0123456789abcdefABCDEF")


async def _form(request: Request) -> FormData:
    """The request's form, read once on the event loop (the routes that use it are plain
    ``def``, run in the thread pool)."""
    return await request.form()


Form = Annotated[FormData, Depends(_form)]


def default_report_since(now: datetime) -> str:
    """The adoption report's default start: the first day of the month a year ago."""
    today = now.astimezone(VIETNAM_TZ).date()
    return (today.replace(day=1) - timedelta(days=366)).replace(day=1).isoformat()


def create_app(services: ConsoleServices, users: UserStore,
               failures: AddressFailures | None = None) -> FastAPI:
    """The console application (serve it with uvicorn: ``hub console serve``); ``failures``
    counts failed sign-ins per client address (:mod:`hub.console.throttle`)."""
    failures = failures if failures is not None else AddressFailures()
    account_changes = threading.Lock()
    """Held from an account's check to its change, around the audit row between them."""
    settings = services.settings.console
    secure = settings.secure_cookies
    session_cookie, signin_cookie = _cookie_names(secure)
    app = FastAPI(title="edxml-hub console", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    def org_name(code: str | None) -> str:
        entry = services.directory.find(code) if code else None
        return entry.name if entry is not None else ""

    templates.env.globals.update(local=_local, age=_age, Reason=Reason, org_name=org_name)
    app.state.services = services
    app.state.users = users

    # -- plumbing -------------------------------------------------------------------------------
    def lang_of(request: Request) -> str:
        lang = request.cookies.get("hub-lang", DEFAULT)
        return lang if lang in LANGUAGES else DEFAULT

    def render(request: Request, name: str, session: Session | None, status: int = 200,
               **context: Any) -> HTMLResponse:
        lang = lang_of(request)
        perms = PERMISSIONS[session.user.role] if session is not None else frozenset()
        return templates.TemplateResponse(request, name, {
            "t": translator(lang), "lang": lang, "session": session, "perms": perms,
            "path": request.url.path, "query": request.url.query, **context},
            status_code=status)

    def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=secure,
                            httponly=True, samesite="strict")

    def current(request: Request) -> Session | None:
        token = request.cookies.get(session_cookie, "")
        return users.session(token) if token else None

    def need(permission: str) -> Callable[[Request], Session]:
        def dependency(request: Request) -> Session:
            session = current(request)
            if session is None:
                raise _SignIn(request.url.path + (f"?{request.url.query}" if request.url.query
                                                  else ""))
            if permission not in PERMISSIONS[session.user.role]:
                refusal(session, request, permission)
                raise _Refused(403, "error.forbidden", permission)
            return session

        return dependency

    def refusal(session: Session, request: Request, permission: str) -> None:
        """Record a refused request (one ledger row; rare: the pages offer no such link)."""
        with contextlib.suppress(AuditUnavailable):  # refused either way
            services.audit(session.user.name, "refused", what=request.url.path,
                           permission=permission, role=session.user.role.value)

    def act(permission: str) -> Callable[[Request, FormData], Session]:
        """A POST: the CSRF token first, then the session, then the role (refusals recorded)."""

        def dependency(request: Request, form: Form) -> Session:
            session = current(request)
            sent = str(form.get("csrf_token") or "")
            if session is None or not _same_token(sent, session.csrf):
                log.warning("console_csrf_refused", path=request.url.path,
                            signed_in=session is not None)
                raise _Refused(403, "error.csrf")
            if permission not in PERMISSIONS[session.user.role]:
                refusal(session, request, permission)
                raise _Refused(403, "error.forbidden", permission)
            return session

        return dependency

    # Who may reach a route: the session, checked for the permission (and, on a POST, the
    # CSRF token first). Annotated aliases, evaluated here (this module has no postponed
    # annotations: FastAPI reads them at decoration time).
    DlqView = Annotated[Session, Depends(need("dlq"))]
    DlqAct = Annotated[Session, Depends(act("dlq.act"))]
    DlqConfirm = Annotated[Session, Depends(need("dlq.act"))]
    LedgerView = Annotated[Session, Depends(need("ledger"))]
    LedgerAct = Annotated[Session, Depends(act("ledger"))]
    EvidenceView = Annotated[Session, Depends(need("evidence"))]
    ReportView = Annotated[Session, Depends(need("report"))]
    HealthView = Annotated[Session, Depends(need("health"))]
    UsersView = Annotated[Session, Depends(need("users"))]
    UsersAct = Annotated[Session, Depends(act("users"))]

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                      ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(_SignIn)
    async def to_signin(request: Request, exc: _SignIn) -> Response:
        return RedirectResponse("/signin?" + urlencode({"next": exc.next_path}), 303)

    # Plain ``def`` (Starlette runs them in the thread pool): current() reads the user store.
    @app.exception_handler(_Refused)
    def refused(request: Request, exc: _Refused) -> Response:
        return render(request, "error.html", current(request), exc.status,
                      message_key=exc.key, detail=exc.detail)

    # What FastAPI and Starlette answer themselves (no such page, a method a page does not take,
    # a query parameter missing or malformed): the same one-line page, with their status.
    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        key = {404: "error.not_found", 405: "error.method"}.get(exc.status_code,
                                                                "error.bad_input")
        response = render(request, "error.html", current(request), exc.status_code,
                          message_key=key, detail="")
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> Response:
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "?"
                         for e in exc.errors()})
        return render(request, "error.html", current(request), 422,
                      message_key="error.bad_input", detail=", ".join(fields)[:200])

    @app.exception_handler(AuditUnavailable)
    def audit_down(request: Request, exc: AuditUnavailable) -> Response:
        return render(request, "error.html", current(request), 503,
                      message_key="error.unavailable", detail=f"ledger: {exc}")

    @app.exception_handler(HubError)
    def unavailable(request: Request, exc: HubError) -> Response:
        return render(request, "error.html", current(request), 503,
                      message_key="error.unavailable", detail=" ".join(str(exc).split())[:300])

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.error("console_internal_error", path=request.url.path, error=type(exc).__name__)
        return HTMLResponse(f"<!doctype html><title>500</title><p>internal error "
                            f"({type(exc).__name__}); see the console's log</p>", 500)

    # -- signing in ----------------------------------------------------------------------------
    @app.get("/", response_model=None)
    def home(request: Request) -> Response:
        session = current(request)
        if session is None:
            return RedirectResponse("/signin", 303)
        return RedirectResponse(_HOME[session.user.role], 303)

    def signin_page(request: Request, next_path: str, status: int, *, failed: bool = False,
                    throttled: bool = False) -> Response:
        token = secrets.token_urlsafe(32)
        response = render(request, "signin.html", None, status, csrf=token,
                          next=_safe_next(next_path), failed=failed, throttled=throttled)
        set_cookie(response, signin_cookie, token, 3600)
        return response

    @app.get("/signin", response_model=None)
    def signin_form(request: Request, next: str = "/", failed: int = 0) -> Response:
        return signin_page(request, next, 401 if failed else 200, failed=bool(failed))

    @app.post("/signin", response_model=None)
    def signin(request: Request, form: Form) -> Response:
        sent, cookie = str(form.get("csrf_token") or ""), request.cookies.get(signin_cookie, "")
        if not _same_token(sent, cookie):
            log.warning("console_csrf_refused", path=request.url.path, signed_in=False)
            raise _Refused(403, "error.csrf")
        name, password = str(form.get("name") or "")[:64], str(form.get("password") or "")
        next_path = _safe_next(str(form.get("next") or "/"))
        address = request.client.host if request.client is not None else ""
        now = services.clock()
        until = failures.attempt(address, now)  # a slot taken now, before any check
        if until is not None:
            # Refused before the password is looked at: no argon2 work, no ledger row (the
            # failures that led here each wrote one); a log line says who is held back.
            log.warning("console_sign_in_throttled", address=address,
                        retry_after_s=_seconds_until(until, now))
            response = signin_page(request, next_path, 429, throttled=True)
            response.headers["Retry-After"] = str(_seconds_until(until, now))
            return response
        user = None
        try:
            user = users.authenticate(name, password)
        finally:
            failures.settle(address, now, failed=user is None)
        if user is None:
            # The name only when it is an account's: people type passwords into the name field,
            # and the ledger is permanent.
            known = users.get(name) if name.strip() else None
            services.audit("console", "sign_in_refused",
                           **({"user": known.name} if known is not None
                              else {"account": "unknown"}))
            return RedirectResponse("/signin?" + urlencode({"next": next_path, "failed": 1}), 303)
        services.audit(user.name, "sign_in", role=user.role.value)
        token, _session = users.open_session(user)
        target = next_path if next_path != "/" else _HOME[user.role]
        response = RedirectResponse(target, 303)
        set_cookie(response, session_cookie, token, int(users.lifetime.total_seconds()))
        response.delete_cookie(signin_cookie, path="/", secure=secure, httponly=True,
                               samesite="strict")
        return response

    @app.post("/signout", response_model=None)
    def signout(request: Request, form: Form) -> Response:
        session = current(request)
        if session is None or not _same_token(str(form.get("csrf_token") or ""), session.csrf):
            log.warning("console_csrf_refused", path=request.url.path,
                        signed_in=session is not None)
            raise _Refused(403, "error.csrf")
        # Ended first, recorded after: a person must be able to sign out of a shared
        # workstation even while the ledger cannot record it (a failed record is logged).
        users.close_session(request.cookies.get(session_cookie, ""))
        response = RedirectResponse("/signin", 303)
        response.delete_cookie(session_cookie, path="/", secure=secure, httponly=True,
                               samesite="strict")
        with contextlib.suppress(AuditUnavailable):  # services.audit logged it
            services.audit(session.user.name, "sign_out")
        return response

    @app.get("/lang/{lang}", response_model=None)
    def language(request: Request, lang: str, next: str = "/") -> Response:
        response = RedirectResponse(_safe_next(next), 303)
        response.set_cookie("hub-lang", lang if lang in LANGUAGES else DEFAULT,
                            max_age=365 * 86400, path="/", secure=secure, samesite="lax")
        return response

    # -- dead letters --------------------------------------------------------------------------
    def letter_filter(reason: str | None, sender: str | None, recipient: str | None,
                      older_than: str | None) -> dlq.Filter:
        age = None
        if older_than:
            try:
                age = dlq.parse_age(older_than)
            except ValueError as exc:
                raise _Refused(400, "error.bad_input", str(exc)) from None
        return dlq.Filter(reason=reason or None, sender=(sender or "").strip() or None,
                          recipient=(recipient or "").strip() or None, older_than=age)

    def reason_text(dl: dlq.DeadLetter, lang: str) -> str:
        vi, en, _action = dlq.reason_texts(dl)
        return vi if lang == "vi" else en

    templates.env.globals.update(reason_text=reason_text)

    @app.get("/dlq", response_model=None)
    def dead_letters(request: Request, session: DlqView, reason: str = "", sender: str = "",
                     recipient: str = "", older_than: str = "") -> Response:
        flt = letter_filter(reason, sender, recipient, older_than)
        everything = services.dead_letters()
        now = services.clock()
        chosen = [dl for dl in everything if flt.matches(dl, now)]
        ages = {dl.key: (a.total_seconds() if (a := dl.age(now)) is not None else None)
                for dl in chosen}
        return render(request, "dlq.html", session, letters=chosen[:settings.page_size],
                      matching=len(chosen), total=len(everything), by_reason=counts(everything),
                      ages=ages, reasons=sorted({dl.reason for dl in everything}),
                      form={"reason": reason, "sender": sender, "recipient": recipient,
                            "older_than": older_than},
                      filter_query=urlencode({k: v for k, v in (
                          ("reason", reason), ("sender", sender), ("recipient", recipient),
                          ("older_than", older_than)) if v}))

    def find_letter(key: str) -> FoundLetter:
        found = services.dead_letter(key)
        if found is None:
            raise _Refused(404, "dlq.gone", key[:80])
        return found

    # A dead letter is named by its key (dlq.letter_key: hex, unique per letter), never by its
    # message id: an agency chooses message ids, two letters may share one, and one holding a
    # line feed does not survive a form (browsers send it back as CRLF).
    @app.get("/dlq/letter", response_model=None)
    def letter(request: Request, session: DlqView, key: str) -> Response:
        from hub.messages import Headers

        found = find_letter(key)
        dl = found.letter
        digest = letter_digest(dl)
        report = services.ledger.report(digest) if digest else None
        packet: Envelope | StatusPacket | None = None
        unreadable = ""
        try:
            packet = parse_packet(found.body)
        except EnvelopeRefused as exc:
            unreadable = f"{exc.reason.value}: {exc.reason.vi} / {exc.reason.en}"
        vi, en, action = dlq.reason_texts(dl)
        return render(request, "letter.html", session, dl=dl, digest=digest, report=report,
                      packet=packet, envelope=packet if isinstance(packet, Envelope) else None,
                      unreadable=unreadable, reason_vi=vi, reason_en=en,
                      action=action_text(action, lang_of(request)), found=found,
                      detail=str(dl.headers.get(Headers.DETAIL, "")),
                      first_reason=str(dl.headers.get(Headers.FIRST_REASON, "")))

    @app.get("/dlq/letter/raw", response_model=None)
    def letter_raw(key: str, session: DlqView) -> Response:
        found = find_letter(key)
        dl = found.letter
        services.audit(session.user.name, "download_bytes", digest=letter_digest(dl),
                       letter=dl.id)
        # The digest is a header from the broker: only its hex goes into the file name.
        hex_digest = "".join(c for c in letter_digest(dl) or "" if c in _HEX)[:16].lower()
        name = f"dead-letter-{hex_digest or 'unknown'}.xml"
        return Response(found.body, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    intake = services.topology.names.intake

    @app.get("/dlq/letter/{verb}", response_model=None)
    def confirm_letter(request: Request, verb: str, key: str,
                       session: DlqConfirm) -> Response:
        if verb not in ("replay", "discard"):
            raise _Refused(404, "error.not_found")
        found = find_letter(key)
        return render(request, "confirm.html", session, dl=found.letter, found=found,
                      intake=intake, verb=verb, note_missing=False)

    @app.post("/dlq/letter/{verb}", response_model=None)
    def act_on_letter(request: Request, verb: str, session: DlqAct, form: Form) -> Response:
        if verb not in ("replay", "discard"):
            raise _Refused(404, "error.not_found")
        key = str(form.get("key") or "")
        note = " ".join(str(form.get("note") or "").split())[:500]
        if not note:
            found = find_letter(key)
            return render(request, "confirm.html", session, 400, dl=found.letter, found=found,
                          intake=intake, verb=verb, note_missing=True)
        # this letter, and only it: not another under the same message id, not one whose id
        # begins the same, and one of two identical letters (most=1)
        flt = dlq.Filter(keys=(key,), exact=True)
        left: tuple[tuple[dlq.DeadLetter, str], ...] = ()
        if verb == "replay":
            try:
                done = services.replay(flt, actor=session.user.name, note=note, most=1)
            except dlq.ReplayRefused as exc:  # no way back: a refusal, not an outage
                done, left = exc.done, exc.left
        else:
            done = services.discard(flt, actor=session.user.name, note=note, most=1)
        if not done and not left:
            raise _Refused(404, "dlq.gone", key[:80])
        return render(request, "acted.html", session, 409 if left else 200, verb=verb,
                      letters=done, left=left, note=note, intake=intake)

    @app.get("/dlq/bulk-replay", response_model=None)
    def confirm_bulk(request: Request, session: DlqConfirm, reason: str = "", sender: str = "",
                     recipient: str = "", older_than: str = "") -> Response:
        flt = letter_filter(reason, sender, recipient, older_than)
        now = services.clock()
        chosen = [dl for dl in services.dead_letters() if flt.matches(dl, now)]
        return render(request, "bulk.html", session, letters=chosen, note_missing=False,
                      form={"reason": reason, "sender": sender, "recipient": recipient,
                            "older_than": older_than})

    @app.post("/dlq/bulk-replay", response_model=None)
    def bulk_replay(request: Request, session: DlqAct, form: Form) -> Response:
        values = {k: str(form.get(k) or "") for k in ("reason", "sender", "recipient",
                                                      "older_than")}
        note = " ".join(str(form.get("note") or "").split())[:500]
        flt = letter_filter(**values)
        if not any((flt.reason, flt.sender, flt.recipient, flt.older_than)) and \
                form.get("all") != "1":
            raise _Refused(400, "error.bad_input", "a filter, or every dead letter explicitly")
        if not note:
            now = services.clock()
            chosen = [dl for dl in services.dead_letters() if flt.matches(dl, now)]
            return render(request, "bulk.html", session, 400, letters=chosen, note_missing=True,
                          form=values)
        services.audit(session.user.name, "bulk_replay_started", note=note,
                       **{k: v for k, v in values.items() if v})
        job = services.start_bulk_replay(flt, actor=session.user.name, note=note)
        return RedirectResponse(f"/jobs/{job.id}", 303)

    @app.get("/jobs/{job_id}", response_model=None)
    def job_page(request: Request, job_id: str,
                 session: DlqConfirm) -> Response:
        job = services.jobs.get(job_id)
        if job is None:
            raise _Refused(404, "error.not_found")
        return render(request, "job.html", session, job=job)

    # -- ledger --------------------------------------------------------------------------------
    @app.get("/ledger", response_model=None)
    def ledger_page(request: Request, session: LedgerView, document_id: str = "", sender: str = "",
                    recipient: str = "", since: str = "", until: str = "", outcome: str = "",
                    before: str = "") -> Response:
        if outcome and outcome not in OUTCOMES:
            raise _Refused(400, "error.bad_input", f"outcome {outcome[:20]!r}")
        for name, value in (("document_id", document_id), ("sender", sender),
                            ("recipient", recipient)):
            _plain(name, value)
        since_at, until_at = _date_param(since), _date_param(until)

        def codes(code: str) -> tuple[str, ...] | None:
            # a body by any of its codes (the ledger records a recipient under its primary
            # code, a sender as its envelope wrote it), as `hub ledger query --organ`
            code = code.strip()
            return organ_codes(services.directory, code, since=since_at, until=until_at) \
                if code else None

        docs = search_documents(
            services.ledger, document_id=document_id.strip() or None,
            sender=codes(sender), recipient=codes(recipient),
            since=since_at, until=until_at, outcome=outcome or None,
            before_seq=_seq_param(before), limit=settings.page_size + 1)
        more = len(docs) > settings.page_size
        docs = docs[:settings.page_size]
        form = {"document_id": document_id, "sender": sender, "recipient": recipient,
                "since": since, "until": until, "outcome": outcome}
        next_query = urlencode({**{k: v for k, v in form.items() if v},
                                "before": docs[-1].seq}) if more and docs else ""
        return render(request, "ledger.html", session, docs=docs, form=form,
                      outcomes=list(OUTCOMES), next_query=next_query,
                      verification=services.verification, checkpoint=services.checkpoint(),
                      head=services.ledger.head()[0])

    @app.post("/ledger/verify", response_model=None)
    def verify_chain(session: LedgerAct) -> Response:
        services.audit(session.user.name, "chain_check_started")
        services.start_verification()
        return RedirectResponse("/ledger", 303)

    @app.get("/ledger/doc/{digest}", response_model=None)
    def document(request: Request, digest: str,
                 session: LedgerView) -> Response:
        _plain("digest", digest)
        docs, events = services.timeline(digest)
        own = [d for d in docs if d.digest == digest]
        if not own:
            raise _Refused(404, "doc.unknown", digest[:80])
        packets = [(d, services.check_packet(d.digest, digest)) for d in docs
                   if d.digest != digest and d.kind in ("receipt", "status")]
        delivered = sorted({e.organ_id for e in events
                            if e.kind.value == "delivered" and e.organ_id})
        return render(request, "document.html", session, digest=digest, own=own,
                      packets=packets, events=events, delivered=delivered)

    @app.get("/ledger/doc/{digest}/evidence", response_model=None)
    def evidence(digest: str, session: EvidenceView) -> Response:
        from hub.ledger.evidence import EvidenceError, export_evidence
        from hub.ops.ledger_cli import trust_material

        _plain("digest", digest)
        if services.ledger.document_by_digest(digest, include_refused=True) is None:
            raise _Refused(404, "doc.unknown", digest[:80])
        services.audit(session.user.name, "evidence_export", digest=digest)
        folder = Path(tempfile.mkdtemp(prefix="hub-evidence-"))
        path = folder / f"evidence-{digest[:16]}.zip"
        try:
            export_evidence(services.ledger, digest, path,
                            trust=trust_material(services.settings))
        except EvidenceError as exc:
            _remove(folder)
            raise _Refused(409, "error.unavailable", str(exc)) from None
        return FileResponse(path, media_type="application/zip", filename=path.name,
                            background=BackgroundTask(_remove, folder))

    # -- adoption report -----------------------------------------------------------------------
    def report_params(since: str, until: str, period: str) -> tuple[datetime | None,
                                                                   datetime | None, str]:
        if period not in ("day", "month", "year"):
            raise _Refused(400, "error.bad_input", f"period {period[:10]!r}")
        return _date_param(since), _date_param(until), period

    def report_of(since: str, until: str, period: str, v: str) -> Report:
        """The figures a page showed (``v``, its version), or the current ones without ``v``."""
        params = report_params(since, until, period)
        if not v:
            return services.adoption(*params)
        found = services.report_version(v)
        if found is None:  # this process no longer has them (restarted, or long ago)
            raise _Refused(410, "report.gone", v[:20])
        return found

    @app.get("/report", response_model=None)
    def report(request: Request, session: ReportView, since: str = "", until: str = "",
               period: str = "month") -> Response:
        if not since and not until:
            since = default_report_since(services.clock())
        figures = services.adoption(*report_params(since, until, period))
        from hub.ledger.report import CLASS_LABELS_VI, CLASSES

        # the chart and the CSV of this page are these figures, whatever is computed meanwhile
        query = urlencode({"since": since, "until": until, "period": period,
                           "v": figures.version})
        return render(request, "report.html", session, rows=figures.rows, classes=CLASSES,
                      class_labels=CLASS_LABELS_VI, form={"since": since, "until": until,
                                                         "period": period}, query=query,
                      computed_at=figures.computed_at)

    @app.get("/report/chart.svg", response_model=None)
    def report_chart(session: ReportView, since: str = "", until: str = "",
                     period: str = "month", v: str = "") -> Response:
        return Response(services.adoption_chart(report_of(since, until, period, v)),
                        media_type="image/svg+xml")

    @app.get("/report.csv", response_model=None)
    def report_csv(session: ReportView, since: str = "", until: str = "",
                   period: str = "month", v: str = "") -> Response:
        from hub.ledger.report import render_csv

        figures = report_of(since, until, period, v)
        services.audit(session.user.name, "report_csv", since=since, until=until, period=period,
                       version=figures.version)
        return Response(render_csv(figures.rows).encode("utf-8"),
                        media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 'attachment; filename="adoption-report.csv"'})

    # -- health --------------------------------------------------------------------------------
    @app.get("/health", response_model=None)
    def health(request: Request, session: HealthView) -> Response:
        return render(request, "health.html", session, crls=services.crls(),
                      certs=services.certificates(), queues=services.queues(),
                      freshness=services.settings.trust.crl_freshness_s)

    # -- users ---------------------------------------------------------------------------------
    @app.get("/users", response_model=None)
    def users_page(request: Request, session: UsersView) -> Response:
        return render(request, "users.html", session, people=users.users(), roles=list(Role),
                      problem="")

    # Account changes: every check that can refuse one (name, role, password rule, an account
    # that exists or not) runs before the audit row, so the ledger records only changes made.
    @app.post("/users", response_model=None)
    def add_user(request: Request, session: UsersAct, form: Form) -> Response:
        password = str(form.get("password") or "")
        with account_changes:  # two of this console's requests: one adds, one is refused
            try:
                name, role = users.check_new(str(form.get("name") or ""),
                                             str(form.get("role") or ""), password)
            except UserError as exc:
                return render(request, "users.html", session, 400, people=users.users(),
                              roles=list(Role), problem=exc.text(lang_of(request)))
            services.audit(session.user.name, "user_added", user=name, role=role.value)
            try:  # added from the shell in between: refused after the record, which says so
                users.add(name, role, password, full_name=str(form.get("full_name") or ""))
            except UserError as exc:
                services.audit(session.user.name, "user_add_refused", user=name,
                               reason=str(exc))
                return render(request, "users.html", session, 400, people=users.users(),
                              roles=list(Role), problem=exc.text(lang_of(request)))
        return RedirectResponse("/users", 303)

    @app.post("/users/{name}/active", response_model=None)
    def set_active(request: Request, name: str, session: UsersAct, form: Form) -> Response:
        active = form.get("active") == "1"
        try:
            user = users.existing(name)
        except UserError as exc:
            raise _Refused(404, "error.not_found", exc.text(lang_of(request))) from None
        if user.name == session.user.name and not active:
            raise _Refused(400, "error.bad_input",
                           translator(lang_of(request))("user.self_disable"))
        services.audit(session.user.name, "user_enabled" if active else "user_disabled",
                       user=user.name)
        users.set_active(user.name, active)
        return RedirectResponse("/users", 303)

    return app


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
