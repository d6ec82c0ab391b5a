"""What a sweep is asked to do: its runs, references, rounds and treatments (the absl flags
of tfsk_sweep and tfsk_demo fill it)."""

import dataclasses
from typing import List, Sequence

from tf_skeptical import errors
from tf_skeptical import flagging, side_by_side, training, treatments, verdict

# Around the built-in data's 2% missing rate, either side of it (4% shows what flagging past
# the missing rate costs): with the references and 2 seeds, 12 training runs, the demo's
# verdict within 15 minutes on 2 cores (CHANGELOG has its measured time).
DEMO_PERCENTS = (0.0, 1.0, 2.0, 4.0)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
  train: training.TrainConfig = training.TrainConfig()
  percents: Sequence[float] = DEMO_PERCENTS
  max_percent: float = 20.0
  score_workers: int = 2
  seeds: int = 1  # training runs per p, seeds train.seed, train.seed + 1, ...
  # K >= 2: the flags come from K out-of-fold teachers (folds.py), each scoring the clips
  # it did not train on; 0: from the teacher's scores of its own training clips.
  teacher_folds: int = 0
  # A pretrained teacher instead of the sweep's own (teachers.py: YAMNet's released
  # weights, with teacher_class_map or its class map beside them, or an exported tagger's
  # directory): it scores the train set
  # for the first round's flags; the p = 0 runs are still the baseline. "": the sweep's.
  teacher: str = ""
  teacher_class_map: str = ""
  # With a truth file: also train on the complete labels (the missing ones added back), the
  # reference for how much the missing labels cost and how much of it masking recovers.
  complete_reference: bool = True
  # With a truth file: also train with exactly the missing labels masked (flags of precision
  # and recall 1), the most that loss masking can recover with any teacher.
  perfect_mask_reference: bool = True
  # R >= 2: the best student of each round is the next round's teacher (orchestration.py).
  rounds: int = 1
  # What the students make of the flags, each a row per p (treatments.parse: mask, soft,
  # positive, distill (with distill_weight, the teacher's share of every target) or
  # distill<w>).
  treatments: Sequence[str] = (treatments.MASK,)
  distill_weight: float = 0.9
  # An AudioSet-layout ontology.json (ontology.py): flagging never flags an ancestor of a
  # labelled class, and with propagate_labels every run trains on labels propagated to
  # their ancestors (YAMNet's practice). "": none.
  ontology: str = ""
  propagate_labels: bool = True
  # A listening test's verdicts (tfsk_review's file): every run but the references trains
  # on them (confirmed entries positives, rejected ones explicit negatives), the teacher
  # and the p = 0 baseline included; an answer overrides its entry's flag. With `teacher`
  # (the one whose flags were answered, as tfsk_demo --review gives) the flags are that
  # model's again, not a teacher's retrained on the verdicts. "": none.
  reviewed: str = ""
  # Classes with fewer train positives get no flags (flagging.py); 0: every class.
  flag_min_positives: int = flagging.MIN_POSITIVES
  verdict_params: verdict.VerdictParams = verdict.VerdictParams()
  # Independent runs trained side by side (side_by_side.py); 0: one per core on a CPU.
  jobs: int = 0

  def __post_init__(self):
    """Refuses a sweep with nothing to run (bin/checks.py refuses the same values as flags)."""
    if self.seeds < 1:
      raise errors.BadValue(f"SweepConfig.seeds must be >= 1, got {self.seeds}")
    if not 0 < self.max_percent <= 100:  # NaN too
      raise errors.BadValue(f"SweepConfig.max_percent must be in (0, 100], got {self.max_percent}")
    if not self.percents or not all(0 <= p <= self.max_percent for p in self.percents):
      raise errors.BadValue(f"SweepConfig.percents must be in [0, max_percent = "
                       f"{self.max_percent:g}], got {list(self.percents)}")
    if self.teacher_folds == 1 or self.teacher_folds < 0:
      raise errors.BadValue(f"SweepConfig.teacher_folds must be 0 or >= 2, got "
                       f"{self.teacher_folds}")
    if self.teacher and self.teacher_folds:
      raise errors.BadValue("a pretrained teacher (--teacher) and out-of-fold teachers "
                            "(--teacher_folds) are two ways to score the train set: give one")

  @property
  def propagated(self) -> str:
    """The ontology every run trains with, labels propagated ("": the labels as given)."""
    return self.ontology if self.propagate_labels else ""

  def resolved_jobs(self) -> int:
    return self.jobs or side_by_side.auto_jobs(self.train.strategy)

  def treatment_specs(self) -> List["treatments.Treatment"]:
    specs = [treatments.parse(t, self.distill_weight) for t in self.treatments]
    if not specs or len({t.label for t in specs}) != len(specs):
      raise errors.BadValue(f"treatments must be distinct and at least one: {self.treatments}")
    return specs

  def seeded(self, i: int) -> training.TrainConfig:
    """The training recipe of a p's i-th run (seed train.seed + i)."""
    return dataclasses.replace(self.train, seed=self.train.seed + i)
