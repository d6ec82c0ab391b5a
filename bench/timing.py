"""Timing for the benchmarks. Absolute times drift on shared machines, so every benchmark
reports a ratio of two things measured in the same run, alternating between them, and the
median over rounds."""

import statistics
import time


def rate(fn, items: int, rounds: int = 1) -> float:
  """items per second of fn(), the best of `rounds` runs."""
  best = float("inf")
  for _ in range(rounds):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return items / best


def alternate(a, b, rounds: int):
  """Median over rounds of time(a) / time(b), running a and b back to back each round."""
  ratios = []
  for _ in range(rounds):
    t0 = time.perf_counter()
    a()
    t1 = time.perf_counter()
    b()
    t2 = time.perf_counter()
    ratios.append((t1 - t0) / (t2 - t1))
  return statistics.median(ratios), ratios
