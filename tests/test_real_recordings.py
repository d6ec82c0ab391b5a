"""The real-recordings set's generator (experiments.real_recordings) on recordings the test writes
in the packages' layouts: each recording's class, labels with their ancestors, missing
labels exactly the complete labels less the given ones, disjoint train and eval
recordings, and the same files for the same seed. Nothing is downloaded."""

import csv
import os

import numpy as np
import pytest

from experiments import real_recordings as real
from tf_skeptical.data import audio_io, ontology
from tf_skeptical.data.class_map import read_class_map
from tf_skeptical.datasets import layout

KITS = "hydrogen-drumkits/usr/share/hydrogen/data/drumkits"
STAMPS = "tuxpaint-stamps-default/usr/share/tuxpaint/stamps"
DRUMS = {"snare_01.wav": "Snare drum", "Kick-hard.wav": "Bass drum", "HH_closed.wav": "Hi-hat",
         "crash_2.wav": "Cymbal", "tom_low.wav": "Drum", "cowbell.wav": None}


@pytest.fixture
def root(tmp_path):
  rng = np.random.default_rng(0)
  for kit in ("KitA", "KitB", "KitC"):
    folder = tmp_path / KITS / kit
    folder.mkdir(parents=True)
    for name in DRUMS:
      burst = rng.standard_normal(8000) * np.exp(-np.arange(8000) / 2000)
      audio_io.write_wav(str(folder / name), (0.3 * burst).astype(np.float32), 22050)
  return tmp_path


def test_each_recording_gets_its_class(tmp_path):
  for rel in ("animals/mammals/dogs/dog.ogg", "animals/mammals/dogs/dog_fr.ogg",
              "animals/mammals/dogs/dog_desc_en_GB.ogg", "symbols/math/7_de.ogg",
              "household/toilet.ogg", "household/unknown_thing.ogg"):
    path = tmp_path / STAMPS / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
  (tmp_path / KITS / "K").mkdir(parents=True)
  for name in DRUMS:
    (tmp_path / KITS / "K" / name).write_bytes(b"")
  got = {os.path.relpath(p, tmp_path).split("/")[-1]: c for _, p, c in
         real.recordings(str(tmp_path))}
  assert got == {"dog.ogg": "Dog", "dog_fr.ogg": "Speech", "dog_desc_en_GB.ogg": "Speech",
                 "toilet.ogg": "Toilet flush",
                 **{n: c for n, c in DRUMS.items() if c}}


def test_labels_missing_labels_and_splits(root, tmp_path):
  p = real.RealParams(train_clips=120, eval_clips=40, missing_rate=0.05,
                      parent_missing_rate=0.5, seed=3)
  out = str(tmp_path / "set")
  summary = real.generate(out, real.recordings(str(root)), p)
  cmap = read_class_map(os.path.join(out, "class_labels_indices.csv"))
  names = list(cmap.display_names)
  assert set(names) == {"Snare drum", "Bass drum", "Hi-hat", "Cymbal", "Drum", "Percussion",
                        "Musical instrument", "Music"}
  tree = ontology.read_ontology(os.path.join(out, layout.ONTOLOGY), cmap.mids)
  up = {names[c]: {names[a] for a in tree.ancestors[c]} for c in range(len(names))}
  assert up["Snare drum"] == {"Drum", "Percussion", "Musical instrument", "Music"}
  assert up["Hi-hat"] == {"Percussion", "Musical instrument", "Music"}

  def labels(name):
    rows = {}
    with open(os.path.join(out, name)) as f:
      for row in csv.reader((l for l in f if not l.startswith("#")), skipinitialspace=True):
        mids = row[3].strip().strip('"').split(",")
        rows[row[0]] = {names[cmap.mids.index(m)] for m in mids if m}
    return rows
  train, evaluation = labels("train_segments.csv"), labels("eval_segments.csv")
  assert len(train) == 120 and len(evaluation) == 40
  for clip in evaluation.values():  # complete: every label's ancestors are there
    assert clip and all(up[c] <= clip for c in clip)
  missing = {}
  with open(os.path.join(out, "train_missing_labels.csv")) as f:
    for row in list(csv.reader(f))[1:]:
      missing.setdefault(row[0], set()).add(row[2])
  assert sum(len(v) for v in missing.values()) == summary["train_missing_labels"] > 0
  for clip_id, given in train.items():
    complete = given | missing.get(clip_id, set())
    assert given and not given & missing.get(clip_id, set())
    assert all(up[c] <= complete for c in complete)  # the truth completes the ontology
  with open(os.path.join(out, real.SOURCES)) as f:
    sources = list(csv.DictReader(f))
  by_split = {s: {r["path"] for r in sources if r["split"] == s} for s in ("train", "eval")}
  assert by_split["train"] and by_split["eval"] and not by_split["train"] & by_split["eval"]
  again = str(tmp_path / "again")
  real.generate(again, real.recordings(str(root)), p)
  for name in ("train_segments.csv", "train_missing_labels.csv", "audio/eval000007.wav"):
    with open(os.path.join(out, name), "rb") as a, open(os.path.join(again, name), "rb") as b:
      assert a.read() == b.read(), name


def test_the_pretraining_pool_shares_no_recording_with_the_real_set(tmp_path):
  """experiments.pretrain_pool: spoken letters are Speech, drum samples get the real set's
  drum classes, and a file whose bytes equal one of the real set's is left out, whatever its
  name or package."""
  from experiments import pretrain_pool
  real_root, pool_root = tmp_path / "real", tmp_path / "pool"
  shared = real_root / KITS / "KitA" / "snare_01.wav"
  shared.parent.mkdir(parents=True)
  shared.write_bytes(b"RIFF the same bytes")
  files = {"klettres-data/usr/share/klettres/de/alpha/a.ogg": b"a",
           "klettres-data/usr/share/klettres/fr/syllab/ba.ogg": b"ba",
           "lmms-common/usr/share/lmms/samples/drums/snare01.ogg": b"snare",
           "lmms-common/usr/share/lmms/samples/drums/zap01.ogg": b"zap",
           "lmms-common/usr/share/lmms/samples/effects/explode01.ogg": b"boom",
           "hydrogen-data/usr/share/hydrogen/data/drumkits/GMRockKit/Kick-Hard.wav": b"kick",
           "hydrogen-data/usr/share/hydrogen/data/drumkits/GMRockKit/Snare-Med.wav":
           b"RIFF the same bytes"}
  for rel, data in files.items():
    (pool_root / rel).parent.mkdir(parents=True, exist_ok=True)
    (pool_root / rel).write_bytes(data)
  got = {os.path.basename(p): c for _, p, c in
         pretrain_pool.recordings(str(pool_root), str(real_root))}
  assert got == {"a.ogg": "Speech", "ba.ogg": "Speech", "snare01.ogg": "Snare drum",
                 "explode01.ogg": "Explosion", "Kick-Hard.wav": "Bass drum"}
