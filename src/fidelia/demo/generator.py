"""A deterministic synthetic data set for the demo: members and months of activity, as events.

``generate(GeneratorConfig(members=2000, months=12, seed=42))`` returns a :class:`Dataset` whose
``events`` are event documents (``EventIn`` as JSON: ``id``, ``type``, ``occurred_at``, ``member``,
``channel``, ``store``, ``properties``) in the order they happened; ``write_jsonl`` writes them for
``fidelia events import``.

Same configuration, same bytes: one ``random.Random(seed)`` drives every choice, Faker (fr_FR, for
names) is seeded with the same seed, and the clock is never read (the period ends on
``config.end``). Faker's name lists may change between Faker releases, so byte-identity holds for
one Faker version.

What is in it:

- an ``enrolment`` per member before anything else they do (store, web or app), with a profile
  (name, birth date, locale, postal code near their home store) and consents asked for the
  contacts they gave (email 60 %, SMS 35 %, push 25 %, postal 10 %); store members have a card,
  web and app members an email, some a phone;
- customer archetypes (:data:`catalogue.ARCHETYPES`): loyal, regular, occasional, seasonal
  (December and the sales), lapsed (stop buying part-way) and one-off buyers;
- purchases with 1-6 lines across categories and brands, catalogue prices in EUR, discounts in
  the sales, shipping on small web orders, following the seasons (December peak, January and
  summer sales, Black Friday), the days of the week (Saturday in store, Sunday on the web) and
  the hours (stores open 10:00-19:30, Europe/Paris);
- returns (about 4 %: full or partial, 2-21 days after the purchase, never more than bought);
- the demo programme's engagement events: ``review``, ``recycling_drop_off``, ``app_download``
  (once per member), ``check_in`` (latitude/longitude near a store, a few too far),
  ``social_share``, ``newsletter_signup``, ``referral_completed``; and a few ``consent_changed``
  and ``profile_updated``;
- duplicate enrolments on purpose (1 % of the members): the same person signs up again later on
  the web or the app with the same email typed in other capitals. Identities are normalised, so
  intake finds the existing member: the event is accepted as that member's, no second member is
  created (see ``Dataset.duplicates``).
"""

from __future__ import annotations

import json
import math
import random
import unicodedata
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeVar

from faker import Faker

from fidelia.demo.catalogue import (
    ARCHETYPES,
    CATEGORIES,
    EMAIL_DOMAINS,
    PAYMENT_MEANS,
    PRODUCTS_BY_CATEGORY,
    RECYCLING_KINDS,
    SOCIAL_NETWORKS,
    STORES,
    Archetype,
    Product,
    Store,
)
from fidelia.demo.seasons import Calendar

DEFAULT_END = date(2026, 10, 31)
DAY = 86_400
CENT = Decimal("0.01")
CONSENT_RATES = {"email": 0.60, "sms": 0.35, "push": 0.25, "postal": 0.10}
ENROL_CHANNELS = (("store", 0.55), ("web", 0.30), ("app", 0.15))
RETURN_RATES = {"store": 0.025, "web": 0.085, "app": 0.06}
BASKET_SIZES = (34.0, 27.0, 18.0, 11.0, 6.0, 4.0)  # 1 to 6 lines
RATINGS = ((5, 45.0), (4, 28.0), (3, 12.0), (2, 7.0), (1, 8.0))
REFERRER_WEIGHT = {
    "loyal": 6.0,
    "regular": 3.0,
    "occasional": 1.0,
    "seasonal": 1.0,
    "lapsed": 1.0,
    "one_off": 0.2,
}
T = TypeVar("T")


@dataclass(frozen=True)
class GeneratorConfig:
    members: int = 2000
    months: int = 12
    seed: int = 42
    end: date = DEFAULT_END  # last day of the period, included
    time_zone: str = "Europe/Paris"
    duplicate_share: float = 0.01  # members who enrol a second time with the same email

    def __post_init__(self) -> None:
        if self.members < 1:
            raise ValueError("members must be at least 1")
        if not 1 <= self.months <= 120:
            raise ValueError("months must be between 1 and 120")
        if not 0 <= self.duplicate_share <= 0.5:
            raise ValueError("duplicate_share must be between 0 and 0.5")

    @property
    def start(self) -> date:
        """The first day: ``months`` before the day after ``end``."""
        after = self.end + timedelta(days=1)
        month = after.month - 1 - self.months
        year, month = after.year + month // 12, month % 12 + 1
        last_day = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
        return date(year, month, min(after.day, last_day))


@dataclass
class SyntheticMember:
    """One generated person: who they are, how they behave, and what they did (for the tests)."""

    index: int
    archetype: Archetype
    first_name: str
    last_name: str
    birth_date: date | None
    locale: str
    postal_code: str
    home_store: Store
    enrol_channel: str
    card: str | None
    email: str | None
    phone: str | None
    enrolled_at: int  # epoch seconds
    active_until: int  # no purchase from then on (lapsed members stop early)
    consents: dict[str, bool] = field(default_factory=dict)
    app_at: int | None = None
    channel_mix: tuple[float, float, float] = (1.0, 0.0, 0.0)  # store, web, app
    affinity: list[float] = field(default_factory=list)  # cumulative weights of CATEGORIES
    referred_by: int | None = None
    first_order: tuple[int, str] | None = None
    orders: list[str] = field(default_factory=list)


@dataclass
class Dataset:
    config: GeneratorConfig
    events: list[dict[str, Any]]
    members: list[SyntheticMember]
    duplicates: int
    referrals: int

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def counts(self) -> dict[str, int]:
        """Events per type, most frequent first."""
        return dict(Counter(e["type"] for e in self.events).most_common())

    def archetypes(self) -> dict[str, int]:
        return dict(Counter(m.archetype.name for m in self.members).most_common())

    def consents(self) -> dict[str, tuple[int, int]]:
        """Per channel, how many members opted in at enrolment and how many were asked."""
        return {
            c: (
                sum(m.consents.get(c, False) for m in self.members),
                sum(c in m.consents for m in self.members),
            )
            for c in CONSENT_RATES
        }


def generate(config: GeneratorConfig | None = None) -> Dataset:
    """The data set for a configuration; the same configuration gives the same events."""
    return _Generator(config or GeneratorConfig()).run()


def generate_events(config: GeneratorConfig | None = None) -> Iterator[dict[str, Any]]:
    """The events alone, in the order they happened."""
    return iter(generate(config).events)


def dumps(event: dict[str, Any]) -> str:
    """One event as one JSON Lines line (without the newline)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def write_jsonl(events: Iterable[dict[str, Any]], path: Path) -> int:
    """Write events as JSON Lines (UTF-8); returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for event in events:
            out.write(dumps(event))
            out.write("\n")
            count += 1
    return count


def _cumulate(weights: Iterable[float]) -> list[float]:
    cum, total = [], 0.0
    for weight in weights:
        total += weight
        cum.append(total)
    return cum


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _fold(text: str) -> str:
    """ASCII letters and digits of a name, lower case (for email addresses)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


class _Generator:
    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.fake = Faker("fr_FR")
        self.fake.seed_instance(config.seed)
        start = config.start
        self.cal = Calendar(start, (config.end - start).days + 1, config.time_zone)
        self.end_ts = self.cal.end_timestamp()
        self.start_ts = self.cal.at(0, 0)
        self.events: list[tuple[int, int, dict[str, Any]]] = []
        self.emails: set[str] = set()
        self.orders = 0
        self.returns = 0
        self.duplicates = 0
        self.referrals = 0
        self._tables: dict[tuple[Any, ...], tuple[list[Any], list[float]]] = {}
        gift_weights = [
            [3.0 if p.gift else 1.0 for p in PRODUCTS_BY_CATEGORY[c.id]] for c in CATEGORIES
        ]
        self.product_cum = {
            december: [_cumulate(w if december else 1.0 for w in ws) for ws in gift_weights]
            for december in (False, True)
        }
        self.basket_cum = {
            a.name: _cumulate(w * a.basket_bias**i for i, w in enumerate(BASKET_SIZES))
            for a in ARCHETYPES
        }

    # -- small helpers -------------------------------------------------------------------------

    def pick(self, items: tuple[tuple[T, float], ...]) -> T:
        """One of ``(item, weight)`` pairs, by weight."""
        table = self._tables.get(items)
        if table is None:
            table = self._tables[items] = ([i for i, _ in items], _cumulate(w for _, w in items))
        return self.choose(table[0], table[1])  # type: ignore[no-any-return]

    def choose(self, items: Sequence[T], cum: Sequence[float]) -> T:
        """One of ``items`` by cumulative weights (what ``random.choices`` does, without
        building the cumulative weights at every call)."""
        return items[min(bisect_right(cum, self.rng.random() * cum[-1]), len(items) - 1)]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 30:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def intensity(self, sigma: float = 0.6) -> float:
        """A member's own multiplier of a rate: log-normal with mean 1."""
        return self.rng.lognormvariate(-sigma * sigma / 2, sigma)

    def emit(
        self,
        ts: int,
        type_: str,
        member: dict[str, Any],
        channel: str,
        properties: dict[str, Any],
        store: str | None = None,
    ) -> None:
        event: dict[str, Any] = {
            "type": type_,
            "occurred_at": self.cal.iso(ts),
            "member": member,
            "channel": channel,
        }
        if store is not None:
            event["store"] = store
        event["properties"] = properties
        self.events.append((ts, len(self.events), event))

    def moment(self, channel: str, day: int) -> int | None:
        """A time on that day (or the next open one) for the channel; None past the period."""
        open_day = self.cal.next_open(channel, day)
        return None if open_day is None else self.cal.sample_time(self.rng, channel, open_day)

    # -- members -------------------------------------------------------------------------------

    def run(self) -> Dataset:
        config = self.config
        members = [self.new_member(i) for i in range(config.members)]
        self.assign_referrals(members)
        duplicates = self.pick_duplicates(members)
        for member in members:
            self.enrol(member)
            self.activity(member)
            if member.index in duplicates:
                self.enrol_again(member)
        self.complete_referrals(members)
        self.events.sort(key=lambda e: (e[0], e[1]))
        width = max(6, len(str(len(self.events))))
        events = [
            {"id": f"gen-{config.seed}-{n:0{width}d}", **event}
            for n, (_, _, event) in enumerate(self.events, start=1)
        ]
        return Dataset(config, events, members, self.duplicates, self.referrals)

    def new_member(self, index: int) -> SyntheticMember:
        rng, cal = self.rng, self.cal
        archetype = rng.choices(ARCHETYPES, weights=[a.share for a in ARCHETYPES])[0]
        channel = self.pick(ENROL_CHANNELS)
        store = rng.choices(STORES, weights=[s.weight for s in STORES])[0]
        female = self.chance(0.55)
        first = self.fake.first_name_female() if female else self.fake.first_name_male()
        last = self.fake.last_name()
        # when they join: lapsed members early on; half of the others at the programme's launch
        if archetype.lapses:
            first_day, last_day = 0, max(0, int(cal.days * 0.35))
        elif self.chance(0.5):
            first_day, last_day = 0, min(cal.days - 1, 30)
        else:
            first_day, last_day = 0, cal.days - 1
        day = cal.sample_day(rng, channel, first_day, last_day)
        if day is None:
            day = cal.sample_day(rng, "web", first_day, last_day) or 0
            channel = "web"
        enrolled_at = cal.sample_time(rng, channel, day)
        active_until = self.end_ts
        if archetype.lapses:
            lapse = day + rng.randint(45, max(46, int(cal.days * 0.6)))
            if lapse < cal.days:
                active_until = cal.at(lapse, 0)
        card = f"EC{rng.randrange(10**10):010d}" if channel == "store" else None
        has_email = channel != "store" or self.chance(0.7)
        phone_p = {"store": 0.45, "web": 0.25, "app": 0.6}[channel]
        phone = self.new_phone() if self.chance(phone_p) else None
        email = self.new_email(first, last) if has_email else None
        age = min(88, max(18, int(rng.triangular(18, 85, 38))))
        birth_date = None
        if self.chance(0.85):
            birth_date = date(cal.start.year - age, 1, 1) + timedelta(days=rng.randrange(365))
        locale = self.pick((("fr-FR", 92.0), ("en-GB", 4.0), ("de-DE", 2.0), ("es-ES", 2.0)))
        if channel == "web" and self.chance(0.3):
            postal_code = self.fake.postcode()  # web customers come from anywhere
        else:
            postal_code = rng.choice(store.postal_codes)
        member = SyntheticMember(
            index=index,
            archetype=archetype,
            first_name=first,
            last_name=last,
            birth_date=birth_date,
            locale=locale,
            postal_code=postal_code,
            home_store=store,
            enrol_channel=channel,
            card=card,
            email=email,
            phone=phone,
            enrolled_at=enrolled_at,
            active_until=max(active_until, enrolled_at + DAY),
        )
        member.consents = self.ask_consents(member)
        has_app = channel == "app" or self.chance(0.3)
        if channel == "app":
            member.app_at = enrolled_at + rng.randint(30, 600)
        elif has_app:
            member.app_at = enrolled_at + int(rng.expovariate(1 / (60 * DAY))) + 3600
        if member.app_at is not None and member.app_at >= self.end_ts:
            member.app_at = None
        mixes = {
            "store": (0.80, 0.15, 0.05),
            "web": (0.20, 0.75, 0.05),
            "app": (0.25, 0.15, 0.60),
        }
        store_p, web_p, app_p = mixes[channel]
        if member.app_at is not None and channel != "app":
            store_p, web_p, app_p = store_p * 0.8, web_p * 0.8, app_p + 0.2 * (store_p + web_p)
        member.channel_mix = (store_p, web_p, app_p)
        favourites = rng.sample(range(len(CATEGORIES)), 3)
        member.affinity = _cumulate(
            c.weight * (4.0 if i in favourites[:2] else 0.3 if i == favourites[2] else 1.0)
            for i, c in enumerate(CATEGORIES)
        )
        return member

    def new_phone(self) -> str:
        """A French mobile number (+33 6 00-89, not 39: those are overseas numbers)."""
        head = self.rng.randrange(89)
        return f"+336{head + (head >= 39):02d}{self.rng.randrange(10**6):06d}"

    def new_email(self, first: str, last: str) -> str:
        rng = self.rng
        f, last_ = _fold(first) or "client", _fold(last) or "fidelia"
        style = rng.randrange(4)
        local = (
            f"{f}.{last_}",
            f"{f[0]}{last_}",
            f"{f}.{last_}{rng.randint(1, 99)}",
            f"{f}_{last_}{rng.randint(60, 99)}",
        )[style]
        email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
        while email in self.emails:
            email = f"{local}{rng.randint(100, 9999)}@{rng.choice(EMAIL_DOMAINS)}"
        self.emails.add(email)
        return email

    def ask_consents(self, member: SyntheticMember) -> dict[str, bool]:
        """Consents asked at enrolment: email and SMS of those who gave them; push, post of all."""
        asked = ["push", "postal"]
        if member.email:
            asked.insert(0, "email")
        if member.phone:
            asked.insert(1 if member.email else 0, "sms")
        return {c: self.chance(CONSENT_RATES[c]) for c in asked}

    def ref(self, member: SyntheticMember, channel: str) -> dict[str, Any]:
        """How a channel names the member: the card at the till, the email on the web."""
        if channel == "store":
            if member.card:
                return {"card": member.card}
            if member.phone:
                return {"phone": member.phone}
        if channel == "app" and member.phone and (not member.email or self.chance(0.3)):
            return {"phone": member.phone}
        if member.email:
            return {"email": member.email}
        if member.card:
            return {"card": member.card}
        assert member.phone
        return {"phone": member.phone}

    def label(self, member: SyntheticMember) -> str:
        return member.email or member.card or member.phone or ""

    # -- enrolment -----------------------------------------------------------------------------

    def enrol(self, member: SyntheticMember) -> None:
        ref: dict[str, Any] = {}
        if member.card:
            ref["card"] = member.card
        if member.email:
            ref["email"] = member.email
        if member.phone:  # typed in national format at the till
            phone = member.phone
            ref["phone"] = (
                "0" + " ".join([phone[3], *(phone[i : i + 2] for i in range(4, 12, 2))])
                if member.enrol_channel == "store"
                else phone
            )
        profile: dict[str, Any] = {"first_name": member.first_name, "last_name": member.last_name}
        if member.birth_date:
            profile["birth_date"] = member.birth_date.isoformat()
        profile["locale"] = member.locale
        profile["postal_code"] = member.postal_code
        attributes: dict[str, Any] = {"home_store": member.home_store.id}
        if member.referred_by is not None:
            attributes["referred_by"] = self.referrer_labels[member.index]
        profile["attributes"] = attributes
        consents = [{"channel": c, "granted": g} for c, g in member.consents.items()]
        store = member.home_store.id if member.enrol_channel == "store" else None
        self.emit(
            member.enrolled_at,
            "enrolment",
            ref,
            member.enrol_channel,
            {"profile": profile, "consents": consents},
            store,
        )

    def pick_duplicates(self, members: list[SyntheticMember]) -> set[int]:
        candidates = [
            m.index
            for m in members
            if m.email and m.referred_by is None and m.enrolled_at < self.end_ts - 20 * DAY
        ]
        count = min(len(candidates), round(len(members) * self.config.duplicate_share))
        return set(self.rng.sample(candidates, count))

    def enrol_again(self, member: SyntheticMember) -> None:
        """The same person signs up again, with their email typed in other capitals."""
        assert member.email
        local, domain = member.email.split("@")
        typed = ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()
        channel = "app" if member.enrol_channel == "web" else "web"
        day = self.cal.day_of(member.enrolled_at) + self.rng.randint(7, 120)
        ts = self.moment(channel, min(day, self.cal.days - 1))
        if ts is None or ts <= member.enrolled_at:
            return
        if channel == "app" and (member.app_at is None or ts <= member.app_at):
            channel = "web"
        profile = {"first_name": member.first_name, "last_name": member.last_name}
        self.emit(ts, "enrolment", {"email": typed}, channel, {"profile": profile, "consents": []})
        self.duplicates += 1

    # -- activity ------------------------------------------------------------------------------

    def activity(self, member: SyntheticMember) -> None:
        if member.app_at is not None:
            platform = self.pick((("android", 55.0), ("ios", 45.0)))
            self.emit(
                member.app_at,
                "app_download",
                self.ref(member, "app"),
                "app",
                {"platform": platform},
            )
        for ts, channel in self.purchase_times(member):
            self.purchase(member, ts, channel)
        self.recycling(member)
        self.check_ins(member)
        self.social_shares(member)
        self.newsletter(member)
        self.profile_changes(member)

    def purchase_times(self, member: SyntheticMember) -> list[tuple[int, str]]:
        rng, cal, archetype = self.rng, self.cal, member.archetype
        first_day = cal.day_of(member.enrolled_at)
        last_day = min(cal.days - 1, cal.day_of(member.active_until - 1))
        if archetype.one_off:
            count = 1 if self.chance(0.85) else 0
            last_day = min(last_day, first_day + 14)
        else:
            months = (member.active_until - member.enrolled_at) / (30.44 * DAY)
            count = self.poisson(archetype.purchases_per_month * self.intensity() * months)
        times: list[tuple[int, str]] = []
        if count and member.enrol_channel in ("store", "web") and self.chance(0.5):
            # enrolled at the till (or at the checkout) while buying
            times.append((member.enrolled_at + rng.randint(90, 600), member.enrol_channel))
            count -= 1
        channels = ("store", "web", "app")
        channel_cum = _cumulate(member.channel_mix)
        for _ in range(count):
            channel = self.choose(channels, channel_cum)
            day = cal.sample_day(rng, channel, first_day, last_day, seasonal=archetype.seasonal)
            if day is None:
                continue
            ts = cal.sample_time(rng, channel, day)
            if ts <= member.enrolled_at and channel == "store":
                continue  # earlier on the day they enrolled
            if ts <= member.enrolled_at:
                ts = member.enrolled_at + rng.randint(120, 3600)
            if channel == "app" and (member.app_at is None or ts <= member.app_at):
                channel = "web"
            if ts < member.active_until and ts < self.end_ts:
                times.append((ts, channel))
        times.sort()
        return times

    def basket(self, member: SyntheticMember, day: int) -> list[dict[str, Any]]:
        rng, cal = self.rng, self.cal
        size = self.choose(range(1, 7), self.basket_cum[member.archetype.name])
        december, sales = cal.is_december(day), cal.in_sales(day)
        product_cum = self.product_cum[december]
        chosen: dict[str, Product] = {}
        for _ in range(size * 3):
            if len(chosen) == size:
                break
            category = self.choose(range(len(CATEGORIES)), member.affinity)
            products = PRODUCTS_BY_CATEGORY[CATEGORIES[category].id]
            product = self.choose(products, product_cum[category])
            chosen.setdefault(product.sku, product)
        lines = []
        for product in chosen.values():
            price = product.price
            if price < 10:
                quantity = self.pick(((1, 70.0), (2, 18.0), (3, 8.0), (4, 4.0)))
            elif price < 30:
                quantity = 1 if self.chance(0.88) else 2
            else:
                quantity = 1 if self.chance(0.97) else 2
            line: dict[str, Any] = {
                "sku": product.sku,
                "name": product.name,
                "category": product.category,
                "brand": product.brand,
                "quantity": quantity,
                "unit_price": _money(price),
            }
            rate = None
            if sales and self.chance(0.45):
                rate = rng.choice(("0.2", "0.3", "0.4", "0.5"))
            elif not sales and self.chance(0.06):
                rate = rng.choice(("0.1", "0.15"))
            if rate is not None:
                line["discount"] = _money(price * quantity * Decimal(rate))
            lines.append(line)
        return lines

    def purchase(self, member: SyntheticMember, ts: int, channel: str) -> None:
        rng, cal = self.rng, self.cal
        day = cal.day_of(ts)
        lines = self.basket(member, day)
        subtotal = sum(
            (
                Decimal(line["unit_price"]) * line["quantity"] - Decimal(line.get("discount", "0"))
                for line in lines
            ),
            Decimal(0),
        )
        store: str | None = None
        shipping = Decimal(0)
        if channel == "store":
            store = member.home_store.id if self.chance(0.92) else rng.choice(STORES).id
        elif channel == "app" and self.chance(0.6):
            store = member.home_store.id  # click and collect
        elif subtotal < 49:
            shipping = Decimal("4.90")
        self.orders += 1
        order_id = f"ord-{self.config.seed}-{self.orders:06d}"
        properties = {
            "order_id": order_id,
            "lines": lines,
            "shipping": _money(shipping),
            "total": _money(subtotal + shipping),
            "currency": "EUR",
            "payment_means": list(self.pick(PAYMENT_MEANS[channel])),
        }
        if channel == "store" and member.app_at is not None and member.app_at < ts:
            self.check_in_before(member, ts, store)
        self.emit(ts, "purchase", self.ref(member, channel), channel, properties, store)
        member.orders.append(order_id)
        if member.first_order is None:
            member.first_order = (ts, order_id)
        if self.chance(RETURN_RATES[channel]):
            self.give_back(member, ts, channel, store, order_id, lines)
        self.review(member, ts, order_id, lines)

    def give_back(
        self,
        member: SyntheticMember,
        ts: int,
        channel: str,
        store: str | None,
        order_id: str,
        lines: list[dict[str, Any]],
    ) -> None:
        """A full or partial return, 2-21 days later; sometimes a second one of what is left."""
        rng = self.rng
        bought = {line["sku"]: line["quantity"] for line in lines}
        if self.chance(0.45):
            wanted = dict(bought)
        elif len(lines) > 1:
            picked = rng.sample(lines, rng.randint(1, len(lines) - 1))
            wanted = {line["sku"]: rng.randint(1, line["quantity"]) for line in picked}
        elif lines[0]["quantity"] > 1:
            wanted = {lines[0]["sku"]: rng.randint(1, lines[0]["quantity"] - 1)}
        else:
            wanted = dict(bought)
        day = self.cal.day_of(ts) + rng.randint(2, 21)
        at = self.return_one(member, day, channel, store, order_id, lines, wanted)
        left = {sku: q - wanted.get(sku, 0) for sku, q in bought.items() if q > wanted.get(sku, 0)}
        if at is not None and left and self.chance(0.2):
            sku = rng.choice(sorted(left))
            day = self.cal.day_of(at) + rng.randint(1, 10)
            self.return_one(
                member, day, channel, store, order_id, lines, {sku: rng.randint(1, left[sku])}
            )

    def return_one(
        self,
        member: SyntheticMember,
        day: int,
        channel: str,
        store: str | None,
        order_id: str,
        lines: list[dict[str, Any]],
        wanted: dict[str, int],
    ) -> int | None:
        if day >= self.cal.days:
            return None
        back = "store" if channel == "store" or self.chance(0.35) else "web"
        at = self.moment(back, day)
        if at is None or at >= self.end_ts:
            return None
        refund = Decimal(0)
        for line in lines:
            if line["sku"] in wanted:
                amount = Decimal(line["unit_price"]) * line["quantity"] - Decimal(
                    line.get("discount", "0")
                )
                refund += amount * wanted[line["sku"]] / line["quantity"]
        self.returns += 1
        properties = {
            "order_id": order_id,
            "return_id": f"ret-{self.config.seed}-{self.returns:06d}",
            "lines": [
                {"sku": line["sku"], "quantity": wanted[line["sku"]]}
                for line in lines
                if line["sku"] in wanted
            ],
            "refund_total": _money(refund),
        }
        where = (store or member.home_store.id) if back == "store" else None
        self.emit(at, "return", self.ref(member, back), back, properties, where)
        return at

    def review(
        self, member: SyntheticMember, ts: int, order_id: str, lines: list[dict[str, Any]]
    ) -> None:
        rng = self.rng
        reviewer = (member.index * 7919 + self.config.seed) % 10 < 3  # 30 % write reviews
        if not self.chance(0.3 if reviewer else 0.02):
            return
        day = self.cal.day_of(ts) + rng.randint(2, 25)
        if day >= self.cal.days:
            return
        at = self.cal.sample_time(rng, "web", day)
        if at <= ts or at >= self.end_ts:
            return
        app = member.app_at is not None and member.app_at < at and self.chance(0.5)
        channel = "app" if app else "web"
        line = rng.choice(lines)
        text_length = rng.randint(50, 900) if self.chance(0.82) else rng.randint(5, 49)
        properties = {
            "sku": line["sku"],
            "order_id": order_id,
            "rating": self.pick(RATINGS),
            "text_length": text_length,
            "language": member.locale[:2],
        }
        self.emit(at, "review", self.ref(member, channel), channel, properties)

    def near(self, store: Store, *, far: bool = False) -> dict[str, Any]:
        """A phone's position near a store (within 350 m), or 0.6 to 3 km away."""
        rng = self.rng
        distance = rng.uniform(0.6, 3.0) if far else 0.35 * math.sqrt(rng.random())
        bearing = rng.uniform(0, 2 * math.pi)
        lat = store.lat + distance / 111.32 * math.cos(bearing)
        lon = store.lon + distance / (111.32 * math.cos(math.radians(store.lat))) * math.sin(
            bearing
        )
        return {"lat": round(lat, 6), "lon": round(lon, 6), "accuracy_m": rng.randint(5, 60)}

    def check_in_before(self, member: SyntheticMember, ts: int, store_id: str | None) -> None:
        if not self.chance(0.55):
            return
        at = ts - self.rng.randint(60, 1200)
        if member.app_at is None or at <= member.app_at or at <= member.enrolled_at:
            return
        store = next((s for s in STORES if s.id == store_id), member.home_store)
        self.emit(at, "check_in", self.ref(member, "app"), "app", self.near(store))

    def check_ins(self, member: SyntheticMember) -> None:
        """Visits without a purchase, checked in with the app; 6 % too far from the store."""
        if member.app_at is None:
            return
        rng, cal = self.rng, self.cal
        months = max(0, member.active_until - member.app_at) / (30.44 * DAY)
        first_day, last_day = cal.day_of(member.app_at), cal.day_of(member.active_until - 1)
        for _ in range(self.poisson(1.1 * self.intensity() * months)):
            day = cal.sample_day(rng, "store", first_day, last_day)
            if day is None:
                return
            at = cal.sample_time(rng, "store", day)
            if at <= member.app_at or at >= member.active_until:
                continue
            store = member.home_store if self.chance(0.9) else rng.choice(STORES)
            self.emit(
                at,
                "check_in",
                self.ref(member, "app"),
                "app",
                self.near(store, far=self.chance(0.06)),
            )

    def recycling(self, member: SyntheticMember) -> None:
        """A third of the members who go to the store bring used items back, some often."""
        if member.channel_mix[0] < 0.2 or not self.chance(0.35):
            return
        rng, cal = self.rng, self.cal
        months = (member.active_until - member.enrolled_at) / (30.44 * DAY)
        first_day, last_day = cal.day_of(member.enrolled_at), cal.day_of(member.active_until - 1)
        for _ in range(self.poisson(1.0 * self.intensity(0.8) * months)):
            day = cal.sample_day(rng, "store", first_day, last_day)
            if day is None:
                return
            at = cal.sample_time(rng, "store", day)
            if at <= member.enrolled_at or at >= member.active_until:
                continue
            store = member.home_store if self.chance(0.95) else rng.choice(STORES)
            properties = {"kind": rng.choice(RECYCLING_KINDS), "items": rng.randint(1, 6)}
            self.emit(
                at, "recycling_drop_off", self.ref(member, "store"), "store", properties, store.id
            )

    def social_shares(self, member: SyntheticMember) -> None:
        """A third of the members share on social networks, some every week."""
        if not self.chance(0.33):
            return
        rng, cal = self.rng, self.cal
        months = (member.active_until - member.enrolled_at) / (30.44 * DAY)
        first_day, last_day = cal.day_of(member.enrolled_at), cal.day_of(member.active_until - 1)
        for _ in range(self.poisson(rng.uniform(0.15, 1.8) * months)):
            app = member.app_at is not None and self.chance(0.7)
            channel = "app" if app else "web"
            day = cal.sample_day(rng, channel, first_day, last_day)
            if day is None:
                return
            at = cal.sample_time(rng, channel, day)
            if at <= member.enrolled_at or (
                app and member.app_at is not None and at <= member.app_at
            ):
                continue
            content = self.pick(
                (("product", 50.0), ("review", 20.0), ("badge", 15.0), ("referral_link", 15.0))
            )
            properties: dict[str, Any] = {"network": self.pick(SOCIAL_NETWORKS), "content": content}
            if content == "product":
                category = self.choose(CATEGORIES, member.affinity)
                properties["sku"] = rng.choice(PRODUCTS_BY_CATEGORY[category.id]).sku
            self.emit(at, "social_share", self.ref(member, channel), channel, properties)

    def newsletter(self, member: SyntheticMember) -> None:
        """45 % of those who accept emails also sign up to the newsletter, once."""
        if not member.consents.get("email") or not self.chance(0.45):
            return
        rng = self.rng
        if self.chance(0.4):
            at = member.enrolled_at + rng.randint(60, 900)
            channel = member.enrol_channel
            if channel == "app" and member.app_at is not None:
                at = max(at, member.app_at + rng.randint(30, 300))
        else:
            at = member.enrolled_at + int(rng.expovariate(1 / (45 * DAY))) + 3600
            channel = "app" if member.app_at is not None and member.app_at < at else "web"
        if at >= self.end_ts:
            return
        source = {"store": "store_tablet", "web": "website_footer", "app": "app_settings"}[channel]
        store = member.home_store.id if channel == "store" else None
        self.emit(
            at,
            "newsletter_signup",
            self.ref(member, channel),
            channel,
            {"source": source, "list": "earth-care-news"},
            store,
        )

    def profile_changes(self, member: SyntheticMember) -> None:
        """A few members change their mind about consents, or move house."""
        rng = self.rng
        span = self.end_ts - member.enrolled_at
        if span > 2 * DAY and self.chance(0.05):
            at = member.enrolled_at + DAY + rng.randrange(span - DAY)
            if member.consents.get("email"):
                change = {"channel": "email", "granted": False, "source": "unsubscribe_link"}
            elif member.phone and not member.consents.get("sms"):
                change = {"channel": "sms", "granted": True, "source": "preference_centre"}
            else:
                change = {"channel": "postal", "granted": False, "source": "preference_centre"}
            self.emit(at, "consent_changed", self.ref(member, "web"), "web", change)
        if span > 2 * DAY and self.chance(0.03):
            at = member.enrolled_at + DAY + rng.randrange(span - DAY)
            moved_to = rng.choice(rng.choice(STORES).postal_codes)
            self.emit(
                at,
                "profile_updated",
                self.ref(member, "web"),
                "web",
                {"profile": {"postal_code": moved_to}},
            )

    # -- referrals -----------------------------------------------------------------------------

    def assign_referrals(self, members: list[SyntheticMember]) -> None:
        """7 % of those who join after the first three weeks were referred by an earlier member;
        a few keen referrers bring many friends (more than the rule rewards in a year)."""
        rng = self.rng
        self.referrer_labels: dict[int, str] = {}
        by_time = sorted(members, key=lambda m: (m.enrolled_at, m.index))
        times = [m.enrolled_at for m in by_time]
        cum: list[float] = []
        total = 0.0
        for m in by_time:
            total += REFERRER_WEIGHT[m.archetype.name] * min(20.0, rng.paretovariate(1.3))
            cum.append(total)
        for member in members:
            if member.enrolled_at < self.start_ts + 21 * DAY or not self.chance(0.07):
                continue
            eligible = bisect_right(times, member.enrolled_at - DAY)
            if eligible == 0:
                continue
            chosen = by_time[min(eligible - 1, bisect_right(cum, rng.random() * cum[eligible - 1]))]
            member.referred_by = chosen.index
            self.referrer_labels[member.index] = self.label(chosen)

    def complete_referrals(self, members: list[SyntheticMember]) -> None:
        """The referrer hears of it when the friend makes a first purchase."""
        for member in members:
            if member.referred_by is None or member.first_order is None:
                continue
            ts, order_id = member.first_order
            at = ts + self.rng.randint(300, 7200)
            if at >= self.end_ts:
                continue
            referrer = members[member.referred_by]
            properties = {"referee": self.label(member), "order_id": order_id}
            self.emit(at, "referral_completed", self.ref(referrer, "web"), "web", properties)
            self.referrals += 1
