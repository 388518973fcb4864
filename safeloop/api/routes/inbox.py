"""``GET /api/v1/inbox``: everything the caller may act on now, across workflows (the to-do list).

An entity is in the inbox when the caller may see it and one of the caller's role grants covers
it in a state where that role may fire some event -- the engine's own role test
(``Actor.roles_at``) written set-wise, one UNION ALL over the workflows, due soonest first.
"""

from typing import Annotated, Any

from fastapi import Query
from starlette.responses import JSONResponse

from core.settings import Settings
from models.db import utcnow
from safeloop.api import queries
from safeloop.api.deps import CurrentPrincipal, DbSession, Visibility
from safeloop.api.jsonout import answer, plain
from safeloop.api.routes import Prefixed
from states.actors import Lookups
from states.registry import WORKFLOWS


def mount(router: Prefixed, settings: Settings) -> None:
    def inbox(
        caller: CurrentPrincipal, session: DbSession, scope: Visibility,
        limit: Annotated[int, Query(ge=1, le=settings.api_page_max,
                                    description="最多返回条数")] = settings.api_page_size,
    ) -> JSONResponse:
        if scope.read_only:
            return answer({"items": [], "counts": {}, "total": 0, "overdue": 0})
        conn = session.connection()
        actor = Lookups(conn).actor(caller.person_key)
        items, counts = queries.inbox(conn, list(WORKFLOWS.values()), actor, scope,
                                      utcnow(), limit)
        out = []
        for item in items:
            workflow = WORKFLOWS[item["kind"]]
            out.append({**plain(item), "overdue": bool(item["overdue"]),
                        "kind_label": workflow.label,
                        "state_label": workflow.state_label(item["state"])})
        labelled = {kind: {**c, "label": WORKFLOWS[kind].label} for kind, c in counts.items()}
        return answer({"items": out, "counts": labelled,
                       "total": sum(c["total"] for c in counts.values()),
                       "overdue": sum(c["overdue"] for c in counts.values())})

    router.add_api_route("/inbox", inbox, methods=["GET"], tags=["待办"], response_model=dict[str, Any],
                         summary="待办：本人现在可以处理的全部事项（期限最近的在前），按类别计数",
                         operation_id="inbox")
