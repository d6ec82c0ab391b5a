"""The paper's experiment, stage by stage: teacher -> score -> flag -> one student per p and
treatment (and the references) -> table and plots; the best run exported as a tagger.

Stages whose outputs are complete (their marker file exists) are skipped on a re-run, so
an interrupted sweep continues where it stopped. p = 0 with seed 0 is the teacher itself:
same data, same recipe, nothing masked; every student differs from it only by its flags
(and, with seeds > 1, its seed). Each p's gain over the baseline is paired by seed and
given 95% intervals, over seeds and over eval clips (verdict.py).

With rounds = R >= 2 the experiment repeats: the best student of round r (by mean d' over
its seeds, among p > 0) becomes the teacher of round r + 1, which scores the train set
again (its own training clips), flags, and trains a student per p from the same recipe.
Every round is compared with the same baseline (the p = 0 runs), paired by seed.

Runs side by side (side_by_side.py, cfg.jobs): the baseline's other seeds and the
complete-label reference train beside the teacher; the students and the perfect mask once
the flags exist. A script that calls run() with jobs >= 2 must do so under
`if __name__ == "__main__":` (the workers are spawned processes, which import the script's
main module).
"""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence

from absl import logging

from tf_skeptical import errors
from tf_skeptical import (evaluation, exporting, flag_stage, flagging, inference, prepare,
                          side_by_side, treatments)
from tf_skeptical.data import examples, ontology
from tf_skeptical.util import files, output_paths, provenance
from tf_skeptical.sweep import layout, report
from tf_skeptical.sweep.config import SweepConfig
from tf_skeptical.sweep.runs import (FLAGS_IDENTITY, Run, fold_teachers, read_scores,
                                     results, score, submit)

REVIEW_PERCENT = 1.0  # the review list holds the flags up to this p


@dataclasses.dataclass(frozen=True)
class SweepResult:
  """What a sweep measured: the table's rows (round 1's baseline and students, then each
  later round's students), the references' summaries by name (layout.COMPLETE,
  layout.PERFECT_MASK: mean metrics and gain over the baseline) and the flags' quality
  against the truth (a row per round and p), all as written to the work directory."""
  work_dir: str
  table: List[Dict]
  references: Dict[str, Dict]
  flag_quality: List[Dict]

  @property
  def baseline(self) -> Dict:
    return self.table[0]

  def best(self) -> Dict:
    """The best row (report.best_row: the baseline when no student beats it)."""
    return report.best_row(self.table)


def run(train_dir: str, eval_dir: str, work_dir: str, cfg: SweepConfig = SweepConfig(),
        truth_csv: Optional[str] = None) -> SweepResult:
  """Runs (or resumes) the whole sweep; returns what it measured (SweepResult)."""
  output_paths.check_directory(work_dir, layout.OUTPUT, "--work_dir")
  files.makedirs(work_dir)
  if cfg.rounds >= 2 and not any(p > 0 for p in cfg.percents):
    raise errors.BadValue(f"rounds = {cfg.rounds} needs a p > 0: a round's best student is the "
                     "next round's teacher")
  specs = cfg.treatment_specs()
  class_map = examples.read_info(train_dir).class_map
  truth = evaluation.read_truth(truth_csv, class_map) if truth_csv else None
  with side_by_side.Runner(cfg.resolved_jobs()) as runner:
    return _run(train_dir, eval_dir, work_dir, cfg, truth, truth_csv, specs, class_map,
                runner)


def _run(train_dir, eval_dir, work_dir, cfg, truth, truth_csv, specs, class_map, runner):
  """run()'s stages, with the runner that trains the independent runs."""
  teacher_dir = layout.run_dir(work_dir, 0.0)
  baseline = [submit(runner, train_dir, eval_dir, Run(layout.run_dir(work_dir, 0.0, i),
                                                      cfg.seeded(i), ontology=cfg.propagated,
                                                      reviewed=cfg.reviewed))
              for i in range(cfg.seeds)]  # seed 0 is the teacher
  entries = evaluation.truth_as_entries(truth) if truth is not None else None
  references = {}
  if truth is not None and cfg.complete_reference:
    references[layout.COMPLETE] = [submit(runner, train_dir, eval_dir, run) for run in
                                   reference_runs(work_dir, cfg, layout.COMPLETE, entries)]

  # Scores and flags are reused only if these teachers made them (a retrained teacher's
  # model differs, and so does its id).
  if cfg.teacher_folds >= 2:
    scores_dirs, teacher_id = fold_teachers(train_dir, work_dir, cfg, runner)
    teacher = f"{cfg.teacher_folds} out-of-fold teachers"
  else:
    if not cfg.teacher:
      baseline[0].result()
    scoring_model = cfg.teacher or teacher_dir
    scores_dirs = [os.path.join(work_dir, layout.SCORES)]
    teacher_id = inference.model_id(scoring_model)
    score(train_dir, scoring_model, scores_dirs[0], cfg,
          teacher_class_map=cfg.teacher_class_map)
    teacher = (f"the pretrained {os.path.basename(cfg.teacher)}" if cfg.teacher
               else "the teacher")

  table, quality = [], []
  for r in range(1, cfg.rounds + 1):
    if r > 1:  # the best student of the last round teaches this one, scoring in-sample
      best = report.best_row([row for row in table
                              if row["round"] == r - 1 and row["discard_percent"]])
      teacher_dir = layout.row_dir(work_dir, best)
      teacher = f"round {r - 1}'s {report.run_label(best)} student"
      logging.info("round %d: the teacher is %s, %s (d' %.3f)", r, teacher, teacher_dir,
                   best["d_prime"])
      scores_dirs = [os.path.join(layout.round_dir(work_dir, r), layout.SCORES)]
      teacher_id = inference.model_id(teacher_dir)
      score(train_dir, teacher_dir, scores_dirs[0], cfg)
    flags_dir = os.path.join(layout.round_dir(work_dir, r), layout.FLAGS)
    flags = flag(scores_dirs, teacher_id, flags_dir, class_map, cfg)
    flags_path = os.path.join(flags_dir, flagging.FLAGS_FILE)
    flags_id = tuple(flags.made_from.get(k) for k in FLAGS_IDENTITY)
    if r == 1 and truth is not None and cfg.perfect_mask_reference:
      references[layout.PERFECT_MASK] = [
          submit(runner, train_dir, eval_dir, run) for run in reference_runs(
              work_dir, cfg, layout.PERFECT_MASK, entries,
              truth_provenance(flags.made_from, truth_csv))]
    futures = {(treatments.MASK, 0.0): baseline} if r == 1 else {}
    for i in range(cfg.seeds):
      for t in specs:
        for p in (p for p in cfg.percents if p > 0):
          futures.setdefault((t.label, p), []).append(submit(runner, train_dir, eval_dir, Run(
              layout.run_dir(work_dir, p, i, r, t.label), cfg.seeded(i), t, p, flags_path,
              flags_id, tuple(scores_dirs) if t.needs_teacher_scores else (),
              ontology=cfg.propagated, reviewed=cfg.reviewed)))
    done = {key: results(fs) for key, fs in futures.items()}
    round_quality = {}
    if truth is not None:
      percents = [p for p in sorted(set(cfg.percents) | {1.0}) if p <= cfg.max_percent]
      rows = [dict(row, round=r) for row in evaluation.flag_quality(flags, truth, percents)]
      evaluation.write_rows(rows, os.path.join(layout.round_dir(work_dir, r),
                                               evaluation.FLAG_QUALITY))
      round_quality = {row["percent"]: row for row in rows}
      quality += rows
    gains = {t.label: report.verdicts(work_dir, eval_dir, cfg.percents, cfg.seeds,
                                      cfg.verdict_params, r, t.label) for t in specs}
    order = ([(treatments.MASK, 0.0)] if r == 1 else []) + [
        (t.label, p) for t in specs for p in sorted(cfg.percents) if p > 0]
    table += [report.table_row(p, done[(label, p)], round_quality.get(p, {}),
                               gains[label].get(p) if p else None, r, teacher, label)
              for label, p in order]

  summaries = {name: report.reference_summary(work_dir, eval_dir, cfg.seeds,
                                              cfg.verdict_params, name, results(fs),
                                              entries.count)
               for name, fs in references.items()}
  report.write_table(table, work_dir, summaries)
  report.plot(table, quality, work_dir)
  report.write_hparams(table, work_dir)
  return SweepResult(work_dir, table, summaries, quality)


def flag(scores_dirs: Sequence[str], teacher_id: str, flags_dir: str, class_map,
         cfg: SweepConfig) -> flagging.Flags:
  """The flags of these scores (with the teacher check, summary and review list), unless
  the flags in flags_dir were made by the same teacher(s) with the same ontology and
  per-class policy."""
  flags_path = os.path.join(flags_dir, flagging.FLAGS_FILE)
  onto_path = cfg.ontology or None
  want = dict(model_id=teacher_id, ontology=onto_path, min_positives=cfg.flag_min_positives)
  made_from = flagging.read_flags(flags_path).made_from if files.exists(flags_path) else {}
  if any(made_from.get(k) != want[k] for k in FLAGS_IDENTITY):
    logging.info("flagging up to %g%% of each class's implicit negatives", cfg.max_percent)
    onto = ontology.read_ontology(onto_path, class_map.mids) if onto_path else None
    params = flag_stage.FlagParams(cfg.max_percent, cfg.flag_min_positives, REVIEW_PERCENT)
    flag_stage.flag(lambda: read_scores(scores_dirs), class_map,
                    "the train examples' class map", flags_dir, params, onto,
                    scores_name=", ".join(scores_dirs))
  return flagging.read_flags(flags_path)


def truth_provenance(flags_made_from: Dict, truth_csv: str) -> Dict:
  """The perfect mask's provenance: the flags' clip set and class map, made by the truth
  file (whose content id stands where a teacher's model id would)."""
  return dict(flags_made_from, flags=truth_csv,
              model_id="truth " + provenance.file_id(truth_csv))


def reference_runs(work_dir: str, cfg: SweepConfig, name: str, entries,
                   made_from: Optional[Dict] = None) -> List[Run]:
  """A reference's runs, one per seed, paired with the baseline by seed: layout.COMPLETE
  trains on the complete labels (its gain is what the missing labels cost); layout.
  PERFECT_MASK masks exactly the missing labels (what flags of precision and recall 1
  would give: the most loss masking can recover, since a mask only removes wrong negatives
  and never adds the positive), made_from being its provenance (truth_provenance)."""
  how = (dict(added_positives=entries) if name == layout.COMPLETE else
         dict(masked=dataclasses.replace(entries, made_from=made_from)))
  return [Run(layout.reference_dir(work_dir, name, i), cfg.seeded(i), ontology=cfg.propagated,
              **how) for i in range(cfg.seeds)]


def references_alone(train_dir, eval_dir, work_dir, cfg: SweepConfig, truth: set,
                     made_from: Dict) -> Dict[str, Dict]:
  """The references of a truth file trained alone (side by side with cfg.jobs), for an
  experiment that wants them without a sweep (run() trains them beside its other runs);
  returns their summaries by name."""
  entries = evaluation.truth_as_entries(truth)
  names = ([layout.COMPLETE] if cfg.complete_reference else []) + (
      [layout.PERFECT_MASK] if cfg.perfect_mask_reference else [])
  with side_by_side.Runner(cfg.resolved_jobs()) as runner:
    futures = {name: [submit(runner, train_dir, eval_dir, run) for run in
                      reference_runs(work_dir, cfg, name, entries, made_from)]
               for name in names}
    return {name: report.reference_summary(work_dir, eval_dir, cfg.seeds, cfg.verdict_params,
                                           name, results(fs), entries.count)
            for name, fs in futures.items()}


def export_best(result: SweepResult, train_dir: str):
  """Exports the best run by mean d' (the baseline if no student beats it) to the work
  directory's tagger/, unless that export exists; returns (its table row, the tagger dir,
  or None when the examples are not log-mel: a tagger needs the audio frontend)."""
  best = result.best()
  kind = examples.read_info(train_dir).features.kind
  if kind != examples.LOG_MEL:
    logging.info("not exporting a tagger: %s holds %s features, and a tagger starts from "
                 "audio", train_dir, kind)
    return best, None
  tagger = os.path.join(result.work_dir, layout.TAGGER)
  model = layout.row_dir(result.work_dir, best)
  metadata = os.path.join(tagger, exporting.METADATA)
  if (not files.exists(metadata) or files.read_json(metadata).get("model_id")
      != inference.model_id(model)):
    if best is result.baseline:
      logging.info("no student beat the baseline (by mean d'): exporting the baseline to %s",
                   tagger)
    else:
      logging.info("exporting the best run (p = %s) to %s", report.run_name(best), tagger)
    exporting.export(model, os.path.join(train_dir, examples.CLASS_MAP), tagger,
                     calibration_files=prepare.source_audio(train_dir))
  return best, tagger
