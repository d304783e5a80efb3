"""The calling key: /admin/whoami (keys themselves are managed with `switchboard keys`)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from functions.admin.dependencies import principal
from functions.admin.models import Whoami
from functions.admin.routes.params import answers

router = Router()


@router.get("/admin/whoami", tags=["keys"], responses=answers(), summary="The calling principal")
def whoami() -> Whoami:
    return Whoami.model_validate(principal(router.current_event).as_context())
