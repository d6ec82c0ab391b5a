"""Before students train: are the teacher's flags far enough above random to help?

The truly missing labels are unknown, but the labelled positives are a sample of the same
sounds. For class c at discard percentage p, let t_c be the score of the last implicit
negative flagged (ties at t_c count in proportion). A teacher that cannot tell the class apart scores positives like
negatives, so a share of about p/100 of the labelled positives lies at or above t_c. The
ratio

    lift_c = (share of labelled positives scoring >= t_c) / (share of implicit negatives
                                                              flagged, p% rounded down)

estimates how many times the base rate the flags' precision is: if missing labels score
like the labelled positives, flag precision = base rate x lift. Pooled over classes
(weighted by their flags) it is the estimate for the whole flag set. The scores are the
teacher's own training clips, which it has partly memorised, so the estimate is optimistic;
a teacher below `min_lift` even so is too weak, and the check warns with the numbers.

Classes with fewer than `min_positives` train positives give the teacher nothing (or next
to nothing) to learn from and no positives to estimate a lift with: they are listed. Their
flags are kept (and count as lift 1 in the pooled estimate): they remove p% of that class's
negatives at random, which neither helps nor hurts much, and dropping them changes the
meaning of p. The review CSV lists them last (it is ordered by teacher score).
"""

import dataclasses
from typing import Dict, List, Sequence

import numpy as np
from absl import logging

from tf_skeptical.util import files
from tf_skeptical.flagging import (MIN_POSITIVES, Flags, class_lists, flag_count,
                                   implicit_negatives, unscored)

CHECK_FILE = "teacher_check.json"


@dataclasses.dataclass(frozen=True)
class CheckParams:
  percents: Sequence[float] = (0.5, 1.0, 2.0, 4.0)
  min_lift: float = 2.0  # pooled lift below this at every checked p: warn
  min_positives: int = MIN_POSITIVES  # classes with fewer train positives are listed


def _class_lift(scores_c: np.ndarray, positives_c: np.ndarray, implicit_c: np.ndarray,
                flagged: int) -> float:
  """Share of positives the flag threshold t would take, over the share of implicit
  negatives it took (p%, rounded down to whole flags). Ties at t count with the share of
  the implicit negatives at t that were flagged: a teacher scoring everything alike takes
  that share of positives too (lift 1), not all of them."""
  negatives = scores_c[implicit_c]
  threshold = -np.partition(-negatives, flagged - 1)[flagged - 1]  # the last one flagged
  above, at = np.sum(negatives > threshold), np.sum(negatives == threshold)
  tied_share = (flagged - above) / at
  pos = scores_c[positives_c]
  taken = np.sum(pos > threshold) + tied_share * np.sum(pos == threshold)
  return float(taken / pos.size / (flagged / negatives.size))


def check(scores, flags: Flags, names: Sequence[str],
          params: CheckParams = CheckParams()) -> Dict:
  """scores: scoring.Scores of the teacher on the train set; flags: made from them.
  Returns the report (also what `warnings` reads)."""
  num_classes = scores.scores.shape[1]
  by_class = class_lists(*scores.positives, num_classes)
  explicit = class_lists(*scores.explicit_negatives, num_classes)
  counts = np.array([b.size for b in by_class])
  report = dict(min_lift=params.min_lift, min_positives=params.min_positives,
                few_positive_classes=[dict(index=int(c), name=names[c],
                                           positives=int(counts[c]))
                                      for c in np.flatnonzero(counts < params.min_positives)],
                percents=[])
  percents = [p for p in params.percents if p <= flags.max_percent]
  lifts = {p: [] for p in percents}
  weights = {p: [] for p in percents}
  unknown = unscored(scores.scores)
  for c, candidates in implicit_negatives(scores.scores.shape[0], by_class, explicit):
    if unknown[c]:
      continue  # the teacher does not know the class: it has no flags to check
    for p in percents:
      k = int(flag_count(p, candidates.size))
      if k == 0:
        continue
      lifts[p].append(_class_lift(scores.scores[:, c], by_class[c], candidates, k)
                      if counts[c] >= params.min_positives else 1.0)
      weights[p].append(k)
  for p in percents:
    pooled = (float(np.average(lifts[p], weights=weights[p])) if weights[p]
              else float("nan"))
    report["percents"].append(dict(percent=float(p), flagged=int(np.sum(weights[p])),
                                   lift=pooled))
  pooled = [r["lift"] for r in report["percents"] if not np.isnan(r["lift"])]
  report["weak"] = bool(pooled) and bool(max(pooled) < params.min_lift)
  return report


def warnings(report: Dict) -> List[str]:
  """Human-readable warnings for a report (none when the teacher looks useful)."""
  out = []
  if report["weak"]:
    shown = ", ".join(f"{r['lift']:.2f}x at {r['percent']:g}%" for r in report["percents"])
    out.append(f"the teacher's flags look barely better than random: labelled positives "
               f"above the flag threshold, against chance, are {shown} (below "
               f"{report['min_lift']:g}x everywhere). Masking them is unlikely to help; "
               "train the teacher longer or on more data first.")
  few = report["few_positive_classes"]
  if few:
    listed = ", ".join(f"{c['name']} ({c['positives']})" for c in few[:10])
    more = f" and {len(few) - 10} more" if len(few) > 10 else ""
    out.append(f"{len(few)} classes have fewer than {report['min_positives']} train "
               f"positives, so the teacher learned little about them and their flags are "
               f"close to random: {listed}{more}.")
  return out


def run(scores, flags: Flags, names: Sequence[str], path: str,
        params: CheckParams = CheckParams()) -> Dict:
  """Checks, logs each warning, and writes the report as JSON to `path`."""
  report = check(scores, flags, names, params)
  for w in warnings(report):
    logging.warning("teacher check: %s", w)
  files.write_json(path, report)
  return report
