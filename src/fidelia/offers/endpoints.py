"""Offers API: the programme's offers with their conversion (read), giving one to members
(admin), a member's offers and perks (read)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from fidelia.auth.dependencies import Admin, DbSession, Reader
from fidelia.errors import ERROR_RESPONSES, NotFound
from fidelia.kit.clock import utcnow
from fidelia.offers import perks, service
from fidelia.offers.schemas import GiveIn, GiveOut, MemberOfferOut, OfferOut, PerksOut

router = APIRouter(tags=["offers"], responses=ERROR_RESPONSES)


@router.get("/offers", response_model=list[OfferOut], summary="The offers and their conversion")
def list_offers(principal: Reader, session: DbSession) -> list[OfferOut]:
    """Every offer of the programme document (`offers`), by code: its definition, its status
    (`upcoming`, `active`, `ended`), the first-N slots left, and its conversion: members
    `offered`, members who `used` it, `uses`, `rate` (used / offered) and the `revenue` of the
    baskets its uses came with (a voucher offer: its vouchers' uses at the till).

    Scope: `read`.
    """
    return service.list_offers(session, programme=principal.programme)


@router.get("/offers/{code}", response_model=OfferOut, summary="One offer and its conversion")
def get_offer(code: str, principal: Reader, session: DbSession) -> OfferOut:
    """One offer, as in the list. 404: no offer by this code in the live document.

    Scope: `read`.
    """
    service.get_offer(session, principal.programme, code)
    found = [o for o in service.list_offers(session, programme=principal.programme)]
    for offer in found:
        if offer.offer.code == code:
            return offer
    raise NotFound(f"offer {code!r} is not in the programme document")


@router.post("/offers/{code}/give", response_model=GiveOut, summary="Give an offer to members")
def give(code: str, body: GiveIn, principal: Admin, session: DbSession) -> GiveOut:
    """Give the offer to `member_ids` (one member: a personal offer; several: a list) or to every
    current member of a `segment`. Each member gets it once: members who hold it already are
    counted in `already` and keep theirs. A points offer is credited at once, a voucher offer
    issues the member's voucher; a booster applies to their purchases within its validity; a
    perk shows in their perks.

    404: no such offer. 409: the offer has ended. 422: an unknown member (its index in
    `member_ids`) or segment; nothing is given then.

    Scope: `admin`.
    """
    return service.give(
        session,
        programme=principal.programme,
        code=code,
        data=body,
        actor=f"api_key:{principal.key_id}",
    )


@router.get(
    "/members/{member_id}/offers",
    response_model=list[MemberOfferOut],
    summary="The member's offers",
)
def member_offers(
    member_id: uuid.UUID, principal: Reader, session: DbSession, active: bool = False
) -> list[MemberOfferOut]:
    """The offers the member was given, newest first: what each gives, how it came (`member`,
    `list`, `segment`, `first_n`), its validity, uses and status (`upcoming`, `active`, `used`,
    `expired`), and a voucher offer's code. `active=true`: only those usable now.

    404: no such member.

    Scope: `read`.
    """
    return service.member_offers(
        session,
        programme=principal.programme,
        member_id=member_id,
        now=utcnow(),
        active_only=active,
    )


@router.get("/members/{member_id}/perks", response_model=PerksOut, summary="The member's perks now")
def member_perks(member_id: uuid.UUID, principal: Reader, session: DbSession) -> PerksOut:
    """The perks the member holds now (free delivery, early access, dedicated service...) and why:
    each with its `sources`, `tier` (their tier, or a plan's tier floor), `plan` (a live
    subscription's benefits) or `offer` (a perk offer within its validity), and until when. For
    the till and the web shop: a perk that is not listed is not held.

    404: no such member.

    Scope: `read`.
    """
    return perks.perks_of(session, programme=principal.programme, member_id=member_id)
