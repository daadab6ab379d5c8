"""The programme document in the back-office: its sections as tables, the version history with
diffs, and the editor where a draft (YAML) is checked, dry-run against an event, back-tested
against the live version over the stored events, then published as a new version.

The draft lives in the form, not in the database: each action posts the whole text back, so a
mistake never loses the user's text and nothing is stored until *publish*. Every action goes
through the services the API uses (``documents.prepare`` / ``documents.apply``,
``intake.service.dry_run``, ``rules.backtest``); publishing is recorded in the audit log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import yaml
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from fidelia.audit import service as audit
from fidelia.auth.dependencies import get_database
from fidelia.errors import FideliaError, Forbidden, error_message
from fidelia.events.schemas import EventIn
from fidelia.intake import effects as engine_runs
from fidelia.intake import service as intake
from fidelia.kit.clock import utcnow
from fidelia.programmes import documents
from fidelia.rules import history
from fidelia.rules.backtest import BacktestReport, backtest
from fidelia.rules.compiler import CompiledProgramme, compile_programme
from fidelia.web.access import BASE, Csrf, Page, ReadPage, check_csrf
from fidelia.web.charts import Series, bars
from fidelia.web.templating import render

router = APIRouter()

MAX_TEXT = 400_000  # characters of YAML a draft may hold
BACKTEST_DAYS = 90  # the default period of a back-test
_PREFERRED = ("id", "code", "name", "label", "kind", "type", "event_type", "wallet", "level")


def read_form(page: ReadPage, csrf_token: Csrf = "") -> Page:
    """A form that reads only (check, dry-run, back-test): any role, with the CSRF token."""
    check_csrf(page.viewer, csrf_token)
    return page


ReadForm = Annotated[Page, Depends(read_form)]


# --- the document as tables ------------------------------------------------------------------


def _cell(value: Any) -> str:
    """A nested value as one short line."""
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= 120 else text[:119] + "…"


def _label(item: dict[str, Any], language: str) -> str:
    labels = item.get("labels")
    if isinstance(labels, dict):
        found = labels.get(language) or next(iter(labels.values()), "")
        return str(found)
    return ""


@dataclass
class Section:
    """One top-level section of the document, as a table (or a list of settings)."""

    name: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)


def _table(name: str, items: list[dict[str, Any]], language: str) -> Section:
    keys: list[str] = [k for k in _PREFERRED if any(k in i for i in items)]
    keys += [k for i in items for k in i if k not in keys and k != "labels"]
    keys = list(dict.fromkeys(keys))[:8]
    labelled = any("labels" in i for i in items)
    section = Section(name, (["label"] if labelled else []) + keys)
    for item in items:
        row = [_label(item, language)] if labelled else []
        section.rows.append(row + [_cell(item.get(k)) for k in keys])
    return section


def _records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(i, dict) for i in value)


def sections(document: dict[str, Any], language: str) -> list[Section]:
    """Lists of mappings become tables (the usual keys first); a mapping becomes a list of
    settings, its own lists of mappings tables of their own; scalars gather under ``general``."""
    general = Section("general")
    out: list[Section] = []
    for name, value in document.items():
        if _records(value):
            out.append(_table(name, value, language))
        elif isinstance(value, dict):
            plain = [(k, _cell(v)) for k, v in value.items() if not _records(v)]
            out.append(Section(name, settings=plain))
            out.extend(_table(f"{name}.{k}", v, language) for k, v in value.items() if _records(v))
        else:
            general.settings.append((name, _cell(value)))
    return ([general] if general.settings else []) + out


# --- errors pointed at their line -----------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None


def line_of(text: str, path: tuple[str | int, ...]) -> int | None:
    """The line (1-based) of the YAML node at ``path``, or of its nearest ancestor."""
    try:
        node: Any = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for step in path:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == str(step)), None)
            if found is None:
                break
            key = next(k for k, v in node.value if v is found)
            node, line = found, key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if not 0 <= step < len(node.value):
                break
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _problems(text: str, exc: FideliaError) -> list[Problem]:
    fields = exc.fields or []
    if not fields:
        return [Problem("", exc.detail, None)]
    out = []
    for f in fields:
        loc = tuple(p for p in f.loc if p != "body")
        out.append(Problem(".".join(str(p) for p in loc), f.msg, line_of(text, loc)))
    return out


def load_draft(text: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The draft's YAML as a mapping, or the problems that keep it from being one."""
    if len(text) > MAX_TEXT:
        return None, [Problem("", f"the document is longer than {MAX_TEXT} characters", None)]
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, [Problem("", f"YAML: {exc.problem or exc.context}", line)]
    except yaml.YAMLError as exc:
        return None, [Problem("", f"YAML: {exc}", None)]
    if not isinstance(raw, dict):
        return None, [Problem("", "a programme document is a mapping (key: value lines)", 1)]
    return raw, []


# --- pages -------------------------------------------------------------------------------------


@router.get("/p/{slug}/programme", response_class=HTMLResponse)
def overview(request: Request, page: ReadPage, published: int | None = None) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        live = documents.live_document(session, programme=page.programme)
        versions = documents.list_versions(session, programme=page.programme)
    return render(
        request,
        "programme.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        active="programme",
        live=live,
        tables=sections(live, page.fmt.language) if live else [],
        versions=versions,
        published=published,
    )


@router.get("/p/{slug}/programme/versions/{version}", response_class=HTMLResponse)
def version_page(request: Request, page: ReadPage, version: int) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        row = documents.get_version(session, programme=page.programme, version=version)
        before = None
        if version > 1:
            before = documents.get_version(
                session, programme=page.programme, version=version - 1
            ).document
    changes = documents.diff(before, row.document) if before is not None else ""
    return render(
        request,
        "programme_version.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        active="programme",
        row=row,
        text=documents.to_yaml(row.document),
        diff_lines=_diff_lines(changes),
    )


def _diff_lines(changes: str) -> list[tuple[str, str]]:
    """Each line of a unified diff with its class (added, removed, hunk or context)."""
    out = []
    for line in changes.splitlines():
        if line.startswith(("+++", "---")):
            continue
        kind = {"+": "added", "-": "removed", "@": "hunk"}.get(line[:1], "context")
        out.append((kind, line))
    return out


@router.get("/p/{slug}/programme/edit", response_class=HTMLResponse)
def edit(request: Request, page: ReadPage, version: int | None = None) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        if version is not None:
            document = documents.get_version(
                session, programme=page.programme, version=version
            ).document
        else:
            document = documents.live_document(session, programme=page.programme) or {}
    text = documents.to_yaml(document) if document else "wallets: []\nrules: []\n"
    return _editor(request, page, Editor(text=text))


@dataclass
class Editor:
    """What the editor page shows after an action."""

    text: str
    action: str = ""
    problems: list[Problem] = field(default_factory=list)
    diff_lines: list[tuple[str, str]] = field(default_factory=list)
    checked: bool = False
    event_text: str = ""
    dry_run: dict[str, Any] | None = None
    start: str = ""
    end: str = ""
    report: dict[str, Any] | None = None
    chart: Any = None
    comment: str = ""


def _editor(request: Request, page: Page, editor: Editor, status: int = 200) -> HTMLResponse:
    if not editor.event_text:
        editor.event_text = json.dumps(_example_event(), indent=2)
    _default_period(page, editor)
    return render(
        request,
        "programme_edit.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        active="programme",
        ed=editor,
        status=status,
    )


def _default_period(page: Page, editor: Editor) -> None:
    """An empty start or end: the last :data:`BACKTEST_DAYS` days, today included."""
    if not editor.start or not editor.end:
        today = utcnow().astimezone(ZoneInfo(page.programme.timezone)).date()
        editor.start = editor.start or (today - timedelta(days=BACKTEST_DAYS)).isoformat()
        editor.end = editor.end or (today + timedelta(days=1)).isoformat()


def _example_event() -> dict[str, Any]:
    return {
        "id": "dry-run-1",
        "type": "purchase",
        "occurred_at": utcnow().replace(microsecond=0).isoformat(),
        "member": {"email": "someone@example.org"},
        "properties": {
            "order_id": "DRY-1",
            "total": "42.00",
            "lines": [{"sku": "sku-1", "quantity": 1, "unit_price": "42.00"}],
        },
    }


def _prepared(
    request: Request, page: Page, raw: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    with get_database(request).transaction(readonly=True) as session:
        return documents.prepare(session, programme=page.programme, raw=raw)


def _compiled(page: Page, document: dict[str, Any]) -> CompiledProgramme:
    return compile_programme(documents.rules_of(page.programme, document))


@router.post("/p/{slug}/programme/edit", response_class=HTMLResponse)
def act(
    request: Request,
    page: ReadForm,
    text: Annotated[str, Form(max_length=MAX_TEXT + 1)] = "",
    action: Annotated[str, Form(max_length=16)] = "check",
    event: Annotated[str, Form(max_length=100_000)] = "",
    start: Annotated[str, Form(max_length=10)] = "",
    end: Annotated[str, Form(max_length=10)] = "",
    comment: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    editor = Editor(text=text, action=action, event_text=event, start=start, end=end)
    editor.comment = comment
    if action not in ("check", "dryrun", "backtest", "publish"):
        editor.problems = [Problem("action", "one of check, dryrun, backtest, publish", None)]
        return _editor(request, page, editor, 422)
    if action == "publish" and not page.role.can_publish:
        raise Forbidden(f"the {page.role.value} role cannot publish the programme")
    raw, editor.problems = load_draft(text)
    if raw is None:
        return _editor(request, page, editor, 422)
    try:
        document, live = _prepared(request, page, raw)
    except FideliaError as exc:
        editor.problems = _problems(text, exc)
        return _editor(request, page, editor, 422)
    editor.checked = True
    editor.diff_lines = _diff_lines(documents.diff(live, document) if live != document else "")
    if action == "publish":
        return _publish(request, page, raw, editor)
    if action == "dryrun":
        return _dry_run(request, page, document, editor)
    if action == "backtest":
        return _backtest(request, page, document, live, editor)
    return _editor(request, page, editor)


def _publish(request: Request, page: Page, raw: dict[str, Any], editor: Editor) -> Response:
    if not editor.diff_lines:
        editor.problems = [Problem("", "nothing changed: the draft is the live version", None)]
        return _editor(request, page, editor, 422)
    with get_database(request).transaction() as session:
        before = page.programme.live_version
        result = documents.apply(
            session,
            programme=page.programme,
            raw=raw,
            actor=page.actor,
            comment=editor.comment.strip(),
        )
        audit.record(
            session,
            programme_id=page.programme.id,
            actor=page.actor,
            user_id=page.viewer.user.id,
            action="programme.publish",
            target_type="programme_version",
            target_id=str(result.version),
            before={"version": before},
            after={"version": result.version, "comment": editor.comment.strip()},
            reason=editor.comment.strip() or None,
        )
    target = f"{BASE}/p/{page.programme.slug}/programme?published={result.version}"
    return RedirectResponse(target, status_code=303)


def _dry_run(
    request: Request, page: Page, document: dict[str, Any], editor: Editor
) -> HTMLResponse:
    try:
        payload = json.loads(editor.event_text)
    except json.JSONDecodeError as exc:
        editor.problems = [Problem("event", f"JSON: {exc.msg} (line {exc.lineno})", None)]
        return _editor(request, page, editor, 422)
    try:
        event = EventIn.model_validate(payload)
    except ValidationError as exc:
        editor.problems = [
            Problem("event." + ".".join(str(p) for p in e["loc"]), error_message(e), None)
            for e in exc.errors()
        ]
        return _editor(request, page, editor, 422)
    compiled = _compiled(page, document)
    database = get_database(request)
    try:
        with database.transaction() as session, session.begin_nested() as nested:
            editor.dry_run = intake.dry_run(
                session, programme=page.programme, event=event, draft=compiled
            )
            nested.rollback()  # a dry run writes nothing, whatever it touched
    except FideliaError as exc:
        editor.problems = [
            Problem("event." + ".".join(str(p) for p in f.loc), f.msg, None) for f in exc.fields
        ] or [Problem("event", exc.detail, None)]
        return _editor(request, page, editor, 422)
    return _editor(request, page, editor)


def _period(page: Page, editor: Editor) -> tuple[datetime, datetime] | Problem:
    zone = ZoneInfo(page.programme.timezone)
    try:
        first = date.fromisoformat(editor.start)
    except ValueError:
        return Problem("start", "a date as YYYY-MM-DD", None)
    try:
        last = date.fromisoformat(editor.end)
    except ValueError:
        return Problem("end", "a date as YYYY-MM-DD", None)
    if last <= first:
        return Problem("end", "the end must come after the start", None)
    if (last - first).days > 731:
        return Problem("end", "a back-test covers two years at most", None)
    return datetime.combine(first, time(), zone), datetime.combine(last, time(), zone)


def _value_per_point(document: dict[str, Any]) -> Decimal:
    for wallet in document.get("wallets") or []:
        if wallet.get("code") == "points" and wallet.get("unit_value") is not None:
            try:
                return Decimal(str(wallet["unit_value"]))
            except InvalidOperation:
                break
    return Decimal("0.01")


def _backtest(
    request: Request,
    page: Page,
    document: dict[str, Any],
    live: dict[str, Any] | None,
    editor: Editor,
) -> HTMLResponse:
    _default_period(page, editor)
    period = _period(page, editor)
    if isinstance(period, Problem):
        editor.problems = [period]
        return _editor(request, page, editor, 422)
    if live is None:
        editor.problems = [Problem("", "the programme has no live version to compare with", None)]
        return _editor(request, page, editor, 422)
    candidate = _compiled(page, document)
    with get_database(request).transaction(readonly=True) as session:
        baseline = engine_runs.compiled_for(session, page.programme)
        assert baseline is not None
        events = list(
            history.stored_events(session, programme=page.programme, start=period[0], end=period[1])
        )
    report = backtest(
        events, baseline, candidate, value_per_point=_value_per_point(document), presorted=True
    )
    editor.report = report.as_dict()
    editor.report["baseline"]["liability"] = report.baseline.liability  # money, formatted
    editor.report["candidate"]["liability"] = report.candidate.liability
    editor.chart = _chart(page, report)
    return _editor(request, page, editor)


def _chart(page: Page, report: BacktestReport) -> Any:
    rules = sorted(set(report.baseline.per_rule) | set(report.candidate.per_rule))
    if not rules:
        return None

    def amounts(side: Any) -> list[float]:
        return [float(side.per_rule[r].amount) if r in side.per_rule else 0.0 for r in rules]

    title = page.fmt.gettext("Awarded by rule: live and draft")
    return bars(
        title,
        rules,
        [
            Series(page.fmt.gettext("live"), amounts(report.baseline)),
            Series(page.fmt.gettext("draft"), amounts(report.candidate)),
        ],
    )
