"""The columns of the churn example, in ``will_churn`` argument order.

One table shared by the generator (CSV header, CREATE TABLE), the model (which column is
which feature) and the HTTP server (how many fields a CSV line must have), so the three
cannot drift apart. The order and types are the seed talk's (slide 16)::

    CREATE FUNCTION will_churn (state varchar(2048), acc_length bigint(20), ...,
                                cust_service_calls bigint(20))
      RETURNS varchar(2048) CHARSET utf8mb4
      alias aws_sagemaker_invoke_endpoint endpoint name 'tuning-job-123';
"""

from __future__ import annotations

from typing import Final

#: (column, SQL type) for the 20 ``will_churn`` arguments, in argument order. ``bigint(20)``
#: loses its display width: MySQL 8.0.17+ deprecates it and warns on every CREATE.
FEATURE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("state", "VARCHAR(2048)"),
    ("acc_length", "BIGINT"),
    ("area_code", "BIGINT"),
    ("phone", "VARCHAR(2048)"),
    ("int_plan", "VARCHAR(2048)"),
    ("vmail_plan", "VARCHAR(2048)"),
    ("vmail_msg", "BIGINT"),
    ("day_mins", "DOUBLE"),
    ("day_calls", "BIGINT"),
    ("day_charge", "DOUBLE"),
    ("eve_mins", "DOUBLE"),
    ("eve_calls", "BIGINT"),
    ("eve_charge", "DOUBLE"),
    ("night_mins", "DOUBLE"),
    ("night_calls", "BIGINT"),
    ("night_charge", "DOUBLE"),
    ("int_mins", "DOUBLE"),
    ("int_calls", "BIGINT"),
    ("int_charge", "DOUBLE"),
    ("cust_service_calls", "BIGINT"),
)

#: The label column the table carries after the 20 features (the labs' 'True.'/'False.').
LABEL_COLUMN: Final = ("churn", "VARCHAR(8)")

#: Argument names in order, and how many a row must have.
FEATURE_NAMES: Final[tuple[str, ...]] = tuple(name for name, _ in FEATURE_COLUMNS)
N_FEATURES: Final = len(FEATURE_NAMES)

#: The two answers, spelled like the original data set and the seed's model.
TRUE: Final = "True."
FALSE: Final = "False."
