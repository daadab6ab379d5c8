"""The rebuild's SQL: purchase aggregates per member, on SQLite and on PostgreSQL.

Every query reads one chunk of a programme's members (``member_id`` between ``:lo`` and
``:hi``) and groups in the database: per member (counts, spend, promotions, first and last
purchase), per member and UTC day (the day buckets), per member and affinity value, per member
and channel or store, and the intervals between consecutive purchases (``LAG``; the median as
the mean of the middle one or two by ``ROW_NUMBER``). The lines of a purchase are expanded
from its JSON (``jsonb_array_elements`` / ``json_each``). Money on SQLite is REAL: each
purchase is rounded to the cent in SQL and the sums are rounded to the cent in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fidelia.traits.schemas import TraitsSection


@dataclass(frozen=True, slots=True)
class Dialect:
    events: str  # is the purchase paid with a voucher (1/0), per line of ``l``
    lines: str  # the line columns and the FROM of ``l``
    day: str
    epoch: str
    types: tuple[str, str, str]  # member ids, instants, money in the temporary tables


PG = Dialect(
    events="""CASE WHEN EXISTS (
        SELECT 1 FROM jsonb_array_elements_text(
          COALESCE(e.properties->'payment_means', '[]'::jsonb)) AS m
        WHERE lower(m) LIKE '%voucher%') THEN 1 ELSE 0 END""",
    lines="""x->>'sku' AS sku, x->>'category' AS category, x->>'brand' AS brand,
      CAST(x->>'quantity' AS numeric) * CAST(x->>'unit_price' AS numeric)
        - COALESCE(CAST(x->>'discount' AS numeric), 0) AS amount,
      CASE WHEN COALESCE(CAST(x->>'discount' AS numeric), 0) > 0 THEN 1 ELSE 0 END AS discounted
    FROM events AS e CROSS JOIN LATERAL jsonb_array_elements(e.properties->'lines') AS x""",
    day="to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    epoch="CAST(floor(extract(epoch FROM occurred_at)) AS bigint)",
    types=("uuid", "timestamptz", "numeric"),
)

SQLITE = Dialect(
    events="""CASE WHEN EXISTS (
        SELECT 1 FROM json_each(e.properties, '$.payment_means') AS m
        WHERE lower(m.value) LIKE '%voucher%') THEN 1 ELSE 0 END""",
    lines="""json_extract(x.value, '$.sku') AS sku,
      json_extract(x.value, '$.category') AS category, json_extract(x.value, '$.brand') AS brand,
      CAST(json_extract(x.value, '$.quantity') AS REAL)
        * CAST(json_extract(x.value, '$.unit_price') AS REAL)
        - COALESCE(CAST(json_extract(x.value, '$.discount') AS REAL), 0) AS amount,
      CASE WHEN COALESCE(CAST(json_extract(x.value, '$.discount') AS REAL), 0) > 0
        THEN 1 ELSE 0 END AS discounted
    FROM events AS e, json_each(e.properties, '$.lines') AS x""",
    day="substr(occurred_at, 1, 10)",
    epoch="CAST(strftime('%s', occurred_at) AS INTEGER)",
    types=("CHAR(32)", "DATETIME", "REAL"),
)


def dialect(name: str) -> Dialect:
    return PG if name == "postgresql" else SQLITE


def stage(d: Dialect) -> list[str]:
    """Statements that fill two temporary tables for one chunk of members: ``traits_l``, the
    purchase lines with their event's columns, and ``traits_b``, one row per purchase with its
    basket and whether it is promotional. Every query below reads them, so the JSON of the
    chunk's purchases is expanded once. (PostgreSQL refuses bound parameters in a
    ``CREATE TABLE AS``: the tables are declared first, then filled.)"""
    uid, at, money = d.types
    return [
        f"""CREATE TEMPORARY TABLE IF NOT EXISTS traits_l (event_id {uid}, member_id {uid},
          occurred_at {at}, channel TEXT, store TEXT, voucher INTEGER, sku TEXT, category TEXT,
          brand TEXT, amount {money}, discounted INTEGER)""",
        f"""CREATE TEMPORARY TABLE IF NOT EXISTS traits_b (id {uid}, member_id {uid},
          occurred_at {at}, channel TEXT, store TEXT, basket {money}, promo INTEGER)""",
        "DELETE FROM traits_l",
        "DELETE FROM traits_b",
        f"""
INSERT INTO traits_l
  SELECT e.id AS event_id, e.member_id, e.occurred_at, e.channel, e.store,
    {d.events} AS voucher,
    {d.lines}
  WHERE e.programme_id = :programme_id AND e.type = 'purchase'
    AND e.member_id >= :lo AND e.member_id <= :hi""",
        """
INSERT INTO traits_b
  SELECT event_id AS id, member_id, occurred_at, channel, store,
    ROUND(SUM(amount), 2) AS basket,
    CASE WHEN MAX(discounted) = 1 OR MAX(voucher) = 1 THEN 1 ELSE 0 END AS promo
  FROM traits_l GROUP BY event_id, member_id, occurred_at, channel, store""",
    ]


UNSTAGE = ("DROP TABLE IF EXISTS traits_b", "DROP TABLE IF EXISTS traits_l")


def members(d: Dialect) -> str:
    return """
SELECT member_id, COUNT(*) AS purchases, SUM(basket) AS spend, SUM(promo) AS promo_purchases,
  SUM(CASE WHEN promo = 1 THEN basket ELSE 0 END) AS promo_spend,
  MIN(occurred_at) AS first_at, MAX(occurred_at) AS last_at
FROM traits_b GROUP BY member_id"""


def days(d: Dialect) -> str:
    return f"""
SELECT member_id, {d.day} AS day, COUNT(*) AS purchases, SUM(basket) AS spend
FROM traits_b WHERE occurred_at >= :since GROUP BY member_id, {d.day}"""


def counts(d: Dialect, column: str) -> str:
    """Purchases per member and channel (or store)."""
    assert column in ("channel", "store")
    return f"""
SELECT member_id, {column} AS value, COUNT(*) AS purchases
FROM traits_b WHERE {column} IS NOT NULL GROUP BY member_id, {column}"""


def times(d: Dialect) -> str:
    return f"""
SELECT member_id, {d.epoch} AS at_s FROM traits_b ORDER BY member_id, at_s"""


def intervals(d: Dialect) -> str:
    return f"""
WITH t AS (
  SELECT member_id, id, {d.epoch} AS t FROM traits_b
), g AS (
  SELECT member_id, t - LAG(t) OVER (PARTITION BY member_id ORDER BY t, id) AS gap,
    ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY t DESC, id DESC) AS from_last
  FROM t
), r AS (
  SELECT member_id, gap, from_last,
    ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY gap) AS rn,
    COUNT(*) OVER (PARTITION BY member_id) AS n
  FROM g WHERE gap IS NOT NULL
)
SELECT member_id, SUM(gap) AS gaps, MAX(n) AS n,
  AVG(CASE WHEN rn = (n + 1) / 2 OR rn = (n + 2) / 2 THEN 1.0 * gap END) AS median,
  MAX(CASE WHEN from_last = 1 THEN gap END) AS last_gap
FROM r GROUP BY member_id"""


def affinities(d: Dialect, section: TraitsSection) -> tuple[str, dict[str, Any]]:
    """Purchases and spend per member and affinity value (category, brand, declared
    attributes: exact SKUs first, then the longest prefix, as :class:`compute.Matcher`)."""
    params: dict[str, Any] = {}
    parts = [
        f"SELECT event_id, member_id, '{dim}' AS dim, {dim} AS value, amount FROM traits_l"
        for dim in section.affinities.by
    ]
    for i, attr in enumerate(section.affinities.attributes):
        exact: dict[str, str] = {}
        prefixes: list[tuple[str, str]] = []
        for value, skus in attr.values.items():
            for sku in skus:
                if sku.endswith("*"):
                    prefixes.append((sku[:-1], value))
                else:
                    exact.setdefault(sku, value)
        whens = []
        for j, (sku, value) in enumerate(exact.items()):
            params[f"a{i}e{j}"], params[f"a{i}e{j}v"] = sku, value
            whens.append(f"WHEN sku = :a{i}e{j} THEN :a{i}e{j}v")
        for j, (prefix, value) in enumerate(sorted(prefixes, key=lambda p: -len(p[0]))):
            params[f"a{i}p{j}"], params[f"a{i}p{j}v"] = prefix, value
            whens.append(f"WHEN substr(sku, 1, {len(prefix)}) = :a{i}p{j} THEN :a{i}p{j}v")
        params[f"a{i}"] = attr.id
        parts.append(
            f"SELECT event_id, member_id, :a{i} AS dim, CASE {' '.join(whens)} END AS value, "
            "amount FROM traits_l"
        )
    if not parts:
        parts.append("SELECT event_id, member_id, '' AS dim, NULL AS value, amount FROM traits_l")
    union = "\n  UNION ALL ".join(parts)
    query = f"""
WITH a AS (
  {union}
), ae AS (
  SELECT member_id, dim, value, ROUND(SUM(amount), 2) AS spend
  FROM a WHERE value IS NOT NULL GROUP BY event_id, member_id, dim, value
)
SELECT member_id, dim, value, COUNT(*) AS purchases, SUM(spend) AS spend
FROM ae GROUP BY member_id, dim, value"""
    return query, params


def rfm(dialect_name: str) -> str:
    """Scores 1-5 by rank within the programme's purchasers: ``1 + 5 * (rank - 1) / n``
    (ties share the lowest rank, so equal figures get equal scores)."""
    scores = """
  SELECT member_id,
    1 + (5 * (RANK() OVER (ORDER BY last_purchase_at) - 1)) / COUNT(*) OVER () AS r,
    1 + (5 * (RANK() OVER (ORDER BY purchases_count) - 1)) / COUNT(*) OVER () AS f,
    1 + (5 * (RANK() OVER (ORDER BY spend_total) - 1)) / COUNT(*) OVER () AS m
  FROM member_traits WHERE programme_id = :programme_id AND purchases_count > 0"""
    return f"""
UPDATE member_traits SET rfm_r = s.r, rfm_f = s.f, rfm_m = s.m
FROM ({scores}) AS s
WHERE member_traits.member_id = s.member_id"""
