"""`POST /children/{child_id}/erase`: an administrator erases a child's personal data.

Refused first: anyone but an administrator is 403 (rule `administrator-erases`) before anything
is looked up, so the answer says nothing about whether a case names the child. Then a child no
case ever named is 404; a body whose reason is not one of the fixed words, or whose reference is
not a journal number, is 422 naming the field.

Erasing records `ChildErased` (no personal data: the reason word, the reference, the cases),
then deletes the child's key, so everything sealed with it reads as erased everywhere at once.
Erasing a child erased already records nothing new and answers 200 all the same, and deletes
the key if a crash left it behind: the answer is only given once the key is gone.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from stafett_case.children import Children
from stafett_case.domain.erasure import EraseChild
from stafett_contracts.identity import Actor
from stafett_runtime.kernel import Kernel
from stafett_runtime.service import call


class Erasure(msgspec.Struct, frozen=True, kw_only=True):
    """The child is erased: its personal data reads as erased in every case."""

    child_id: UUID
    version: int
    already_erased: bool  # erased by an earlier request: nothing new was recorded


def erase_route(children: Children | None, kernel: Kernel) -> HTTPRouteHandler:
    """The route; `children` is None only for the OpenAPI document, which calls nothing."""

    @post(
        "/children/{child_id:uuid}/erase",
        operation_id="erase-child",
        summary="Erase a child's personal data in every case, for good (administrators)",
        description=__doc__,
        status_code=HTTP_200_OK,
    )
    async def erase_child(
        child_id: FromPath[UUID], data: JSONBody[EraseChild], request: Request[Actor, Any, Any]
    ) -> Erasure:
        assert children is not None, "the OpenAPI document's app is never called"
        context = kernel.context(request.user)
        decision = await call(children.erase, child_id, data, context)
        await kernel.erase(str(child_id), data.reason)  # after the record: see the module
        return Erasure(
            child_id=child_id, version=decision.version, already_erased=not decision.events
        )

    return erase_child
