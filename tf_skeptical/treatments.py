"""What a student does with the flagged entries: the paper's mask, or targets that teach.

The teacher's flags say which implicit negatives are likely missing labels. A treatment
turns a clip's labels, its flagged entries and the teacher's scores into the targets and
the mask that the masked BCE (masked_loss.py) trains on:

- mask: flagged entries are left out of the loss (Fonseca et al. 2020). It removes wrong
  negatives but never teaches the missing positive, so its ceiling is a perfect mask.
- soft: a flagged entry counts, with the teacher's score as its target.
- distill: every entry's target is (1 - w) x label + w x teacher score, and a flagged
  entry takes the teacher's score alone (EfficientAT uses w = 0.9; pseudo strong labels
  train on the teacher alone, w = 1).
- positive: flagged entries become positives (the hard relabelling of PSLA and LL-Ct).

Targets are computed in tf.data, per clip, so the teacher is not in the student's graph:
its scores come from the flags file (a flagged entry's score) or, for distill, from the
score records of the Beam job (input_pipeline.teacher_score_lookup).
"""

import dataclasses

import tensorflow as tf

from tf_skeptical import errors

MASK, SOFT, DISTILL, POSITIVE = "mask", "soft", "distill", "positive"
TREATMENTS = (MASK, SOFT, DISTILL, POSITIVE)


@dataclasses.dataclass(frozen=True)
class Treatment:
  name: str = MASK
  distill_weight: float = 0.9  # distill: the teacher's share of an unflagged entry's target

  def __post_init__(self):
    if self.name not in TREATMENTS:
      raise errors.BadValue(f"treatment must be one of {', '.join(TREATMENTS)}, got {self.name!r}")
    if not 0.0 <= self.distill_weight <= 1.0:
      raise errors.BadValue(f"distill_weight must be in [0, 1], got {self.distill_weight}")

  @property
  def needs_flag_scores(self) -> bool:
    """Whether the flagged entries' teacher scores are read with the flags."""
    return self.name in (SOFT, DISTILL)

  @property
  def needs_teacher_scores(self) -> bool:
    """Whether every entry's teacher score is needed (the score records, not the flags)."""
    return self.name == DISTILL

  @property
  def label(self) -> str:
    """How the treatment is named in tables and run directories."""
    return f"distill{self.distill_weight:g}" if self.name == DISTILL else self.name


def parse(text: str, distill_weight: float = 0.9) -> Treatment:
  """'soft' -> Treatment('soft'); 'distill0.5' -> Treatment('distill', 0.5)."""
  text = text.strip()
  if text.startswith(DISTILL) and text != DISTILL:
    try:
      return Treatment(DISTILL, float(text[len(DISTILL):]))
    except ValueError:
      raise errors.BadValue(f"not a treatment: {text!r} (distill<weight>, e.g. distill0.9)")
  return Treatment(text, distill_weight)


def targets(labels, flagged, flag_scores, teacher_scores, treatment: Treatment):
  """(targets, mask), each [..., C] float32, for the masked BCE.

  labels: the clip's labels (0/1, or an experiment's added positives); flagged: 1 where the
  teacher's flags select the entry; flag_scores: the teacher's score there (any value
  elsewhere); teacher_scores: every entry's teacher score (distill only, else None).
  """
  labels = tf.cast(labels, tf.float32)
  flagged = tf.cast(flagged, tf.float32)
  ones = tf.ones_like(labels)
  is_flagged = flagged > 0
  if treatment.name == MASK:
    return labels, 1.0 - flagged
  if treatment.name == POSITIVE:
    return tf.where(is_flagged, ones, labels), ones
  if treatment.name == SOFT:
    return tf.where(is_flagged, tf.cast(flag_scores, tf.float32), labels), ones
  teacher = tf.cast(teacher_scores, tf.float32)
  w = treatment.distill_weight
  return tf.where(is_flagged, teacher, (1.0 - w) * labels + w * teacher), ones
