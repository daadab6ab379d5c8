"""When customers shop: seasons, sales periods, weekly and daily rhythms, store opening hours.

Days are counted from the first day of the generated period, in the programme's time zone
(Europe/Paris). Each channel has a weight per day (season x day of week x open or closed) and a
weight per half-hour of the day; sampling a day is a bisection in the cumulative weights, so it
stays cheap for any number of events.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

CHANNELS = ("store", "web", "app")

# Retail month profile (France): quiet February and August, strong November and December.
MONTH_WEIGHT = {
    1: 0.85, 2: 0.8, 3: 0.9, 4: 0.95, 5: 1.0, 6: 0.95,
    7: 0.9, 8: 0.75, 9: 0.9, 10: 0.95, 11: 1.0, 12: 1.1,
}  # fmt: skip
# Monday .. Sunday. Stores peak on Saturday and close on Sunday (except before Christmas).
DOW_WEIGHT = {
    "store": (0.55, 0.8, 1.0, 0.9, 1.15, 2.0, 0.0),
    "web": (1.1, 1.0, 1.0, 1.0, 0.9, 0.85, 1.2),
    "app": (1.0, 0.95, 1.0, 1.0, 0.95, 1.05, 1.15),
}
# Weight of each half-hour of the day (48 slots from 00:00). Stores open 10:00-19:30.
_STORE_SLOTS = (
    0.5, 0.7, 0.9, 1.1, 1.4, 1.5, 1.3, 1.0, 0.9, 0.95,
    1.0, 1.1, 1.2, 1.3, 1.5, 1.7, 1.8, 1.6, 1.1,
)  # fmt: skip
_WEB_HOURS = (
    0.3, 0.15, 0.08, 0.05, 0.05, 0.1, 0.3, 0.6, 0.9, 1.0, 1.0, 1.1,
    1.4, 1.4, 1.1, 1.0, 1.0, 1.1, 1.3, 1.6, 1.9, 2.0, 1.5, 0.8,
)  # fmt: skip
_APP_HOURS = (
    0.3, 0.1, 0.05, 0.05, 0.05, 0.1, 0.4, 1.0, 1.3, 0.9, 0.8, 0.9,
    1.4, 1.5, 1.0, 0.9, 1.0, 1.3, 1.6, 1.7, 1.8, 1.9, 1.5, 0.7,
)  # fmt: skip
SLOT_WEIGHTS: dict[str, tuple[float, ...]] = {
    "store": (0.0,) * 20 + _STORE_SLOTS + (0.0,) * 9,
    "web": tuple(w for w in _WEB_HOURS for _ in (0, 1)),
    "app": tuple(w for w in _APP_HOURS for _ in (0, 1)),
}
CLOSED_HOLIDAYS = ((1, 1), (5, 1), (12, 25))  # stores close on these (month, day)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def sales_periods(year: int) -> list[tuple[date, date]]:
    """French sales (soldes): from the second Wednesday of January and the last Wednesday of
    June, four weeks each; Black Friday weekend to Cyber Monday."""
    winter = _nth_weekday(year, 1, 2, 2)
    summer = _last_weekday(year, 6, 2)
    black_friday = _nth_weekday(year, 11, 3, 4) + timedelta(days=1)
    return [
        (winter, winter + timedelta(days=27)),
        (summer, summer + timedelta(days=27)),
        (black_friday, black_friday + timedelta(days=3)),
    ]


def season(day: date) -> float:
    """How busy a day is across the year, before the day of the week."""
    weight = MONTH_WEIGHT[day.month]
    if day.month == 12 and day.day <= 24:
        weight *= 1.3 + 1.1 * day.day / 24  # the run-up to Christmas
    elif day.month == 12 and day.day > 25:
        weight *= 0.9
    for first, last in sales_periods(day.year):
        if first <= day <= last:
            opening = (day - first).days
            if last - first == timedelta(days=3):  # Black Friday weekend
                weight *= (3.0, 2.0, 1.5, 2.0)[opening]
            else:
                weight *= 2.0 if opening < 7 else 1.4
    return weight


def in_sales(day: date) -> bool:
    return any(first <= day <= last for first, last in sales_periods(day.year))


class Calendar:
    """The generated period, day by day, with cumulative weights per channel."""

    def __init__(self, start: date, days: int, time_zone: str) -> None:
        self.start = start
        self.days = days
        self.tz = ZoneInfo(time_zone)
        self.dates = [start + timedelta(days=i) for i in range(days)]
        self._season = [season(d) for d in self.dates]
        self._sales = [in_sales(d) for d in self.dates]
        self._cum: dict[tuple[str, bool], list[float]] = {}
        self._slots: dict[str, tuple[list[float], float]] = {}
        for channel, weights in SLOT_WEIGHTS.items():
            cum, total = [], 0.0
            for w in weights:
                total += w
                cum.append(total)
            self._slots[channel] = (cum, total)

    def is_open(self, channel: str, index: int) -> bool:
        day = self.dates[index]
        if channel != "store":
            return True
        if (day.month, day.day) in CLOSED_HOLIDAYS:
            return False
        return day.weekday() != 6 or (day.month == 12 and day.day < 25)

    def in_sales(self, index: int) -> bool:
        return self._sales[index]

    def is_december(self, index: int) -> bool:
        return self.dates[index].month == 12

    def day_weight(self, channel: str, index: int, *, seasonal: bool = False) -> float:
        if not self.is_open(channel, index):
            return 0.0
        day = self.dates[index]
        dow = DOW_WEIGHT[channel][day.weekday()]
        if channel == "store" and day.weekday() == 6:
            dow = 1.0  # the December Sundays
        weight = self._season[index]
        return dow * (weight**2.5 if seasonal else weight)

    def _cumulative(self, channel: str, seasonal: bool) -> list[float]:
        key = (channel, seasonal)
        if key not in self._cum:
            cum, total = [], 0.0
            for i in range(self.days):
                total += self.day_weight(channel, i, seasonal=seasonal)
                cum.append(total)
            self._cum[key] = cum
        return self._cum[key]

    def sample_day(
        self, rng: random.Random, channel: str, first: int, last: int, *, seasonal: bool = False
    ) -> int | None:
        """A day index in ``[first, last]`` drawn by weight; None if the channel is shut."""
        first, last = max(first, 0), min(last, self.days - 1)
        if first > last:
            return None
        cum = self._cumulative(channel, seasonal)
        low = cum[first - 1] if first else 0.0
        high = cum[last]
        if high <= low:
            return None
        index = bisect_right(cum, low + rng.random() * (high - low), first, last + 1)
        return min(index, last)

    def next_open(self, channel: str, index: int) -> int | None:
        while index < self.days and not self.is_open(channel, index):
            index += 1
        return index if index < self.days else None

    def sample_time(self, rng: random.Random, channel: str, index: int) -> int:
        """A moment of that day (epoch seconds) drawn by the channel's hours."""
        cum, total = self._slots[channel]
        slot = min(bisect_right(cum, rng.random() * total), len(cum) - 1)
        return self.at(index, slot * 1800 + rng.randrange(1800))

    def at(self, index: int, seconds: int) -> int:
        """Epoch seconds of a local time of day (seconds since midnight) on that day."""
        day = self.dates[index]
        local = datetime(day.year, day.month, day.day, tzinfo=self.tz) + timedelta(seconds=seconds)
        return int(local.timestamp())

    def day_of(self, timestamp: int) -> int:
        """The day index of an instant (may fall outside the period)."""
        return (datetime.fromtimestamp(timestamp, self.tz).date() - self.start).days

    def end_timestamp(self) -> int:
        """The first instant after the period."""
        last = self.dates[-1] + timedelta(days=1)
        return int(datetime(last.year, last.month, last.day, tzinfo=self.tz).timestamp())

    def iso(self, timestamp: int) -> str:
        return datetime.fromtimestamp(timestamp, self.tz).isoformat()
