"""Range checks on number flags, run when the flags are parsed: a value out of range (NaN
included, which absl's own float bounds let through) is refused in one line that names the
flag and the range, before anything is read or created."""

import math

from absl import flags


def in_range(*holders, low=None, high=None, low_open=False, high_open=False) -> None:
  """Registers a range check on each of these number flags."""
  for holder in holders:
    _check(holder.name, low, high, low_open, high_open)


def _check(name, low, high, low_open, high_open) -> None:
  lo = "" if low is None else f"{'(' if low_open else '['}{low:g}"
  hi = "" if high is None else f"{high:g}{')' if high_open else ']'}"
  if low is not None and high is not None:
    allowed = f"in {lo}, {hi}"
  elif low is not None:
    allowed = f"{'>' if low_open else '>='} {low:g}"
  else:
    allowed = f"{'<' if high_open else '<='} {high:g}"

  def ok(value):
    if value is None:
      return True
    if isinstance(value, float) and math.isnan(value):
      return False
    if low is not None and (value < low or (low_open and value == low)):
      return False
    if high is not None and (value > high or (high_open and value == high)):
      return False
    return True

  flags.register_validator(name, ok, message=f"must be {allowed}")


def percent(*holders, low_open: bool = False) -> None:
  """Percentages: in [0, 100], or (0, 100] with low_open."""
  in_range(*holders, low=0.0, high=100.0, low_open=low_open)


def fraction(*holders, high_open: bool = False) -> None:
  """Fractions: in [0, 1], or [0, 1) with high_open."""
  in_range(*holders, low=0.0, high=1.0, high_open=high_open)


def positive(*holders) -> None:
  """Counts and sizes: at least 1 (an integer flag) or above 0 (a float flag)."""
  for holder in holders:
    if isinstance(holder.default, float):
      in_range(holder, low=0.0, low_open=True)
    else:
      in_range(holder, low=1)


def non_negative(*holders) -> None:
  in_range(*holders, low=0)
