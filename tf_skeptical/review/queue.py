"""The order a listening test takes the flagged candidates in, as indices into a
flagging.Flags' entries: the teacher's order (highest score first, whatever the class: the
likeliest missing labels first, as the review list has them), round-robin over classes
(each class's best, then each class's second, ...: every class gets answers early), or
closest to the decision boundary (the score nearest 0.5 first: where the teacher is least
sure, active learning's choice)."""

import numpy as np

TEACHER, ROUND_ROBIN, BOUNDARY = "teacher", "round_robin", "boundary"
ORDERS = (TEACHER, ROUND_ROBIN, BOUNDARY)


def candidates(flags, percent: float, order: str = TEACHER) -> np.ndarray:
  """The entries flagged at `percent`, in `order` (ties: the lower rank percentile, then
  the class, then the clip: the same order on every call)."""
  keep = np.flatnonzero(flags.selected(min(percent, flags.max_percent)))
  percentile = flags.percentile[keep]
  score = flags.score[keep].astype(np.float64)
  tiebreak = (flags.clip[keep], flags.cls[keep], percentile)
  if order == TEACHER:
    keys = tiebreak + (-score,)
  elif order == ROUND_ROBIN:
    keys = tiebreak + (-score, flags.rank[keep])
  elif order == BOUNDARY:
    keys = tiebreak + (np.abs(score - 0.5),)
  else:
    raise ValueError(f"order {order!r} is none of {', '.join(ORDERS)}")
  return keep[np.lexsort(keys)]
