"""A tagger pretrained on recordings disjoint from the real-recordings set: the start that
`python -m experiments.treatments --set=real --pretrained` fine-tunes, as a user would
fine-tune YAMNet.

  python -m experiments.pretrain_pool --work_dir=/tmp/tfsk_bench

Sources: other Debian packages than the real-recordings set's, with their licences in
usr/share/doc/<package>/copyright: `klettres-data` (letters and syllables spoken by
people in many languages: Speech), `lmms-common` and `hydrogen-data` (drum samples; the
classes from their file names as the real set's drum kits are read), `lmms-common`'s and
`tuxtype-data`'s explosions. A recording whose bytes equal one of the real set's is left
out (hydrogen-data's kits and hydrogen-drumkits could share files), so that no sound the
real set's eval clips hold was heard in pretraining. What could be found here covers 10 of
the real set's classes (speech and percussion, with their ancestors); no registry package
here ships animal, tool or vehicle recordings that are not the real set's own.

The pool is mixed into clips like the real set (experiments.real_recordings), with complete
labels, prepared with YAMNet's frontend, and a MobileNetV1 at the real set's width is
trained on it (the run directory is what --init_from takes). Everything is cached under
<work_dir>/pretrain_pool.
"""

import glob
import hashlib
import json
import os
from typing import List, Tuple

import harness as common
from experiments import real_recordings

PACKAGES = ("klettres-data", "lmms-common", "hydrogen-data", "tuxtype-data")
EXPLOSIONS = ("lmms/samples/effects/explode01.ogg", "tuxtype/sounds/explosion.wav")
PARAMS = real_recordings.RealParams(train_clips=6000, eval_clips=600, missing_rate=0.0,
                                    parent_missing_rate=0.0, seed=1,
                                    max_sources_per_class=5000)
EPOCHS = 10


def _digest(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def recordings(root: str, real_root: str) -> List[Tuple[str, str, str]]:
  """(package, path, class) of the pool's recordings, sorted; none equal to a file of the
  real set's packages (unpacked under real_root)."""
  taken = {_digest(p) for p in glob.glob(os.path.join(real_root, "**", "*"), recursive=True)
           if p.lower().endswith((".wav", ".flac", ".ogg")) and os.path.isfile(p)}
  out = []
  share = os.path.join(root, "klettres-data", "usr/share/klettres")
  for path in sorted(glob.glob(os.path.join(share, "*", "*", "*.ogg"))):
    out.append(("klettres-data", path, "Speech"))
  for package, sub in (("lmms-common", "usr/share/lmms/samples/drums"),
                       ("hydrogen-data", "usr/share/hydrogen/data/drumkits")):
    for path in sorted(glob.glob(os.path.join(root, package, sub, "**", "*"), recursive=True)):
      if not path.lower().endswith((".wav", ".flac", ".ogg")):
        continue
      name = os.path.basename(path)
      cls = next((c for c, pattern in real_recordings.DRUM_SAMPLES if pattern.search(name)),
                 None)
      if cls:
        out.append((package, path, cls))
  for package, rel in zip(("lmms-common", "tuxtype-data"), EXPLOSIONS):
    path = os.path.join(root, package, "usr/share", rel)
    if os.path.exists(path):
      out.append((package, path, "Explosion"))
  return [r for r in out if _digest(r[1]) not in taken]


def pretrained(work_dir: str, real_root: str) -> str:
  """The pretrained run's directory (trained once, cached): a MobileNetV1 at the real set's
  width (0.25) trained on the pool with complete labels."""
  from tf_skeptical import training
  work = os.path.join(work_dir, "pretrain_pool")
  root = real_recordings.fetch(os.path.join(work, "debs"), PACKAGES)
  train_dir, eval_dir, _, _ = real_recordings.prepared(
      work, PARAMS, found=lambda: recordings(root, real_root), what="pretraining pool")
  model_dir = os.path.join(work, "run")
  if not os.path.exists(os.path.join(model_dir, "result.json")):
    training.train(train_dir, model_dir, training.TrainConfig(width=0.25, epochs=EPOCHS),
                   eval_dir=eval_dir)
  return model_dir


def main():
  args = common.parse_args(__doc__)
  real_work = os.path.join(args.work_dir, "real_recordings")
  real_root = real_recordings.fetch(os.path.join(real_work, "debs"))
  model_dir = pretrained(args.work_dir, real_root)
  with open(os.path.join(model_dir, "result.json")) as f:
    print(model_dir, json.load(f).get("eval"))


if __name__ == "__main__":
  main()
