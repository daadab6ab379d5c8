"""Reward conditions read ``member.segments`` and ``traits.*``: a reward for a segment is
redeemed by its members and refused (``condition``) to the others, in the catalogue as at the
till; traits the same way. Memberships and traits are stored as the segment sweep and the
traits job store them."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from fidelia.db import Database
from fidelia.models import Member, MemberTraits, Programme, SegmentMember
from fidelia.rewards import redemptions
from fidelia.rewards import service as catalogue
from fidelia.rewards.errors import NotRedeemable
from tests.rewards.conftest import T0, make_reward, points

NewMember = Callable[..., uuid.UUID]
VIP = {"field": "member.segments", "op": "contains", "value": "vip"}
CHAMPIONS = {"field": "traits.rfm_cell", "op": "eq", "value": "champions"}


def redeem(database: Database, programme: Programme, member_id: uuid.UUID, reward: str) -> int:
    with database.transaction() as session:
        done = redemptions.redeem(
            session,
            programme=programme,
            member_id=member_id,
            reward=reward,
            idempotency_key=f"k-{member_id}-{reward}",
            now=T0,
        )
        return done.points


def refusal(
    database: Database, programme: Programme, member_id: uuid.UUID, reward: str
) -> list[str]:
    with pytest.raises(NotRedeemable) as caught:
        redeem(database, programme, member_id, reward)
    return caught.value.reasons


def offers(database: Database, programme: Programme, member_id: uuid.UUID) -> dict[str, list[str]]:
    with database.transaction(readonly=True) as session:
        member = session.get(Member, member_id)
        assert member is not None
        found = catalogue.catalogue_for(session, programme=programme, member=member, now=T0)
        return {o.reward.code: list(o.reasons) for o in found}


def test_a_reward_for_a_segment_is_for_its_members_only(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p = rewards_programme
    make_reward(database, p, code="vip-lounge", cost_points=100, condition=VIP)
    vip, other = new_member(500), new_member(500)
    with database.transaction() as session:
        session.add(SegmentMember(programme_id=p.id, segment="vip", member_id=vip, since=T0))
        session.add(SegmentMember(programme_id=p.id, segment="lapsed", member_id=other, since=T0))

    assert offers(database, p, vip)["vip-lounge"] == []
    assert offers(database, p, other)["vip-lounge"] == ["condition"]
    assert refusal(database, p, other, "vip-lounge") == ["condition"]
    assert points(database, p, other) == 500  # refused: nothing spent
    assert redeem(database, p, vip, "vip-lounge") == 100
    assert points(database, p, vip) == 400


def test_a_reward_for_a_trait_reads_the_members_traits(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p = rewards_programme
    make_reward(database, p, code="champions-gift", cost_points=100, condition=CHAMPIONS)
    champion, loyal, unknown = new_member(500), new_member(500), new_member(500)
    with database.transaction() as session:
        for member_id, cell in ((champion, "champions"), (loyal, "loyal")):
            session.add(MemberTraits(member_id=member_id, programme_id=p.id, rfm_cell=cell))

    assert refusal(database, p, loyal, "champions-gift") == ["condition"]
    assert refusal(database, p, unknown, "champions-gift") == ["condition"]  # no traits yet
    assert redeem(database, p, champion, "champions-gift") == 100
