"""What the matrix reads share: float columns cast in the database, and where ids sit in a list.

The analytics read with values_list straight into numpy arrays; no model instances are built
for bars, quotes, holdings or strategies.
"""

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from django.db.models import FloatField
from django.db.models.functions import Cast

Positions = Callable[[npt.ArrayLike], npt.NDArray[np.intp]]


def float_column(field: str) -> Cast:
    """The field cast to float in the database: rows hold floats, not Decimals to convert one by one."""
    return Cast(field, FloatField())


def position_lookup(ids: Sequence[int]) -> Positions:
    """A vectorised map from ids (all present in `ids`) to their positions in `ids`."""
    known = np.asarray(ids, dtype=np.int64)
    order = np.argsort(known, kind="stable")

    def positions(found: npt.ArrayLike) -> npt.NDArray[np.intp]:
        return order[np.searchsorted(known[order], np.asarray(found, dtype=np.int64))]

    return positions
