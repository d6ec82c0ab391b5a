"""Starting from a pretrained tagger: a weights file in YAMNet's released layout (written here
with h5py, layer and weight names as Keras 2 wrote them, random values) loads into this
project's MobileNetV1 under Keras 3; every array lands where the file says, the network
computes what a numpy reference computes from the file's arrays, the head is mapped by
mid, and a file of another layout is refused in one line."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tf_skeptical import errors, models, pretrained
from yamnet_layout import (BLOCKS, YAMNET_CLASSES, YAMNET_MIDS, write_class_map,
                           write_yamnet, yamnet_arrays)

@pytest.fixture(scope="module")
def yamnet_file(tmp_path_factory):
  root = tmp_path_factory.mktemp("yamnet")
  layers = yamnet_arrays(np.random.default_rng(0))
  write_yamnet(str(root / "yamnet.h5"), layers)
  write_class_map(str(root / pretrained.YAMNET_CLASS_MAP), YAMNET_MIDS)
  return str(root / "yamnet.h5"), layers


# -- a numpy reference of YAMNet's network, from the file's arrays -----------------------

def _same_pad(x, stride):
  h, w = x.shape[:2]
  def pads(n):
    out = -(-n // stride)
    total = max((out - 1) * stride + 3 - n, 0)
    return total // 2, total - total // 2
  return np.pad(x, (pads(h), pads(w), (0, 0)))


def _windows(x, stride):
  """The 9 shifted views of a 3x3 kernel with 'same' padding: [(di, dj, view [H', W', C])]."""
  h, w = -(-x.shape[0] // stride), -(-x.shape[1] // stride)
  padded = _same_pad(x, stride)
  return [(di, dj, padded[di:di + stride * h:stride, dj:dj + stride * w:stride])
          for di in range(3) for dj in range(3)]


def conv(x, kernel, stride):
  return sum(view @ kernel[di, dj] for di, dj, view in _windows(x, stride))


def depthwise(x, kernel, stride):
  return sum(view * kernel[di, dj, :, 0] for di, dj, view in _windows(x, stride))


def bn_relu(x, arrays):
  beta, mean, variance = arrays
  return np.maximum((x - mean) / np.sqrt(variance + 1e-4) + beta, 0.0)


def reference_logits(layers, patch):
  """YAMNet on one [96, 64] patch: conv, depthwise and pointwise convolutions, inference
  BatchNorm without scale, ReLU, global average pooling, the logits Dense."""
  a = {name: [arr.astype(np.float64) for _, arr in ws] for name, ws in layers.items()}
  x = bn_relu(conv(patch[:, :, None].astype(np.float64), a["layer1/conv"][0], 2),
              a["layer1/conv/bn"])
  for i, stride, _ in BLOCKS:
    x = bn_relu(depthwise(x, a[f"layer{i}/depthwise_conv"][0], stride),
                a[f"layer{i}/depthwise_conv/bn"])
    x = bn_relu(x @ a[f"layer{i}/pointwise_conv"][0][0, 0], a[f"layer{i}/pointwise_conv/bn"])
  return x.mean(axis=(0, 1)) @ a["logits"][0] + a["logits"][1]


# -- the tests -----------------------------------------------------------------------------

def _model(classes):
  return models.mobilenet_v1((96, 64), classes, 1.0)


def test_every_array_lands_where_the_file_says(yamnet_file):
  path, _ = yamnet_file
  model = _model(YAMNET_CLASSES)
  start = pretrained.load_yamnet(model, path, YAMNET_MIDS)
  assert (start.kind, start.classes_kept, start.classes_new) == ("yamnet", 521, 0)
  ours_of = {"layer1": "layer1/conv", "layer1_bn": "layer1/conv/bn", "logits": "logits"}
  for i, _, _ in BLOCKS:
    for part in ("depthwise", "pointwise"):
      ours_of[f"layer{i}_{part}"] = f"layer{i}/{part}_conv"
      ours_of[f"layer{i}_{part}_bn"] = f"layer{i}/{part}_conv/bn"
  with h5py.File(path, "r") as f:  # read by path, not through the loader
    checked = 0
    for layer in model.layers:
      if not layer.weights:
        continue
      group = ours_of[layer.name]
      suffixes = (["kernel:0", "bias:0"] if layer.name == "logits" else
                  ["beta:0", "moving_mean:0", "moving_variance:0"] if group.endswith("/bn")
                  else ["depthwise_kernel:0"] if "depthwise" in group else ["kernel:0"])
      assert len(layer.weights) == len(suffixes)
      for weight, suffix in zip(layer.weights, suffixes):
        np.testing.assert_array_equal(np.asarray(weight), f[f"/{group}/{group}/{suffix}"][()])
        checked += 1
  assert checked == 110  # 55 layers: 1 + 3, 13 x (1 + 3 + 1 + 3), 2


def test_the_network_computes_what_numpy_computes_from_the_file(yamnet_file):
  path, layers = yamnet_file
  model = _model(YAMNET_CLASSES)
  pretrained.load_yamnet(model, path, YAMNET_MIDS)
  patch = np.random.default_rng(3).normal(-4, 2, (96, 64)).astype(np.float32)
  got = np.asarray(model(patch[None], training=False))[0]
  np.testing.assert_allclose(got, reference_logits(layers, patch), rtol=1e-4, atol=1e-4)


def test_the_head_is_mapped_by_mid_and_new_classes_start_fresh(yamnet_file, tmp_path):
  path, layers = yamnet_file
  kernel, bias = (a for _, a in layers["logits"])
  mids = [YAMNET_MIDS[5], "/m/new1", YAMNET_MIDS[0], "/m/new2", YAMNET_MIDS[520]]
  model = _model(len(mids))
  fresh_kernel, fresh_bias = (np.array(w) for w in model.get_layer("logits").get_weights())
  start = pretrained.load_yamnet(model, path, mids)
  assert (start.classes_kept, start.classes_new) == (3, 2)
  got_kernel, got_bias = model.get_layer("logits").get_weights()
  for j, source in ((0, 5), (2, 0), (4, 520)):
    np.testing.assert_array_equal(got_kernel[:, j], kernel[:, source])
    assert got_bias[j] == bias[source]
  for j in (1, 3):
    np.testing.assert_array_equal(got_kernel[:, j], fresh_kernel[:, j])
    assert got_bias[j] == fresh_bias[j]


def test_a_file_of_another_layout_is_refused_naming_the_layer(yamnet_file, tmp_path):
  path, layers = yamnet_file
  wrong = dict(layers)
  wrong["layer3/pointwise_conv"] = [("layer3/pointwise_conv/kernel:0",
                                     np.zeros((1, 1, 64, 100), np.float32))]
  bad = str(tmp_path / "yamnet.h5")
  write_yamnet(bad, wrong)
  write_class_map(str(tmp_path / pretrained.YAMNET_CLASS_MAP), YAMNET_MIDS)
  with pytest.raises(errors.BadValue) as caught:
    pretrained.load_yamnet(_model(3), bad, YAMNET_MIDS[:3])
  message = str(caught.value)
  assert message.startswith(f"{bad}: layer layer3/pointwise_conv holds arrays of shapes "
                            "[(1, 1, 64, 100)], but layer3_pointwise") and "\n" not in message
  short = {k: v for k, v in layers.items() if not k.startswith("layer14")}
  write_yamnet(bad, short)
  with pytest.raises(errors.BadValue, match=r"51 layers with weights, but YAMNet's released "
                                            r"layout has 55"):
    pretrained.load_yamnet(_model(3), bad, YAMNET_MIDS[:3])
  with pytest.raises(errors.BadValue, match="this MobileNetV1 at width 1.0 needs"):
    pretrained.load_yamnet(models.mobilenet_v1((96, 64), 3, 0.5), path, YAMNET_MIDS[:3])
  os.remove(tmp_path / pretrained.YAMNET_CLASS_MAP)
  with pytest.raises(errors.BadValue, match="no class map for the weights to start from"):
    pretrained.load_yamnet(_model(3), bad, YAMNET_MIDS[:3])


@pytest.mark.end_to_end
def test_tfsk_train_starts_from_yamnet_and_records_it(yamnet_file, tiny_examples, tmp_path):
  """A student started from the weights file: result.json records the start, and a file of
  another layout is one line from the binary, with nothing trained."""
  from tf_skeptical import training
  from tf_skeptical.util import provenance
  path, _ = yamnet_file
  train_dir, _ = tiny_examples
  cfg = training.TrainConfig(width=1.0, epochs=1, batch_size=8, steps_per_epoch=2,
                             train_hop_frames=48, init_from=path)
  result = training.train(train_dir, str(tmp_path / "run"), cfg, verbose=0)
  assert result["init_from"] == dict(path=path, kind="yamnet", file_id=provenance.file_id(path),
                                     classes_kept=0, classes_new=6)
  bad = tmp_path / "not_yamnet.h5"
  bad.write_bytes(b"not hdf5")
  yamnet_map = os.path.join(os.path.dirname(path), pretrained.YAMNET_CLASS_MAP)
  done = subprocess.run([sys.executable, "-m", "tf_skeptical_bin.tfsk_train",
                         f"--train={train_dir}", "--model_dir=run2", "--width=1",
                         "--epochs=1", f"--init_from={bad}",
                         f"--init_class_map={yamnet_map}"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 1 and len(lines) == 1, done.stderr
  assert lines[0].startswith(f"tfsk_train: error: {bad}: not a Keras weights file in "
                             "YAMNet's released layout")


@pytest.mark.end_to_end
def test_yamnet_as_the_teacher_scores_what_it_knows_and_flags_only_that(tiny_examples,
                                                                      tmp_path):
  """YAMNet's weights as the skeptical teacher of the tiny train set, whose class map shares
  4 of its 6 mids with the (fake) YAMNet class map: each clip's scores are the mean over its
  patches of the numpy reference's sigmoid; the 2 unknown classes are NaN, named, and get no
  flags; the flags equal a numpy ranking of those scores."""
  from tf_skeptical import flagging, input_pipeline, scoring
  from tf_skeptical.data import examples
  train_dir, _ = tiny_examples
  info = examples.read_info(train_dir)
  layers = yamnet_arrays(np.random.default_rng(5))
  weights = str(tmp_path / "yamnet.h5")
  write_yamnet(weights, layers)
  mids = list(YAMNET_MIDS)
  place = {0: 17, 1: 250, 3: 0, 4: 520}  # tiny class -> YAMNet index (2 and 5 unknown)
  for tiny, index in place.items():
    mids[index] = info.class_map.mids[tiny]
  write_class_map(str(tmp_path / pretrained.YAMNET_CLASS_MAP), mids)

  out = str(tmp_path / "scores")
  manifest = scoring.score(train_dir, weights, out, local_workers=1)
  assert manifest["unknown_classes"] == [info.class_map.display_names[c] for c in (2, 5)]
  scores = scoring.read_scores(out)
  assert np.isnan(scores.scores[:, [2, 5]]).all()
  assert not np.isnan(scores.scores[:, [0, 1, 3, 4]]).any()

  # The reference: every clip's patches (the frontend's hop) through numpy.
  for clip in list(examples.iterate(train_dir))[:6]:
    patches = input_pipeline.clip_patches(clip["features"], info.features, 48).numpy()
    logits = np.stack([reference_logits(layers, p) for p in patches])
    want = (1 / (1 + np.exp(-logits))).mean(axis=0)
    row = int(np.flatnonzero(scores.clip_ids == clip["clip_id"])[0])
    for tiny, index in place.items():
      assert scores.scores[row, tiny] == pytest.approx(want[index], abs=2e-4)

  flags = flagging.flag_scores(scores, 20.0, min_positives=0)
  assert set(np.unique(flags.cls)) <= {0, 1, 3, 4}
  positives = [set(np.flatnonzero(c["positives"])) | set(np.flatnonzero(
      c["explicit_negatives"])) for c in examples.iterate(train_dir)]
  ids = [c["clip_id"] for c in examples.iterate(train_dir)]
  by_id = dict(zip(ids, positives))
  for c in (0, 1, 3, 4):
    implicit = sorted((k for k in scores.clip_ids if c not in by_id[k]),
                      key=lambda k: (-scores.scores[list(scores.clip_ids).index(k), c], k))
    want = set(implicit[:int(np.floor(len(implicit) * 20 / 100 + 1e-9))])
    got = {str(scores.clip_ids[i]) for i in flags.clip[flags.cls == c]}
    assert got == want


@pytest.mark.end_to_end
def test_a_sweep_takes_yamnet_as_its_teacher(tiny_examples, tmp_path):
  """tfsk_sweep --teacher=yamnet.h5: the train set is scored by the weights file, the flags
  and students come from its scores, the classes it does not know are never flagged, and
  the p = 0 run is still the baseline."""
  from tf_skeptical import flagging, scoring, sweep, training
  from tf_skeptical.data import examples
  from tf_skeptical.util import files, provenance
  from conftest import TINY_TRAIN
  train_dir, eval_dir = tiny_examples
  info = examples.read_info(train_dir)
  weights = str(tmp_path / "yamnet.h5")
  write_yamnet(weights, yamnet_arrays(np.random.default_rng(8)))
  mids = list(YAMNET_MIDS)
  for tiny, index in {0: 3, 1: 40, 2: 100, 4: 7}.items():  # 3 and 5 unknown
    mids[index] = info.class_map.mids[tiny]
  write_class_map(str(tmp_path / pretrained.YAMNET_CLASS_MAP), mids)
  work = str(tmp_path / "sweep")
  cfg = sweep.SweepConfig(train=training.TrainConfig(**dict(TINY_TRAIN, epochs=1)),
                          percents=(0.0, 10.0), max_percent=10.0, seeds=1, score_workers=1,
                          teacher=weights, complete_reference=False,
                          perfect_mask_reference=False, flag_min_positives=0, jobs=1)
  table = sweep.run(train_dir, eval_dir, work, cfg).table
  weights_id = provenance.file_id(weights)
  manifest = files.read_json(os.path.join(work, sweep.SCORES, scoring.MANIFEST))
  assert manifest["model_id"] == weights_id
  assert manifest["unknown_classes"] == [info.class_map.display_names[c] for c in (3, 5)]
  flags = flagging.read_flags(os.path.join(work, sweep.FLAGS, flagging.FLAGS_FILE))
  assert flags.made_from["model_id"] == weights_id
  assert flags.rank.size and set(np.unique(flags.cls)) <= {0, 1, 2, 4}
  assert [r["discard_percent"] for r in table] == [0.0, 10.0]
  assert table[1]["teacher"] == "the pretrained yamnet.h5"
  student = files.read_json(os.path.join(sweep.row_dir(work, table[1]), training.RESULT))
  assert student["flags"]["model_id"] == weights_id and student["masked_entries"] > 0
  baseline = files.read_json(os.path.join(sweep.run_dir(work, 0.0), training.RESULT))
  assert baseline["masked_entries"] == 0 and baseline["init_from"] is None


def test_the_backbone_takes_its_share_of_each_update_and_none_when_frozen():
  """Fine-tuning: twin models from the same weights and batch; with the backbone's share at
  0.5 every backbone weight moves exactly half as far as at 1, the head as far; at 0 the
  backbone and its BatchNorm statistics do not move at all, the head does."""
  import keras
  import tensorflow as tf
  from tf_skeptical.masked_loss import MaskedBCEModel
  rng = np.random.default_rng(2)
  x = rng.normal(0, 1, (8, 96, 64)).astype(np.float32)
  y = {"labels": (rng.random((8, 5)) < 0.3).astype(np.float32),
       "mask": np.ones((8, 5), np.float32)}
  batch = tf.data.Dataset.from_tensors((x, y))
  keras.utils.set_random_seed(0)
  # The start: one step of plain training, whose BatchNorm statistics (momentum 0) are the
  # batch's, as a pretrained network's are its data's (at initialisation they are not, and
  # the frozen network's features vanish).
  start = MaskedBCEModel.wrap(models.mobilenet_v1((96, 64), 5, 0.25, bn_momentum=0.0))
  start.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
  start.fit(batch, epochs=1, verbose=0)
  twins = {}
  for share in (1.0, 0.5, 0.0):
    model = MaskedBCEModel.wrap(models.mobilenet_v1((96, 64), 5, 0.25, bn_momentum=0.0))
    model.set_weights(start.get_weights())
    model.scaled_backbone = True
    model.backbone_scale.assign(share)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    model.fit(batch, epochs=1, verbose=0)
    twins[share] = model
  head = {"logits/kernel", "logits/bias"}
  for before, full, half, frozen in zip(start.weights, twins[1.0].weights, twins[0.5].weights,
                                        twins[0.0].weights):
    b, f, h, z = (np.asarray(w, np.float64) for w in (before, full, half, frozen))
    if before.path in head:
      np.testing.assert_allclose(h - b, f - b, rtol=1e-5, atol=1e-7)
      assert not np.allclose(z, b)
    elif before.trainable:
      np.testing.assert_allclose(h - b, 0.5 * (f - b), rtol=1e-4, atol=1e-7)
      np.testing.assert_array_equal(z, b)
    else:  # BatchNorm's moving statistics: updated in training mode, not when frozen
      np.testing.assert_array_equal(z, b)
  assert any(not w.trainable and not np.allclose(np.asarray(w), np.asarray(s))
             for w, s in zip(twins[1.0].weights, start.weights))
