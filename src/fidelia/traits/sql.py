"""The rebuild's SQL: every column of ``member_traits`` built by the database, per chunk.

:func:`chunk_select` is one ``SELECT`` (common table expressions) giving the complete rows of
the members whose id is between ``:lo`` and ``:hi``: the purchase lines are expanded from the
events' JSON once (``l``, ``jsonb_array_elements`` / ``json_each``), grouped per purchase
(``b``: basket rounded to the cent, promotional or not, epoch second, UTC day), then per member:
counts and sums (``s``), the day buckets and the windows (``dj``: ``jsonb_object_agg`` /
``json_group_object``), the affinities (``aj``: per purchase and value, then value, then
dimension), channels and stores with their favourite (``ROW_NUMBER``), the intervals (``iv``:
``LAG``, the median's middle one or two by ``ROW_NUMBER``) and the last redemption. Nothing is
assembled in Python.

Exactness (the incremental path, :mod:`fidelia.traits.compute`, computes the same): ratios
(intervals in days, promotion shares) are rounded half up to 6 decimals *in integers*
(``(2 * num * 10**6 + den) / (2 * den)``) then divided by 10**6 as a float, so both sides agree
to the bit on either database; money on SQLite is REAL, rounded to the cent, and its text is
``printf('%.2f')``; the average basket on SQLite comes from integer cents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from fidelia.traits.compute import window_start
from fidelia.traits.schemas import TraitsSection


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    lines: str  # the line columns and the FROM of ``l``
    voucher: str  # 1 when the event's payment means name a voucher
    day: str
    epoch: str
    obj_agg: str  # (key, value) -> JSON object aggregate
    obj: str  # JSON object constructor
    arr: str  # JSON array constructor
    empty_obj: str
    empty_arr: str
    sub: str  # wrap a JSON value read from a subquery (SQLite loses the JSON subtype)
    collate: str  # code-point order of text (Python's)
    big: str  # integer type of a cast

    def money_text(self, expr: str) -> str:
        """A money value as the decimal text the JSON columns keep ("0.00")."""
        if self.name == "postgresql":
            return f"CAST(ROUND(COALESCE({expr}, 0), 2) AS text)"
        return f"printf('%.2f', COALESCE({expr}, 0))"

    def cents(self, expr: str) -> str:
        if self.name == "postgresql":
            return f"CAST(({expr}) * 100 AS bigint)"
        return f"CAST(ROUND(({expr}) * 100) AS INTEGER)"


PG = Dialect(
    name="postgresql",
    lines="""x->>'sku' AS sku, x->>'category' AS category, x->>'brand' AS brand,
      CAST(x->>'quantity' AS numeric) * CAST(x->>'unit_price' AS numeric)
        - COALESCE(CAST(x->>'discount' AS numeric), 0) AS amount,
      CASE WHEN COALESCE(CAST(x->>'discount' AS numeric), 0) > 0 THEN 1 ELSE 0 END AS discounted
    FROM events AS e CROSS JOIN LATERAL jsonb_array_elements(e.properties->'lines') AS x""",
    voucher="""CASE WHEN lower(COALESCE(e.properties->>'payment_means', ''))
      LIKE '%voucher%' THEN 1 ELSE 0 END""",
    day="to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    epoch="CAST(floor(extract(epoch FROM occurred_at)) AS bigint)",
    obj_agg="jsonb_object_agg",
    obj="jsonb_build_object",
    arr="jsonb_build_array",
    empty_obj="'{}'::jsonb",
    empty_arr="'[]'::jsonb",
    sub="",
    collate=' COLLATE "C"',
    big="bigint",
)

# SQLite: a chunk's events by the member index (a range of member ids); its planner chose the
# (programme, type, occurred_at) index and read every purchase of the programme for each chunk,
# so a rebuild read the event log once per chunk (50 times at 1,000,000 members).
SQLITE = Dialect(
    name="sqlite",
    lines="""json_extract(x.value, '$.sku') AS sku,
      json_extract(x.value, '$.category') AS category, json_extract(x.value, '$.brand') AS brand,
      CAST(json_extract(x.value, '$.quantity') AS REAL)
        * CAST(json_extract(x.value, '$.unit_price') AS REAL)
        - COALESCE(CAST(json_extract(x.value, '$.discount') AS REAL), 0) AS amount,
      CASE WHEN COALESCE(CAST(json_extract(x.value, '$.discount') AS REAL), 0) > 0
        THEN 1 ELSE 0 END AS discounted
    FROM events AS e INDEXED BY ix_events_member_id_occurred_at_id,
      json_each(e.properties, '$.lines') AS x""",
    voucher="""CASE WHEN lower(COALESCE(json_extract(e.properties, '$.payment_means'), ''))
      LIKE '%voucher%' THEN 1 ELSE 0 END""",
    day="substr(occurred_at, 1, 10)",
    epoch="CAST(strftime('%s', occurred_at) AS INTEGER)",
    obj_agg="json_group_object",
    obj="json_object",
    arr="json_array",
    empty_obj="'{}'",
    empty_arr="'[]'",
    sub="json",
    collate="",
    big="INTEGER",
)


def dialect(name: str) -> Dialect:
    return PG if name == "postgresql" else SQLITE


def _micro(d: Dialect, num: str, den: str) -> str:
    """num / den (non-negative integers) rounded half up to 6 decimals, as a float."""
    return (
        f"CAST((2 * CAST({num} AS {d.big}) * 1000000 + ({den})) / (2 * ({den})) AS "
        f"{'double precision' if d.name == 'postgresql' else 'REAL'}) / 1000000.0"
    )


# The columns of :func:`chunk_select`, in order (every column of the table but the stage).
COLUMNS = (
    "member_id", "programme_id", "first_purchase_at", "last_purchase_at", "purchases_count",
    "spend_total", "average_basket", "interval_mean_days", "interval_median_days",
    "last_interval_days", "expected_next_purchase_at", "rfm_r", "rfm_f", "rfm_m", "rfm_cell",
    "promo_purchases", "promo_spend", "promo_purchases_share", "promo_spend_share",
    "favourite_store", "favourite_channel", "last_redemption_at", "p_alive", "clv",
    "churn_risk", "windows", "windows_on", "days", "purchase_times", "affinities", "channels",
    "stores", "computed_at",
)  # fmt: skip


def _attribute_values(section: TraitsSection) -> tuple[list[str], dict[str, Any]]:
    """Per declared attribute, a ``CASE`` naming a line's value from its SKU (exact SKUs first,
    then the longest prefix, as :class:`compute.Matcher`); evaluated once per line when the
    lines are staged (columns ``a0``, ``a1``, ...)."""
    params: dict[str, Any] = {}
    cases = []
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
            whens.append(f"WHEN x_sku = :a{i}e{j} THEN :a{i}e{j}v")
        for j, (prefix, value) in enumerate(sorted(prefixes, key=lambda p: -len(p[0]))):
            params[f"a{i}p{j}"], params[f"a{i}p{j}v"] = prefix, value
            whens.append(f"WHEN substr(x_sku, 1, {len(prefix)}) = :a{i}p{j} THEN :a{i}p{j}v")
        cases.append(f"CASE {' '.join(whens)} END" if whens else "NULL")
    return cases, params


def _affinity_lines(section: TraitsSection) -> tuple[str, list[str], dict[str, Any]]:
    """The ``(event_id, member_id, k, dim, value, amount)`` of every line and affinity
    dimension, from one scan of the staged lines: each line is paired with a constant row per
    dimension (category, brand, declared attributes; ``k`` its number) and the ``CASE`` picks
    that dimension's column. Also each dimension's name as a JSON string (by ``k``)."""
    params: dict[str, Any] = {}
    dims: list[tuple[str, str]] = [(f"'{dim}'", dim) for dim in section.affinities.by]
    names = [f"'{json.dumps(dim)}'" for dim in section.affinities.by]
    for i, attr in enumerate(section.affinities.attributes):
        params[f"a{i}"], params[f"a{i}j"] = attr.id, json.dumps(attr.id)
        dims.append((f"CAST(:a{i} AS TEXT)", f"a{i}"))
        names.append(f"CAST(:a{i}j AS TEXT)")
    if not dims:
        return (
            "SELECT event_id, member_id, 0 AS k, '' AS dim, NULL AS value, amount FROM l",
            ["''"],
            params,
        )
    keys = " UNION ALL ".join(f"SELECT {k} AS k, {name} AS dim" for k, (name, _) in enumerate(dims))
    pick = " ".join(f"WHEN {k} THEN {col}" for k, (_, col) in enumerate(dims))
    return (
        f"SELECT event_id, member_id, v.k, v.dim, CASE v.k {pick} END AS value, amount "
        f"FROM l CROSS JOIN ({keys}) AS v",
        names,
        params,
    )


def chunk_select(d: Dialect, section: TraitsSection, today: date) -> tuple[str, dict[str, Any]]:
    """The complete rows (:data:`COLUMNS`) of the programme's members with ids in
    ``[:lo, :hi]``, from the tables :func:`stage` filled. Parameters besides the returned
    ones: ``programme_id``, ``lo``, ``hi``, ``today`` (a date), ``now`` (an instant)."""
    params: dict[str, Any] = {"since": window_start(today, section.longest).isoformat()}
    sums, windows = [], []
    for i, n in enumerate(section.windows):
        params[f"w{i}"] = window_start(today, n).isoformat()
        sums.append(
            f"SUM(CASE WHEN day >= :w{i} THEN n ELSE 0 END) AS w{i}_n, "
            f"SUM(CASE WHEN day >= :w{i} THEN spend ELSE 0 END) AS w{i}_s"
        )
        windows.append(
            f"'{n}', {d.obj}('purchases', CAST(COALESCE(dj.w{i}_n, 0) AS {d.big}), "
            f"'spend', {d.money_text(f'dj.w{i}_s')})"
        )
    union, names, extra = _affinity_lines(section)
    params.update(extra)
    pg = d.name == "postgresql"
    json_ctes = (_pg_json if pg else _sqlite_json)(d, union, names, sums)
    times = (
        "(SELECT member_id, jsonb_agg(t ORDER BY t) AS times FROM b GROUP BY member_id)"
        if pg
        else "(SELECT member_id, json_group_array(t) AS times FROM "
        "(SELECT member_id, t FROM b ORDER BY member_id, t) GROUP BY member_id)"
    )
    if pg:
        average = "ROUND(s.spend / s.n, 2)"
        expected = (
            f"s.last_at + CAST({_half('iv.mid_s', 'iv.mid_k')} AS bigint) * interval '1 second'"
        )
    else:
        average = f"CAST((2 * {d.cents('s.spend')} + s.n) / (2 * s.n) AS REAL) / 100.0"
        expected = (
            f"strftime('%Y-%m-%d %H:%M:%S', s.last_at, "
            f"'+' || {_half('iv.mid_s', 'iv.mid_k')} || ' seconds') || substr(s.last_at, 20)"
        )
    mean = _micro(d, "s.t_last - s.t_first", "(s.n - 1) * 86400")
    median = _micro(d, "iv.mid_s", "iv.mid_k * 86400")
    last = _micro(d, "iv.last_gap", "86400")
    promo_share = _micro(d, "s.promo_n", "s.n")
    spend_share = _micro(d, d.cents("s.promo_spend"), d.cents("s.spend"))

    def nul(typ: str) -> str:
        return f"CAST(NULL AS {typ})" if pg else "NULL"

    query = f"""
WITH l AS (SELECT * FROM traits_l), b AS (SELECT * FROM traits_b), s AS (
  SELECT member_id, COUNT(*) AS n, SUM(basket) AS spend, SUM(promo) AS promo_n,
    SUM(CASE WHEN promo = 1 THEN basket ELSE 0 END) AS promo_spend,
    MIN(occurred_at) AS first_at, MAX(occurred_at) AS last_at,
    MIN(t) AS t_first, MAX(t) AS t_last
  FROM b GROUP BY member_id
), d AS (
  SELECT member_id, day, COUNT(*) AS n, SUM(basket) AS spend
  FROM b WHERE day >= :since GROUP BY member_id, day
), {json_ctes}), cn AS (
  SELECT member_id, 'channel' AS kind, channel AS value, COUNT(*) AS n
  FROM b WHERE channel IS NOT NULL GROUP BY member_id, channel
  UNION ALL
  SELECT member_id, 'store' AS kind, store AS value, COUNT(*) AS n
  FROM b WHERE store IS NOT NULL GROUP BY member_id, store
), cr AS (
  SELECT member_id, kind, value, n,
    ROW_NUMBER() OVER (PARTITION BY member_id, kind ORDER BY n DESC, value{d.collate}) AS rk
  FROM cn
), cj AS (
  SELECT member_id,
    {d.obj_agg}(value, n) FILTER (WHERE kind = 'channel') AS channels,
    {d.obj_agg}(value, n) FILTER (WHERE kind = 'store') AS stores,
    MAX(CASE WHEN kind = 'channel' AND rk = 1 THEN value END) AS favourite_channel,
    MAX(CASE WHEN kind = 'store' AND rk = 1 THEN value END) AS favourite_store
  FROM cr GROUP BY member_id
), g AS (
  SELECT member_id, t - LAG(t) OVER (PARTITION BY member_id ORDER BY t, id) AS gap,
    ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY t DESC, id DESC) AS from_last
  FROM b
), r AS (
  SELECT member_id, gap, from_last,
    ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY gap) AS rn,
    COUNT(*) OVER (PARTITION BY member_id) AS k
  FROM g WHERE gap IS NOT NULL
), iv AS (
  SELECT member_id,
    CAST(SUM(CASE WHEN rn = (k + 1) / 2 OR rn = (k + 2) / 2 THEN gap ELSE 0 END) AS {d.big})
      AS mid_s,
    CAST(SUM(CASE WHEN rn = (k + 1) / 2 OR rn = (k + 2) / 2 THEN 1 ELSE 0 END) AS {d.big})
      AS mid_k,
    CAST(MAX(CASE WHEN from_last = 1 THEN gap END) AS {d.big}) AS last_gap
  FROM r GROUP BY member_id
), rd AS (
  SELECT member_id, MAX(requested_at) AS last_redemption_at FROM redemptions
  WHERE member_id >= :lo AND member_id <= :hi GROUP BY member_id
)
SELECT m.id AS member_id, m.programme_id,
  s.first_at AS first_purchase_at, s.last_at AS last_purchase_at,
  COALESCE(s.n, 0) AS purchases_count,
  COALESCE(s.spend, 0) AS spend_total,
  CASE WHEN s.n > 0 THEN {average} END AS average_basket,
  CASE WHEN s.n > 1 THEN {mean} END AS interval_mean_days,
  CASE WHEN s.n > 1 THEN {median} END AS interval_median_days,
  CASE WHEN s.n > 1 THEN {last} END AS last_interval_days,
  CASE WHEN s.n > 1 THEN {expected} END AS expected_next_purchase_at,
  {nul("smallint")} AS rfm_r, {nul("smallint")} AS rfm_f, {nul("smallint")} AS rfm_m,
  {nul("varchar")} AS rfm_cell,
  COALESCE(s.promo_n, 0) AS promo_purchases,
  COALESCE(s.promo_spend, 0) AS promo_spend,
  CASE WHEN s.n > 0 THEN {promo_share} END AS promo_purchases_share,
  CASE WHEN {d.cents("s.spend")} <> 0 THEN {spend_share} END AS promo_spend_share,
  cj.favourite_store, cj.favourite_channel,
  rd.last_redemption_at,
  {nul("float8")} AS p_alive, {nul("numeric")} AS clv, {nul("varchar")} AS churn_risk,
  {d.obj}({", ".join(windows)}) AS windows,
  :today AS windows_on,
  COALESCE(dj.days, {d.empty_obj}) AS days,
  COALESCE(tj.times, {d.empty_arr}) AS purchase_times,
  COALESCE(aj.affinities, {d.empty_obj}) AS affinities,
  COALESCE(cj.channels, {d.empty_obj}) AS channels,
  COALESCE(cj.stores, {d.empty_obj}) AS stores,
  :now AS computed_at
FROM members AS m
  LEFT JOIN s ON s.member_id = m.id
  LEFT JOIN dj ON dj.member_id = m.id
  LEFT JOIN aj ON aj.member_id = m.id
  LEFT JOIN cj ON cj.member_id = m.id
  LEFT JOIN {times} AS tj ON tj.member_id = m.id
  LEFT JOIN iv ON iv.member_id = m.id
  LEFT JOIN rd ON rd.member_id = m.id
WHERE m.programme_id = :programme_id AND m.id >= :lo AND m.id <= :hi"""
    return query, params


def _pg_json(_: Dialect, union: str, names: list[str], sums: list[str]) -> str:
    """PostgreSQL: the day buckets (``dj``) and the affinities (``aj``), their JSON written as
    text by ``string_agg`` and parsed once per member (a ``jsonb`` built per row and merged by
    ``jsonb_object_agg`` cost most of a chunk); the affinities grouped by the dimension's
    number, its JSON name put in at the end."""
    # spend: sums of amounts rounded to the cent, so its text has the two decimals already
    pair = """':[' || n || ',"' || CAST(spend AS text) || '"]'"""
    dim = " ".join(f"WHEN {k} THEN {name}" for k, name in enumerate(names))
    return f"""dj AS (
  SELECT member_id,
    CAST('{{' || string_agg('"' || day || '"' || {pair}, ',') || '}}' AS jsonb) AS days,
    {", ".join(sums)}
  FROM d GROUP BY member_id
), ae AS (
  SELECT member_id, k, value, ROUND(SUM(amount), 2) AS spend
  FROM ({union}) AS a WHERE value IS NOT NULL GROUP BY member_id, k, value, event_id
), av AS (
  SELECT member_id, k, value, COUNT(*) AS n, SUM(spend) AS spend
  FROM ae GROUP BY member_id, k, value
), ad AS (
  SELECT member_id, k,
    string_agg(CAST(to_json(value) AS text) || {pair}, ',') AS vals
  FROM av GROUP BY member_id, k
), aj AS (
  SELECT member_id,
    CAST('{{' || string_agg((CASE k {dim} END) || ':{{' || vals || '}}', ',') || '}}' AS jsonb)
      AS affinities
  FROM ad GROUP BY member_id"""


def _sqlite_json(d: Dialect, union: str, names: list[str], sums: list[str]) -> str:
    """SQLite: the day buckets and the affinities by ``json_group_object`` (text already)."""
    return f"""dj AS (
  SELECT member_id, {d.obj_agg}(day, {d.arr}(n, {d.money_text("spend")})) AS days,
    {", ".join(sums)}
  FROM d GROUP BY member_id
), ae AS (
  SELECT member_id, dim, value, ROUND(SUM(amount), 2) AS spend
  FROM ({union}) AS a WHERE value IS NOT NULL GROUP BY event_id, member_id, dim, value
), av AS (
  SELECT member_id, dim, value, COUNT(*) AS n, SUM(spend) AS spend
  FROM ae GROUP BY member_id, dim, value
), ad AS (
  SELECT member_id, dim, {d.obj_agg}(value, {d.arr}(n, {d.money_text("spend")})) AS vals
  FROM av GROUP BY member_id, dim
), aj AS (
  SELECT member_id, {d.obj_agg}(dim, {d.sub}(vals)) AS affinities FROM ad GROUP BY member_id"""


@dataclass(frozen=True, slots=True)
class Staging:
    """How one connection stages a chunk: ``setup`` once (the temporary tables), ``chunk`` per
    chunk (``:programme_id``, ``:lo``, ``:hi`` and ``params``), ``analyse`` after the first."""

    setup: list[str]
    chunk: list[str]
    params: dict[str, Any]
    analyse: list[str]  # after the first chunk of a connection only


def stage(d: Dialect, section: TraitsSection) -> Staging:
    """Two temporary tables for one chunk: ``traits_l``, the purchase lines with their event's
    columns and the value of each declared attribute (``a0``, ``a1``... evaluated once per line
    here), and ``traits_b``, one row per purchase (basket, promotional, epoch second, UTC day).
    :func:`chunk_select` reads them; on PostgreSQL they are analysed once per connection, so the
    planner knows their size (it guesses 100 lines per ``jsonb_array_elements`` call and then
    sorts and spills); an ``ANALYZE`` per chunk cost a tenth of the chunk."""
    pg = d.name == "postgresql"
    uid, at, money = ("uuid", "timestamptz", "numeric") if pg else ("CHAR(32)", "DATETIME", "REAL")
    cases, params = _attribute_values(section)
    attrs = "".join(f", a{i} TEXT" for i in range(len(cases)))
    values = "".join(f", {case.replace('x_sku', 'q.sku')}" for case in cases)
    setup = [
        *UNSTAGE,
        f"""CREATE TEMPORARY TABLE traits_l (event_id {uid}, member_id {uid},
          occurred_at {at}, channel TEXT, store TEXT, voucher INTEGER, sku TEXT, category TEXT,
          brand TEXT, amount {money}, discounted INTEGER{attrs})""",
        f"""CREATE TEMPORARY TABLE traits_b (id {uid}, member_id {uid},
          occurred_at {at}, channel TEXT, store TEXT, t BIGINT, day TEXT, basket {money},
          promo INTEGER)""",
    ]
    # PostgreSQL: TRUNCATE, not DELETE: the rows a transaction deleted stay in the table until
    # it ends (no pruning of its own deletions), so every chunk's scans read all the earlier ones
    clear = "TRUNCATE" if pg else "DELETE FROM"
    chunk = [
        f"{clear} traits_l",
        f"{clear} traits_b",
        # MATERIALIZED: a flattened subquery would extract the SKU from the JSON once per WHEN
        f"""
WITH q AS MATERIALIZED (
  SELECT e.id AS event_id, e.member_id, e.occurred_at, e.channel, e.store,
    {d.voucher} AS voucher,
    {d.lines}
  WHERE e.programme_id = :programme_id AND e.type = 'purchase'
    AND e.member_id >= :lo AND e.member_id <= :hi)
INSERT INTO traits_l SELECT q.*{values} FROM q""",
        f"""
INSERT INTO traits_b
  SELECT event_id AS id, member_id, occurred_at, channel, store,
    {d.epoch} AS t, {d.day} AS day,
    ROUND(SUM(amount), 2) AS basket,
    CASE WHEN MAX(discounted) = 1 OR MAX(voucher) = 1 THEN 1 ELSE 0 END AS promo
  FROM traits_l GROUP BY event_id, member_id, occurred_at, channel, store""",
    ]
    # the first chunk's statistics serve the next ones (same shape; they survive TRUNCATE)
    analyse = ["ANALYZE traits_l, traits_b"] if pg else []
    return Staging(setup, chunk, params, analyse)


UNSTAGE = ("DROP TABLE IF EXISTS traits_b", "DROP TABLE IF EXISTS traits_l")


def _half(num: str, den: str) -> str:
    """num / den rounded half up, in integers (non-negative)."""
    return f"((2 * {num} + {den}) / (2 * {den}))"


def ranked(table: str, cells: list[tuple[str, tuple[int, int, int, int, int, int]]]) -> str:
    """The rows of a staging table (:data:`COLUMNS`) with their RFM scores and cell, for the
    rebuild's one write of each row: scores as :func:`rfm` gives them, ranked within the
    purchasers (``PARTITION BY purchases_count > 0``; members without purchases get none)."""

    def score(col: str) -> str:
        part = "PARTITION BY t.purchases_count > 0"
        return (
            f"CASE WHEN t.purchases_count > 0 THEN 1 + (5 * (RANK() OVER ({part} ORDER BY "
            f"t.{col}) - 1)) / COUNT(*) OVER ({part}) END"
        )

    whens = " ".join(
        f"WHEN s.r BETWEEN {r0} AND {r1} AND s.f BETWEEN {f0} AND {f1} "
        f"AND s.m BETWEEN {m0} AND {m1} THEN :cell{i}"
        for i, (_, (r0, r1, f0, f1, m0, m1)) in enumerate(cells)
    )
    picked = {"rfm_r": "s.r", "rfm_f": "s.f", "rfm_m": "s.m",
              "rfm_cell": f"CASE {whens} END" if cells else "NULL"}  # fmt: skip
    out = ", ".join(f"{picked.get(col, 's.' + col)} AS {col}" for col in COLUMNS)
    return f"""
SELECT {out} FROM (
  SELECT t.*, {score("last_purchase_at")} AS r, {score("purchases_count")} AS f,
    {score("spend_total")} AS m
  FROM {table} AS t) AS s"""


def rfm(dialect_name: str, cells: list[tuple[str, tuple[int, int, int, int, int, int]]]) -> str:
    """Scores 1-5 by rank within the programme's purchasers: ``1 + 5 * (rank - 1) / n``
    (ties share the lowest rank, so equal figures get equal scores), and the named cell (the
    first box of the grid holding the scores), in one ``UPDATE``."""
    scores = """
  SELECT member_id,
    1 + (5 * (RANK() OVER (ORDER BY last_purchase_at) - 1)) / COUNT(*) OVER () AS r,
    1 + (5 * (RANK() OVER (ORDER BY purchases_count) - 1)) / COUNT(*) OVER () AS f,
    1 + (5 * (RANK() OVER (ORDER BY spend_total) - 1)) / COUNT(*) OVER () AS m
  FROM member_traits WHERE programme_id = :programme_id AND purchases_count > 0"""
    whens = " ".join(
        f"WHEN s.r BETWEEN {r0} AND {r1} AND s.f BETWEEN {f0} AND {f1} "
        f"AND s.m BETWEEN {m0} AND {m1} THEN :cell{i}"
        for i, (_, (r0, r1, f0, f1, m0, m1)) in enumerate(cells)
    )
    cell = f"CASE {whens} END" if cells else "NULL"
    return f"""
UPDATE member_traits SET rfm_r = s.r, rfm_f = s.f, rfm_m = s.m, rfm_cell = {cell}
FROM ({scores}) AS s
WHERE member_traits.member_id = s.member_id"""
