"""Where a sweep writes: the work directory's layout, defined once for the stages that
write it and the reports and benchmarks that read it.

  teacher/          the teacher (a model directory, see training.py)
  scores/           its scores of the train set (scoring.py)
  fold_teachers/fold<k>/, fold_scores/fold<k>/   with teacher_folds = K >= 2: the
                    out-of-fold teachers and each one's scores of its fold (folds.py)
  flags/            flags.npz, summary.csv, review.csv (flagging.py), teacher_check.json
                    (teacher_check.py: are the flags far enough above random to help?)
  students/complete/  with a truth file: trained on the complete labels (what the missing
                    labels cost)
  students/perfect_mask/  with a truth file: masking exactly the missing labels (the most any
                    loss mask can recover)
  students/p<p>/    one model directory per discard percentage (p<p>_seed<s> for seed s);
                    each run's eval clip scores in eval_scores.npz (for the intervals)
  students/<treatment>_p<p>/   the same for a treatment other than the mask
  round<r>/scores/, flags/, students/p<p>/, flag_quality.csv   rounds r >= 2
  tagger/           the best p's student, exported (exporting.py)
  results.csv/.md   the table;  plot_metrics.png, plot_flags.png   the figures (report.py)
  logs/             TensorBoard: every run's curves and the HParams dashboard
"""

import os
from typing import Dict

from tf_skeptical import treatments
from tf_skeptical.util import output_paths

TEACHER, SCORES, FLAGS, STUDENTS, LOGS, TAGGER = (
    "teacher", "scores", "flags", "students", "logs", "tagger")
FOLD_TEACHERS, FOLD_SCORES = "fold_teachers", "fold_scores"
RESULTS_CSV, RESULTS_MD = "results.csv", "results.md"
PLOT_METRICS, PLOT_FLAGS = "plot_metrics.png", "plot_flags.png"
COMPLETE, PERFECT_MASK = "complete", "perfect_mask"  # the references (orchestration.py)
OUTPUT = output_paths.OutputKind("sweep work directory",
                                 (TEACHER, SCORES, FLAGS, STUDENTS, LOGS, RESULTS_CSV))


def round_dir(work_dir: str, round_index: int = 1) -> str:
  """Where a round's scores, flags and students go (round 1: the work directory)."""
  return work_dir if round_index == 1 else os.path.join(work_dir, f"round{round_index}")


def run_dir(work_dir: str, p: float, seed_index: int = 0, round_index: int = 1,
            treatment: str = treatments.MASK) -> str:
  """The model directory of the run at p in a round with a treatment's label (the teacher
  for p = 0, seed 0; the p = 0 runs are the baseline of every round and treatment)."""
  if p == 0 and seed_index == 0:
    return os.path.join(work_dir, TEACHER)
  suffix = f"_seed{seed_index}" if seed_index else ""
  prefix = "" if p == 0 or treatment == treatments.MASK else f"{treatment}_"
  return os.path.join(round_dir(work_dir, 1 if p == 0 else round_index), STUDENTS,
                      f"{prefix}p{p:g}{suffix}")


def row_dir(work_dir: str, row: Dict, seed_index: int = 0) -> str:
  """The model directory of a table row's run with one seed."""
  return run_dir(work_dir, row["discard_percent"], seed_index, row.get("round", 1),
                 row.get("treatment") or treatments.MASK)


def reference_dir(work_dir: str, name: str, seed_index: int = 0) -> str:
  """The model directory of a reference run (COMPLETE or PERFECT_MASK) with one seed."""
  return os.path.join(work_dir, STUDENTS, name + (f"_seed{seed_index}" if seed_index else ""))

