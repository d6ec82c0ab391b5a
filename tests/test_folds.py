"""Out-of-fold teachers: no clip is scored by a teacher that trained on it."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical.util import files, provenance
from tf_skeptical import folds, inference, input_pipeline, scoring, sweep
from tf_skeptical import training

from conftest import TINY_TRAIN

pytestmark = pytest.mark.end_to_end


def test_a_clips_fold_is_fixed_by_its_id_and_folds_spread_clips():
  ids = [f"clip{i:05d}" for i in range(3000)]
  inside = np.stack([folds.Fold(k, 5).contains(tf.constant(ids)).numpy() for k in range(5)])
  backwards = np.stack([folds.Fold(k, 5).contains(tf.constant(ids[::-1])).numpy()
                        for k in range(5)])
  np.testing.assert_array_equal(inside, backwards[:, ::-1])  # order-independent
  assert (inside.sum(axis=0) == 1).all()  # every clip in exactly one fold
  assert inside.sum(axis=1).min() > 500
  with pytest.raises(ValueError, match="2\\+ folds"):
    folds.Fold(0, 1)


def test_out_of_fold_teachers_never_score_their_own_clips(tiny_examples, tmp_path):
  train_dir, _ = tiny_examples
  work = str(tmp_path / "sweep")
  k = 3
  cfg = sweep.SweepConfig(train=training.TrainConfig(**dict(TINY_TRAIN, epochs=1)),
                          teacher_folds=k, score_workers=1)
  dirs, combined = sweep.fold_teachers(train_dir, work, cfg)
  all_ids = {c["clip_id"].decode() for c in
             input_pipeline.clips(train_dir)[0].as_numpy_iterator()}
  scored_by_fold, ids = [], []
  for i, scores_dir in enumerate(dirs):
    teacher = os.path.join(work, sweep.FOLD_TEACHERS, f"fold{i}")
    fold = folds.Fold(i, k)
    trained_on = {i.decode() for _, y in input_pipeline.training_dataset(
        train_dir, 1, hop_frames=TINY_TRAIN["train_hop_frames"], repeat=False,
        exclude_fold=fold, with_clip_ids=True).as_numpy_iterator() for i in y["clip_id"]}
    scores = scoring.read_scores(scores_dir)
    scored = set(scores.clip_ids)
    assert scored and trained_on and not (scored & trained_on)
    assert scored | trained_on == all_ids
    # The fold's scores were made by the teacher that left it out.
    model_id = provenance.file_id(inference.model_path(teacher))
    assert scores.manifest["model_id"] == model_id
    assert scores.manifest["fold"] == dict(index=i, count=k)
    result = files.read_json(os.path.join(teacher, training.RESULT))
    assert (result["config"]["holdout_fold"], result["config"]["holdout_folds"]) == (i, k)
    scored_by_fold.append(scored)
    ids.append(model_id)
  assert set().union(*scored_by_fold) == all_ids
  assert sum(len(s) for s in scored_by_fold) == len(all_ids)  # each clip once
  merged = scoring.merge_scores([scoring.read_scores(d) for d in dirs])
  assert list(merged.clip_ids) == sorted(all_ids)
  assert merged.manifest["model_id"] == combined == folds.combined_model_id(ids)
  # A rerun finds every fold teacher and every fold's scores complete.
  assert sweep.fold_teachers(train_dir, work, cfg) == (dirs, combined)
