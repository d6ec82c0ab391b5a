"""The sweep over p: the paper's experiment end to end, in four parts.

  config.py         SweepConfig: what a sweep is asked to do
  layout.py         where it writes (the work directory's layout)
  runs.py           one training run as a worker process takes it; scoring by a teacher
  orchestration.py  the stages in order (run()), the references, the best run's export
  report.py         the table, the paper's figure, TensorBoard's HParams dashboard

`run()` returns a SweepResult: the table, the references' summaries and the flags'
quality, as written to the work directory.
"""

from tf_skeptical.sweep.config import DEMO_PERCENTS, SweepConfig
from tf_skeptical.sweep.layout import (COMPLETE, FLAGS, FOLD_SCORES, FOLD_TEACHERS, LOGS,
                                       PERFECT_MASK, PLOT_FLAGS, PLOT_METRICS, RESULTS_CSV,
                                       RESULTS_MD, SCORES, STUDENTS, TAGGER, TEACHER,
                                       reference_dir, round_dir, row_dir, run_dir)
from tf_skeptical.sweep.orchestration import (SweepResult, export_best, references_alone, run,
                                              truth_provenance)
from tf_skeptical.sweep.report import against_plain, best_line, results_text, write_table
from tf_skeptical.sweep.runs import fold_teachers
