"""A small logistic-regression churn model: train it, save it as JSON, predict with it.

Plain Python on purpose (no NumPy): the model has 20 weights, and the example must run
wherever mlproxy does. Features: the numeric columns (standardized), one-hot ``int_plan``,
``vmail_plan`` and ``area_code``; ``state`` and ``phone`` are ignored (identifiers, not
signal). Every feature, dummies included, is stored with the mean and scale it was
standardized with, so a missing or NULL argument is simply replaced by the training mean
(a standardized 0) and the prediction stays defined.

Two entry points serve it:

* ``predict(rows)``: rows of 20 strings (or None), as they arrive in the SageMaker CSV
  body; the HTTP server (``examples.churn.server``) calls it.
* ``predict_batch(inputs)``: argument tuples with Python values, for the proxy's
  ``python:examples.churn.model:predict_batch`` backend.

Both answer ``'True.'`` or ``'False.'`` per row, in order, like the seed talk's model.
Retrain (deterministic: Newton's method from zero weights, no randomness)::

    python -m examples.churn.model      # reads customers.csv, writes model.json, reports
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from examples.churn.schema import FALSE, FEATURE_NAMES, N_FEATURES, TRUE

HERE = Path(__file__).resolve().parent
MODEL_PATH = HERE / "model.json"
DATA_PATH = HERE / "customers.csv"

#: Columns used as numbers, standardized.
NUMERIC_COLUMNS = (
    "acc_length", "vmail_msg",
    "day_mins", "day_calls", "day_charge", "eve_mins", "eve_calls", "eve_charge",
    "night_mins", "night_calls", "night_charge", "int_mins", "int_calls", "int_charge",
    "cust_service_calls",
)  # fmt: skip
#: Columns one-hot encoded: (column, the value that makes the dummy 1).
ONE_HOT = (("int_plan", "yes"), ("vmail_plan", "yes"), ("area_code", "408"), ("area_code", "510"))
#: L2 penalty: keeps the collinear minutes/charge pairs from fighting over one weight.
L2 = 1.0
NEWTON_STEPS = 25
COLUMN_INDEX = {name: index for index, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True)
class Feature:
    """One model input: which argument it reads, how, and its standardization and weight.

    ``value`` is None for a numeric feature, else the text that makes the dummy 1.
    """

    name: str
    column: str
    value: str | None
    mean: float
    scale: float
    weight: float = 0.0


@dataclass(frozen=True)
class ChurnModel:
    """Weights plus everything needed to turn 20 raw arguments into a prediction."""

    features: tuple[Feature, ...]
    bias: float
    threshold: float = 0.5

    def probability(self, row: Sequence[object]) -> float:
        """P(churn) for one row of 20 arguments (validated by ``predict_rows``)."""
        logit = self.bias + sum(
            f.weight * z for f, z in zip(self.features, self.encode(row), strict=True)
        )
        return _sigmoid(logit)

    def encode(self, row: Sequence[object]) -> list[float]:
        """The standardized feature vector of one row; missing values become 0 (the mean)."""
        vector = []
        for feature in self.features:
            raw = _raw_value(feature, row[COLUMN_INDEX[feature.column]])
            vector.append(0.0 if raw is None else (raw - feature.mean) / feature.scale)
        return vector

    def predict_rows(self, rows: Sequence[Sequence[object]]) -> list[str]:
        """'True.'/'False.' per row; ValueError naming the row for a wrong argument count or
        a value that is not a number where one is needed."""
        answers = []
        for index, row in enumerate(rows):
            if len(row) != N_FEATURES:
                raise ValueError(f"row {index + 1}: expected {N_FEATURES} values, got {len(row)}")
            try:
                churn = self.probability(row) >= self.threshold
            except ValueError as exc:
                raise ValueError(f"row {index + 1}: {exc}") from exc
            answers.append(TRUE if churn else FALSE)
        return answers

    def to_json(self) -> str:
        """The model as small, stable JSON (the shipped ``model.json``)."""
        document = {
            "format": 1,
            "kind": "logistic-regression",
            "bias": self.bias,
            "threshold": self.threshold,
            "features": [asdict(feature) for feature in self.features],
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ChurnModel:
        """Load what ``to_json`` wrote."""
        document: dict[str, Any] = json.loads(text)
        features = tuple(Feature(**item) for item in document["features"])
        return cls(features, float(document["bias"]), float(document["threshold"]))


def _sigmoid(logit: float) -> float:
    """The logistic function, safe for large negative logits."""
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    exp = math.exp(logit)
    return exp / (1.0 + exp)


def _as_text(value: object) -> str | None:
    """An argument as stripped text; None and '' (a NULL) as None. Integral numbers lose
    their '.0' so area_code 408.0 still matches '408'."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", errors="replace")
    if _is_integral(value):
        value = int(value)  # type: ignore[call-overload]
    text = str(value).strip()
    return text or None


def _is_integral(value: object) -> bool:
    """A float or Decimal with no fractional part (and not NaN or infinite)."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()


def _raw_value(feature: Feature, value: object) -> float | None:
    """The unstandardized input of ``feature``: a number, a 0/1 dummy, or None if missing
    (NULL, empty, NaN/infinite). Raises ValueError for text that is not a number."""
    text = _as_text(value)
    if text is None:
        return None
    if feature.value is not None:
        return 1.0 if text.lower() == feature.value else 0.0
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{feature.column}: {text[:40]!r} is not a number") from None
    return number if math.isfinite(number) else None


# --- training ------------------------------------------------------------------------------


def load_data(path: Path = DATA_PATH) -> tuple[list[list[str]], list[int]]:
    """The generated CSV as (20 feature strings per row, 1 if churned else 0)."""
    with path.open(encoding="utf-8", newline="") as stream:
        reader = csv.reader(stream)
        header = next(reader)
        if tuple(header[:N_FEATURES]) != FEATURE_NAMES:
            raise ValueError(f"{path}: unexpected header {header}")
        records = list(reader)
    return [r[:N_FEATURES] for r in records], [int(r[N_FEATURES] == TRUE) for r in records]


def _feature_specs() -> list[tuple[str, str, str | None]]:
    """(name, column, dummy value) for every feature, in weight order."""
    specs: list[tuple[str, str, str | None]] = [(c, c, None) for c in NUMERIC_COLUMNS]
    return specs + [(f"{column}={value}", column, value) for column, value in ONE_HOT]


def _standardized(rows: Sequence[Sequence[object]]) -> list[Feature]:
    """Features with the mean and standard deviation of ``rows`` (scale 1 if constant)."""
    features = []
    for name, column, value in _feature_specs():
        unscaled = Feature(name, column, value, mean=0.0, scale=1.0)
        raws = [_raw_value(unscaled, row[COLUMN_INDEX[column]]) for row in rows]
        present = [raw for raw in raws if raw is not None]
        mean = math.fsum(present) / len(present)
        std = math.sqrt(math.fsum((raw - mean) ** 2 for raw in present) / len(present))
        features.append(Feature(name, column, value, mean, std or 1.0))
    return features


def _cholesky_solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Solve ``matrix @ x = vector`` for a symmetric positive definite matrix (the
    regularized Hessian always is)."""
    size = len(vector)
    lower = [[0.0] * size for _ in range(size)]
    for i in range(size):
        for j in range(i + 1):
            total = matrix[i][j] - sum(lower[i][k] * lower[j][k] for k in range(j))
            lower[i][j] = math.sqrt(total) if i == j else total / lower[j][j]
    forward = [0.0] * size
    for i in range(size):
        forward[i] = (vector[i] - sum(lower[i][k] * forward[k] for k in range(i))) / lower[i][i]
    solution = [0.0] * size
    for i in reversed(range(size)):
        rest = sum(lower[k][i] * solution[k] for k in range(i + 1, size))
        solution[i] = (forward[i] - rest) / lower[i][i]
    return solution


def _newton_step(
    design: list[list[float]], labels: Sequence[int], weights: list[float]
) -> list[float]:
    """One Newton-Raphson update of L2-regularized logistic regression (bias unpenalized);
    returns the step to subtract. ``design`` rows start with the constant 1."""
    size = len(weights)
    gradient = [L2 * w if j else 0.0 for j, w in enumerate(weights)]
    hessian = [[L2 if i == j and i else 0.0 for j in range(size)] for i in range(size)]
    for row, label in zip(design, labels, strict=True):
        p = _sigmoid(math.fsum(w * x for w, x in zip(weights, row, strict=True)))
        error, curvature = p - label, p * (1.0 - p)
        for i in range(size):
            gradient[i] += error * row[i]
            scaled, line = curvature * row[i], hessian[i]
            for j in range(i + 1):
                line[j] += scaled * row[j]
    for i in range(size):
        for j in range(i):
            hessian[j][i] = hessian[i][j]
    return _cholesky_solve(hessian, gradient)


def train(rows: Sequence[Sequence[object]], labels: Sequence[int]) -> ChurnModel:
    """Fit the model by Newton's method from zero weights: deterministic, converges in a
    handful of steps (the loss is convex)."""
    features = _standardized(rows)
    blank = ChurnModel(tuple(features), bias=0.0)
    design = [[1.0, *blank.encode(row)] for row in rows]
    weights = [0.0] * (len(features) + 1)
    for _ in range(NEWTON_STEPS):
        step = _newton_step(design, labels, weights)
        weights = [w - s for w, s in zip(weights, step, strict=True)]
        if max(abs(s) for s in step) < 1e-9:
            break
    fitted = (
        Feature(**{**asdict(f), "weight": w}) for f, w in zip(features, weights[1:], strict=True)
    )
    return ChurnModel(tuple(fitted), bias=weights[0])


def evaluate(
    model: ChurnModel, rows: Sequence[Sequence[object]], labels: Sequence[int]
) -> dict[str, Any]:
    """Accuracy, predicted counts and the confusion matrix of ``model`` on ``rows``."""
    predicted = [answer == TRUE for answer in model.predict_rows(rows)]
    pairs = list(zip(predicted, (bool(label) for label in labels), strict=True))
    return {
        "rows": len(pairs),
        "accuracy": sum(p == a for p, a in pairs) / len(pairs),
        "predicted": {TRUE: sum(predicted), FALSE: len(predicted) - sum(predicted)},
        "actual": {TRUE: sum(labels), FALSE: len(labels) - sum(labels)},
        "true_positive": sum(p and a for p, a in pairs),
        "false_positive": sum(p and not a for p, a in pairs),
        "false_negative": sum(a and not p for p, a in pairs),
    }


# --- serving -------------------------------------------------------------------------------


@functools.cache
def default_model() -> ChurnModel:
    """The shipped ``model.json``, loaded once on first use (not at import time)."""
    return ChurnModel.from_json(MODEL_PATH.read_text(encoding="utf-8"))


def predict(rows: list[list[str | None]]) -> list[str]:
    """'True.'/'False.' for each row of 20 ``will_churn`` arguments, as CSV text (None or
    '' for NULL). Raises ValueError for a wrong column count or a non-numeric number."""
    return default_model().predict_rows(rows)


def predict_batch(inputs: list[tuple[object, ...]]) -> list[str]:
    """The ``python:examples.churn.model:predict_batch`` backend: argument tuples with
    Python values (str, int, float, Decimal, bytes or None), answers in the same order."""
    return default_model().predict_rows(inputs)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: train on the CSV, write the JSON model, report how well it fits."""
    parser = argparse.ArgumentParser(description="Train the churn example's model.")
    parser.add_argument("--data", type=Path, default=DATA_PATH)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)
    rows, labels = load_data(args.data)
    model = train(rows, labels)
    args.out.write_text(model.to_json(), encoding="utf-8")
    print(f"wrote {args.out}")
    print(json.dumps(evaluate(model, rows, labels), indent=1))


if __name__ == "__main__":
    main()
