"""The sweep's settings as absl flags, shared by tfsk_sweep and tfsk_demo.

Every flag defaults to SweepConfig's value (the demo raises --seeds); `config_from_flags()`
builds the dataclass, with the training recipe from train_options.
"""

from absl import flags

from tf_skeptical import flagging, sweep, verdict
from tf_skeptical_bin import checks, train_options

_D = sweep.SweepConfig()
PERCENTS = flags.DEFINE_string(
    "percents", ",".join(f"{p:g}" for p in _D.percents),
    "Comma-separated discard percentages (0 = the baseline), or 'paper' for the paper's "
    "grid 0, 0.1 ... 0.9, 1, 2 ... 20.")
MAX_PERCENT = flags.DEFINE_float("max_percent", _D.max_percent,
                                 "Flags are written up to this %.")
SCORE_WORKERS = flags.DEFINE_integer("score_workers", _D.score_workers,
                                     "Local Beam workers for scoring.")
TEACHER_FOLDS = flags.DEFINE_integer(
    "teacher_folds", _D.teacher_folds, "K >= 2: flag with K out-of-fold teachers, each "
    "trained without one fold of the train set and scoring that fold, so that no clip is "
    "scored by a teacher that trained on it (K more teacher runs). 0: the teacher scores its "
    "own training clips.")
TEACHER = flags.DEFINE_string(
    "teacher", _D.teacher, "A pretrained teacher instead of the sweep's own: YAMNet's released "
    "weights (yamnet.h5, your download; the examples prepared with YAMNet's frontend) or "
    "an exported tagger's directory (tfsk_export's output; the examples prepared with its "
    "frontend). It "
    "scores the train set; the classes it does not know get no flags; the p = 0 runs are "
    "still the baseline (docs/fine_tuning.md).")
TEACHER_CLASS_MAP = flags.DEFINE_string(
    "teacher_class_map", _D.teacher_class_map, "With --teacher: its class map (default: "
    "yamnet_class_map.csv beside it).")
ROUNDS = flags.DEFINE_integer(
    "rounds", _D.rounds, "R >= 2: after each round the best student (by mean d', among p > "
    "0) becomes the teacher: it scores the train set, flags, and a new student per p trains "
    "(work_dir/round<r>); every round is compared with the same baseline.", lower_bound=1)
SEEDS = flags.DEFINE_integer(
    "seeds", _D.seeds, "Training runs per p (different seeds); the table shows their means, "
    "the spread of d', and each p's gain over the baseline paired by seed. 2 or more give "
    "an interval over seeds.")
COMPLETE_REFERENCE = flags.DEFINE_bool(
    "complete_reference", _D.complete_reference,
    "With a truth file of the missing labels: also train on the complete labels, one run "
    "per seed (students/complete*): their gain over the baseline is what the missing labels "
    "cost.")
PERFECT_MASK_REFERENCE = flags.DEFINE_bool(
    "perfect_mask_reference", _D.perfect_mask_reference,
    "With a truth file of the missing labels: also train with exactly the missing labels "
    "masked, one run per seed (students/perfect_mask*): the most that loss masking can "
    "recover with any teacher.")
TREATMENTS = flags.DEFINE_list(
    "treatments", list(_D.treatments),
    "What the students do with the flagged entries, each a row per p: mask (left out of the "
    "loss, the paper), soft (the teacher's score as target), distill (every target blends "
    "label and teacher score by --distill_weight; distill0.5 names its own weight), "
    "positive (flagged entries made positives).")
FLAG_MIN_POSITIVES = flags.DEFINE_integer(
    "flag_min_positives", _D.flag_min_positives,
    "Classes with fewer train positives get no flags (their teacher has too little to rank "
    "by, and a class without any has no label to miss); 0 flags every class.",
    lower_bound=0)
JOBS = flags.DEFINE_integer(
    "jobs", _D.jobs, "Independent training runs side by side, each in its own process with "
    "cores / jobs threads (on a CPU a small model trains more patches per second that way); "
    "0 = one per core (at most 4) on a CPU, 1 on an accelerator; 1 = one after another.",
    lower_bound=0)
BOOTSTRAP = flags.DEFINE_integer("bootstrap", verdict.VerdictParams.bootstrap,
                                 "Eval-set resamples for the gains' 95% intervals over clips.")
checks.percent(MAX_PERCENT, low_open=True)


def _percents_fit(values) -> bool:
  try:
    grid = flagging.percent_grid(values["percents"])
  except ValueError:
    return False
  return bool(grid) and max(grid) <= values["max_percent"]


flags.register_multi_flags_validator(
    ["percents", "max_percent"], _percents_fit,
    message="--percents must be 'paper' or comma-separated percentages in [0, --max_percent]")
checks.positive(SCORE_WORKERS, SEEDS, BOOTSTRAP)
checks.non_negative(TEACHER_FOLDS)


def config_from_flags() -> sweep.SweepConfig:
  return sweep.SweepConfig(train=train_options.config_from_flags(),
                           percents=tuple(flagging.percent_grid(PERCENTS.value)),
                           max_percent=MAX_PERCENT.value, score_workers=SCORE_WORKERS.value,
                           seeds=SEEDS.value, teacher_folds=TEACHER_FOLDS.value,
                           teacher=TEACHER.value, teacher_class_map=TEACHER_CLASS_MAP.value,
                           rounds=ROUNDS.value, complete_reference=COMPLETE_REFERENCE.value,
                           perfect_mask_reference=PERFECT_MASK_REFERENCE.value,
                           treatments=tuple(TREATMENTS.value),
                           distill_weight=train_options.DISTILL_WEIGHT.value,
                           ontology=train_options.ONTOLOGY.value,
                           propagate_labels=train_options.PROPAGATE.value,
                           reviewed=train_options.REVIEWED.value,
                           flag_min_positives=FLAG_MIN_POSITIVES.value, jobs=JOBS.value,
                           verdict_params=verdict.VerdictParams(bootstrap=BOOTSTRAP.value))
