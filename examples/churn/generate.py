"""Generate the synthetic ``customers`` table of the churn example.

The Aurora labs use the "Discovering Knowledge in Data" churn data set (3,333 telecom
customers, 483 of them churned), which cannot be downloaded here. This module draws a
synthetic table with the same 20 columns, similar marginal distributions and a plausible
churn signal, from a fixed seed, so the shipped ``customers.csv`` / ``customers.sql`` are
reproducible byte for byte::

    python -m examples.churn.generate            # rewrites examples/churn/customers.{csv,sql}
    python -m examples.churn.generate --out-dir /tmp/churn --seed 7

The signal follows what the original data is known for: churn rises with heavy daytime use
(expensive bills), with an international plan, and sharply from the fourth customer-service
call; a voice-mail plan lowers it.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import random
from collections.abc import Sequence
from pathlib import Path

from examples.churn.schema import FALSE, FEATURE_COLUMNS, LABEL_COLUMN, TRUE

HERE = Path(__file__).resolve().parent
DEFAULT_SEED = 20200623  # any fixed value would do; changing it changes the shipped files
DEFAULT_ROWS = 3333  # the size of the original data set

#: The 50 states plus DC, as in the original data set.
# fmt: off
STATES = (
    "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "IA",
    "ID", "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS",
    "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA",
    "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VT", "WA", "WI", "WV", "WY",
)
# fmt: on

#: Area codes and their shares in the original (415 about half, 408 and 510 a quarter each).
AREA_CODES = (408, 415, 510)
AREA_WEIGHTS = (0.25, 0.50, 0.25)

#: How many customer-service calls customers made in the original (0 to 9), as weights.
SERVICE_CALL_WEIGHTS = (697, 1181, 759, 429, 166, 66, 22, 9, 2, 2)

#: Price per minute by period: the original's charges are minutes times these rates.
RATES = {"day": 0.17, "eve": 0.085, "night": 0.045, "int": 0.27}

#: Calibrates the overall churn rate to about 14% (the original has 483/3333 = 14.5%).
CHURN_INTERCEPT = -3.2

Row = list[str | int | float]


def _clipped_gauss(rng: random.Random, mean: float, sd: float, low: float, high: float) -> float:
    """A normal draw clipped to the range seen in the original data."""
    return min(high, max(low, rng.gauss(mean, sd)))


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: fine for small means, stdlib only)."""
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count


def _phone(rng: random.Random, taken: set[str]) -> str:
    """A new 'ddd-dddd' number; prefixes in the original's 327-422 range; never reused."""
    while True:
        phone = f"{rng.randint(327, 422)}-{rng.randint(0, 9999):04d}"
        if phone not in taken:
            taken.add(phone)
            return phone


def _usage(
    rng: random.Random, period: str, mins: tuple[float, float, float], calls_sd: float
) -> Row:
    """Minutes, calls and charge for one period; charge = minutes x rate, like the original."""
    mean, sd, high = mins
    minutes = round(_clipped_gauss(rng, mean, sd, 0.0, high), 1)
    calls = round(_clipped_gauss(rng, 100, calls_sd, 0, 170))
    return [minutes, calls, round(minutes * RATES[period], 2)]


def _international(rng: random.Random) -> Row:
    """International minutes, calls (few, Poisson) and charge."""
    minutes = round(_clipped_gauss(rng, 10.2, 2.8, 0.0, 20.0), 1)
    calls = min(20, _poisson(rng, 4.5))
    return [minutes, calls, round(minutes * RATES["int"], 2)]


def _customer(rng: random.Random, phones: set[str]) -> Row:
    """The 20 feature columns of one customer, in ``will_churn`` argument order."""
    state = rng.choice(STATES)
    acc_length = round(_clipped_gauss(rng, 101, 40, 1, 243))
    area_code = rng.choices(AREA_CODES, AREA_WEIGHTS)[0]
    phone = _phone(rng, phones)
    int_plan = "yes" if rng.random() < 0.097 else "no"
    vmail_plan = "yes" if rng.random() < 0.277 else "no"
    vmail_msg = round(_clipped_gauss(rng, 29.3, 7.6, 4, 51)) if vmail_plan == "yes" else 0
    day = _usage(rng, "day", (179.8, 54.5, 350.8), 20.0)
    eve = _usage(rng, "eve", (201.0, 50.7, 363.7), 19.9)
    night = _usage(rng, "night", (200.9, 50.6, 395.0), 19.6)
    intl = _international(rng)
    service_calls = rng.choices(range(10), SERVICE_CALL_WEIGHTS)[0]
    head: Row = [state, acc_length, area_code, phone, int_plan, vmail_plan, vmail_msg]
    return [*head, *day, *eve, *night, *intl, service_calls]


def churn_logit(row: Sequence[str | int | float]) -> float:
    """The true (hidden) log-odds of churning for one generated customer.

    Nonlinear on purpose (a step at four service calls, a steeper slope above 240 day
    minutes), as in the original, so a linear model fits it well but not perfectly.
    """
    int_plan, vmail_plan = row[4] == "yes", row[5] == "yes"
    day_mins, eve_mins, int_mins = float(row[7]), float(row[10]), float(row[16])
    int_calls, service_calls = int(row[17]), int(row[19])
    logit = CHURN_INTERCEPT + 0.010 * (day_mins - 180) + 0.045 * max(0.0, day_mins - 240)
    logit += 0.006 * (eve_mins - 200) + 0.10 * (int_mins - 10) - 0.10 * (int_calls - 4.5)
    logit += 2.2 * int_plan - 1.0 * vmail_plan
    logit += 0.25 * service_calls + (2.3 if service_calls >= 4 else 0.0)
    return logit


def generate(n_rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> list[Row]:
    """``n_rows`` customers (20 features plus the 'True.'/'False.' label), reproducible
    from ``seed``: one ``random.Random`` drawn in a fixed order, no global state."""
    rng = random.Random(seed)
    phones: set[str] = set()
    rows: list[Row] = []
    for _ in range(n_rows):
        row = _customer(rng, phones)
        churned = rng.random() < 1.0 / (1.0 + math.exp(-churn_logit(row)))
        rows.append([*row, TRUE if churned else FALSE])
    return rows


def header() -> list[str]:
    """The CSV header: the 20 argument names, then ``churn``."""
    return [name for name, _ in FEATURE_COLUMNS] + [LABEL_COLUMN[0]]


def to_csv(rows: Sequence[Row]) -> str:
    """The data set as CSV text (header first, ``\\n`` line ends, floats as ``repr``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header())
    writer.writerows(rows)
    return buffer.getvalue()


def _sql_literal(value: str | int | float) -> str:
    """A MySQL literal: numbers as written, strings quoted with ' and \\ escaped."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return repr(value)


def to_sql(rows: Sequence[Row], chunk: int = 500) -> str:
    """A script that (re)creates ``customers`` and loads ``rows`` with multi-row INSERTs
    of ``chunk`` rows (small enough for the default max_allowed_packet)."""
    columns = [*FEATURE_COLUMNS, LABEL_COLUMN]
    definitions = ",\n".join(f"    {name} {sql_type}" for name, sql_type in columns)
    parts = [
        "-- The churn example's synthetic customers (examples/churn/generate.py; do not edit).",
        "-- Same 20 columns as the Aurora labs' churn table, plus its churn label.",
        "DROP TABLE IF EXISTS customers;",
        f"CREATE TABLE customers (\n{definitions}\n);",
    ]
    names = ", ".join(name for name, _ in columns)
    for start in range(0, len(rows), chunk):
        values = ",\n".join(
            "(" + ",".join(_sql_literal(v) for v in row) + ")"
            for row in rows[start : start + chunk]
        )
        parts.append(f"INSERT INTO customers ({names}) VALUES\n{values};")
    return "\n".join(parts) + "\n"


def write(out_dir: Path, rows: Sequence[Row]) -> tuple[Path, Path]:
    """Write ``customers.csv`` and ``customers.sql`` into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, sql_path = out_dir / "customers.csv", out_dir / "customers.sql"
    csv_path.write_text(to_csv(rows), encoding="utf-8", newline="")
    sql_path.write_text(to_sql(rows), encoding="utf-8", newline="")
    return csv_path, sql_path


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: generate and write the data set, then say what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    rows = generate(args.rows, args.seed)
    churned = sum(row[-1] == TRUE for row in rows)
    for path in write(args.out_dir, rows):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    print(f"{len(rows)} customers, {churned} churned ({churned / len(rows):.1%})")


if __name__ == "__main__":
    main()
