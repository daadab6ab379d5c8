"""The application factory: one FastAPI app serving the API (and later the back-office and
portal), with an optional in-process worker for the embedded default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from fidelia import __version__
from fidelia.analytics.clv_endpoints import router as clv_router
from fidelia.analytics.endpoints import router as analytics_router
from fidelia.api import errors
from fidelia.api.middleware import CatchAll, Guard
from fidelia.api.openapi import DESCRIPTION, FideliaAPI
from fidelia.audit.endpoints import router as audit_router
from fidelia.audit.requests import record_request
from fidelia.auth.dependencies import KeyCache, LastUsed
from fidelia.auth.endpoints import router as apikeys_router
from fidelia.auth.limits import make_limiter
from fidelia.config import get_settings
from fidelia.connectors.endpoints import router as connectors_router
from fidelia.db import Database
from fidelia.engagement.endpoints import router as engagement_router
from fidelia.engagement.leaderboards_endpoints import router as leaderboards_router
from fidelia.engagement.referrals_endpoints import router as referrals_router
from fidelia.engagement.streaks_endpoints import router as streaks_router
from fidelia.exports.endpoints import router as exports_router
from fidelia.intake.endpoints import router as events_router
from fidelia.intake.enrolment_endpoints import router as enrolment_router
from fidelia.intake.group import GroupCommit
from fidelia.intake.service import ingest
from fidelia.ledger.endpoints import router as ledger_router
from fidelia.limits.http import Cors, OriginList, SecurityHeaders
from fidelia.limits.origins import allowed_origins
from fidelia.members.endpoints import router as members_router
from fidelia.merges.endpoints import router as merges_router
from fidelia.messaging.endpoints import install as install_messaging
from fidelia.offers.endpoints import router as offers_router
from fidelia.plans.endpoints import router as plans_router
from fidelia.portal.app import install as install_portal
from fidelia.privacy.endpoints import router as privacy_router
from fidelia.programmes.endpoints import router as programmes_router
from fidelia.rewards.endpoints import router as rewards_router
from fidelia.scenarios.endpoints import router as scenarios_router
from fidelia.segments.endpoints import router as segments_router
from fidelia.tiers.endpoints import router as tiers_router
from fidelia.traits.endpoints import router as traits_router
from fidelia.transfers.endpoints import router as transfers_router
from fidelia.web.app import create_web_app
from fidelia.webhooks.endpoints import router as webhooks_router

API_PREFIX = "/api/v1"


def create_app(database: Database, *, embedded_worker: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if embedded_worker:
            from fidelia.worker.runner import BackgroundWorker

            worker = BackgroundWorker(database, poll_seconds=get_settings().worker_poll_seconds)
            worker.start()
        database.start_checkpointer()  # only where the engine was made for it (an API server)
        try:
            yield
        finally:
            committer.stop()
            database.stop_checkpointer()
            if worker is not None:
                worker.stop()

    app = FideliaAPI(
        title="Fidelia", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    app.state.database = database
    committer = GroupCommit(database, writers=get_settings().intake_writers or None)
    app.state.group_commit = committer
    app.state.key_cache = KeyCache()
    errors.install(app)
    settings = get_settings()
    app.add_middleware(
        Guard,
        limit=settings.max_body_bytes,
        large_limit=settings.max_bulk_body_bytes,
        large_paths=frozenset({f"{API_PREFIX}/events/batch"}),
    )
    app.add_middleware(Cors, origins=OriginList(allowed_origins(database)))
    app.add_middleware(CatchAll)  # outermost but one, so it also catches Guard's errors
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, errors included
    app.state.limiter = make_limiter(database.engine, settings.rate_limit_store)
    app.state.last_used = LastUsed(settings.key_last_used_seconds)
    app.state.write_hook = record_request
    # events first: POST /events is the hot path, and a request is matched against the routes
    # in order (twice: FastAPI's included routers); no other router's path can match its paths
    app.include_router(events_router, prefix=API_PREFIX)
    app.include_router(merges_router, prefix=API_PREFIX)  # before members: /members/duplicates
    routers = (programmes_router, apikeys_router, enrolment_router, members_router)
    for router in (*routers, ledger_router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(rewards_router, prefix=API_PREFIX)
    app.include_router(tiers_router, prefix=API_PREFIX)
    app.include_router(traits_router, prefix=API_PREFIX)
    app.include_router(clv_router, prefix=API_PREFIX)  # issue 15: CLV, recommendations
    app.include_router(analytics_router, prefix=API_PREFIX)  # issue 15: KPIs, liability
    app.include_router(engagement_router, prefix=API_PREFIX)
    for router in (referrals_router, leaderboards_router, streaks_router):  # issue 14
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(segments_router, prefix=API_PREFIX)
    for router in (offers_router, plans_router):  # issue 14: offers, plans, till, perks
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(scenarios_router, prefix=API_PREFIX)
    app.include_router(privacy_router, prefix=API_PREFIX)
    app.include_router(audit_router, prefix=API_PREFIX)
    app.include_router(exports_router, prefix=API_PREFIX)
    app.include_router(webhooks_router, prefix=API_PREFIX)  # issue 16: webhooks, feed
    app.include_router(connectors_router, prefix=API_PREFIX)  # issue 16: shop connectors
    app.include_router(transfers_router, prefix=API_PREFIX)  # issue 16: member transfers
    install_messaging(app, prefix=API_PREFIX, ingest=ingest)

    app.mount("/admin", create_web_app(database))  # the back-office (HTML pages)
    install_portal(app, database)  # the member portal at /portal (and programmes' hosts)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/admin/")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
