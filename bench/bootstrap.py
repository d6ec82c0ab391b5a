"""The verdict's bootstrap over eval clips against the plain per-class loop, at the size of
a user's own data on AudioSet's class map: 800 eval clips, 527 classes of which 119 occur,
1000 resamples, 3 seeds (a student and its baseline each).

verdict.paired_gain evaluates every resample of every run through matrix products, all
classes at once (metrics.ResampledAUC); the plain loop computes each resample's AUC class
by class (a weighted Mann-Whitney count over the class's sorted scores), as a reader would
write it. The loop is timed on a few resamples and its per-resample time scaled to 1000;
both compute the same AUCs (checked here on those resamples). Target: the whole verdict
under 30 s.
"""

import time

import numpy as np

import harness as common

CLIPS, CLASSES, OCCURRING, SEEDS, RESAMPLES = 800, 527, 119, 3, 1000


def loop_auc(labels, scores, counts):
  """[C] AUCs of one resample, class by class (NaN without a positive and a negative)."""
  out = np.full(labels.shape[1], np.nan)
  for c in range(labels.shape[1]):
    y, s = labels[:, c], scores[:, c]
    pos, neg = counts * y, counts * ~y
    if pos.sum() == 0 or neg.sum() == 0:
      continue
    order = np.argsort(s, kind="stable")
    s_sorted, pos_s, neg_s = s[order], pos[order], neg[order]
    _, start, size = np.unique(s_sorted, return_index=True, return_counts=True)
    below = np.concatenate([[0.0], np.cumsum(neg_s)])
    group_pos = np.add.reduceat(pos_s, start)
    before = below[start]
    tied = below[start + size] - before
    out[c] = (group_pos * (before + 0.5 * tied)).sum() / (pos.sum() * neg.sum())
  return out


def main():
  args = common.parse_args(__doc__)
  from tf_skeptical import metrics, verdict
  resamples = 100 if args.quick else RESAMPLES
  rng = np.random.default_rng(0)
  labels = np.zeros((CLIPS, CLASSES), bool)
  occurring = rng.choice(CLASSES, OCCURRING, replace=False)
  labels[:, occurring] = rng.random((CLIPS, OCCURRING)) < rng.uniform(0.005, 0.1, OCCURRING)
  labels[np.arange(CLIPS), occurring[rng.integers(0, OCCURRING, CLIPS)]] = True
  runs = [labels + rng.normal(0, sd, labels.shape) for sd in (0.8, 0.9) for _ in range(SEEDS)]
  students, baselines = runs[:SEEDS], runs[SEEDS:]

  start = time.perf_counter()
  verdict.paired_gain(labels, students, baselines, verdict.VerdictParams(bootstrap=resamples))
  batched = time.perf_counter() - start

  few = 3 if args.quick else 10
  counts = np.stack([np.bincount(rng.integers(0, CLIPS, CLIPS), minlength=CLIPS)
                     for _ in range(few)]).astype(np.float64)
  start = time.perf_counter()
  looped = [[loop_auc(labels, s, w) for s in runs] for w in counts]
  per_resample = (time.perf_counter() - start) / few
  fast = [metrics.ResampledAUC(labels, s).batch(counts) for s in runs]
  for b in range(few):
    for r in range(len(runs)):
      np.testing.assert_allclose(fast[r][b], looped[b][r], rtol=1e-9, equal_nan=True)

  loop_total = per_resample * resamples
  common.report("bootstrap", [
      common.row(f"verdict, {CLIPS} clips x {CLASSES} classes x {resamples} resamples x "
                 f"{SEEDS} seeds: seconds", batched, "<= 30", batched <= 30),
      common.row(f"  the per-class loop, scaled from {few} resamples: seconds", loop_total),
      common.row("  loop / batched (the speed-up)", loop_total / batched),
  ])


if __name__ == "__main__":
  main()
