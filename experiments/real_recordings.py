"""A dataset of real recordings with known missing labels, in the built-in set's layout.

  python -m experiments.real_recordings --out_dir=/tmp/real [--train_clips=3000] [--eval_clips=1000]

Sources: recordings that Debian packages ship with their licences (each package's
usr/share/doc/<package>/copyright): `tuxpaint-stamps-default` (animal, household, tool,
instrument and vehicle sound effects, and the stamps' spoken names in many languages, which
are Speech) and `hydrogen-drumkits` (drum kit samples). `apt-get download` fetches them
into --debs_dir, unpacked there once (cached). Each recording maps to one AudioSet class
(AudioSet's mids and names); the parents among those classes follow AudioSet's ontology
(written as ontology.json, AudioSet's layout).

Clips of 2 s at 16 kHz mix 1-3 recordings of distinct classes at random levels over faint
noise; a clip holds each mixed recording's class and all of its ancestors. Train and eval
clips draw from disjoint recordings. Train labels: a nomination system that misses present
events as the built-in set's does (class-dependent; quiet and short events more often), at
`missing_rate` of the implicit negatives, and a parent present only through a child loses
its label with `parent_missing_rate` (AudioSet's raters often gave the child alone). The
eval labels are complete. Deterministic by seed (the packages' files, sorted, and the seed).

Writes audio/, train_segments.csv, eval_segments.csv, class_labels_indices.csv,
train_missing_labels.csv, generation.json (the names of tf_skeptical.datasets.layout), ontology.json and
sources.csv (each recording's package, path, class and split).
"""

import argparse
import csv
import dataclasses
import glob
import os
import re
import subprocess
from typing import Dict, List, Tuple

import numpy as np

PACKAGES = ("tuxpaint-stamps-default", "hydrogen-drumkits")
SOURCES = "sources.csv"

# AudioSet classes (mid, display name) and each one's parents among them (AudioSet's
# ontology, restricted to these classes).
CLASSES = {
    "Speech": ("/m/09x0r", ()),
    "Animal": ("/m/0jbk", ()),
    "Domestic animals, pets": ("/m/068hy", ("Animal",)),
    "Dog": ("/m/0bt9lr", ("Domestic animals, pets",)),
    "Cat": ("/m/01yrx", ("Domestic animals, pets",)),
    "Livestock, farm animals, working animals": ("/m/0ch8v", ("Animal",)),
    "Horse": ("/m/03k3r", ("Livestock, farm animals, working animals",)),
    "Cattle, bovinae": ("/m/01xq0k1", ("Livestock, farm animals, working animals",)),
    "Pig": ("/m/068zj", ("Livestock, farm animals, working animals",)),
    "Goat": ("/m/03fwl", ("Livestock, farm animals, working animals",)),
    "Sheep": ("/m/07bgp", ("Livestock, farm animals, working animals",)),
    "Fowl": ("/m/025rv6n", ("Livestock, farm animals, working animals",)),
    "Chicken, rooster": ("/m/09b5t", ("Fowl",)),
    "Turkey": ("/m/01rd7k", ("Fowl",)),
    "Duck": ("/m/09ddx", ("Fowl",)),
    "Goose": ("/m/0dbvp", ("Fowl",)),
    "Wild animals": ("/m/01280g", ("Animal",)),
    "Roaring cats (lions, tigers)": ("/m/0cdnk", ("Wild animals",)),
    "Bird": ("/m/015p6", ("Wild animals",)),
    "Bird vocalization, bird call, bird song": ("/m/020bb7", ("Bird",)),
    "Crow": ("/m/04s8yn", ("Bird",)),
    "Owl": ("/m/09d5_", ("Bird",)),
    "Canidae, dogs, wolves": ("/m/01z5f", ("Wild animals",)),
    "Rodents, rats, mice": ("/m/06hps", ("Wild animals",)),
    "Mouse": ("/m/04rmv", ("Rodents, rats, mice",)),
    "Insect": ("/m/03vt0", ("Wild animals",)),
    "Mosquito": ("/m/09f96", ("Insect",)),
    "Bee, wasp, etc.": ("/m/01h3n", ("Insect",)),
    "Frog": ("/m/09ld4", ("Wild animals",)),
    "Whale vocalization": ("/m/032n05", ("Wild animals",)),
    "Music": ("/m/04rlf", ()),
    "Musical instrument": ("/m/04szw", ("Music",)),
    "Percussion": ("/m/0l14md", ("Musical instrument",)),
    "Drum kit": ("/m/02hnl", ("Percussion",)),
    "Drum": ("/m/026t6", ("Percussion",)),
    "Snare drum": ("/m/06rvn", ("Drum",)),
    "Bass drum": ("/m/0bm02", ("Drum",)),
    "Cymbal": ("/m/01qbl", ("Percussion",)),
    "Hi-hat": ("/m/03qtq", ("Percussion",)),
    "Bowed string instrument": ("/m/0l14_3", ("Musical instrument",)),
    "Violin, fiddle": ("/m/07y_7", ("Bowed string instrument",)),
    "Cello": ("/m/01xqw", ("Bowed string instrument",)),
    "Tools": ("/m/07k1x", ()),
    "Hammer": ("/m/03l9g", ("Tools",)),
    "Sawing": ("/m/01b82r", ("Tools",)),
    "Scissors": ("/m/01lsmm", ()),
    "Glass": ("/m/039jq", ()),
    "Vacuum cleaner": ("/m/0d31p", ()),
    "Toilet flush": ("/m/01jt3m", ()),
    "Explosion": ("/m/014zdl", ()),
    "Fireworks": ("/m/0g6b5", ("Explosion",)),
    "Thunderstorm": ("/m/0jb2l", ()),
    "Thunder": ("/m/0ngt1", ("Thunderstorm",)),
    "Vehicle": ("/m/07yv9", ()),
    "Motor vehicle (road)": ("/m/012f08", ("Vehicle",)),
    "Emergency vehicle": ("/m/03j1ly", ("Motor vehicle (road)",)),
    "Fire engine, fire truck (siren)": ("/m/012ndj", ("Emergency vehicle",)),
}

# tuxpaint-stamps-default: a stamp's own sound (stamps/<path>.ogg) -> its class.
TUXPAINT = {
    "animals/mammals/dogs/dog": "Dog", "animals/mammals/dogs/fox": "Canidae, dogs, wolves",
    "seasonal/halloween/blackcat": "Cat", "animals/mammals/cats/lion":
    "Roaring cats (lions, tigers)", "animals/mammals/cats/tiger": "Roaring cats (lions, tigers)",
    "animals/mammals/equines/horse": "Horse", "animals/mammals/bovines/cow": "Cattle, bovinae",
    "animals/mammals/bovines/cow_white": "Cattle, bovinae",
    "animals/mammals/bovines/bull": "Cattle, bovinae",
    "animals/mammals/bovines/bison": "Cattle, bovinae", "animals/mammals/pig": "Pig",
    "animals/mammals/pig_golden": "Pig", "animals/mammals/pig_golden2": "Pig",
    "animals/mammals/bovines/goat": "Goat", "animals/mammals/bovines/mountaingoat": "Goat",
    "animals/mammals/bovines/sheep": "Sheep", "animals/mammals/bovines/sheep_lamb": "Sheep",
    "animals/mammals/bovines/ram": "Sheep", "animals/birds/rooster": "Chicken, rooster",
    "animals/birds/hen": "Chicken, rooster", "animals/birds/turkey": "Turkey",
    "animals/birds/duck": "Duck", "animals/birds/drake": "Duck",
    "animals/birds/gander": "Goose", "animals/birds/crow": "Crow", "animals/birds/owl": "Owl",
    **{f"animals/birds/{b}": "Bird vocalization, bird call, bird song"
       for b in ("blackbird", "lark", "cuckoo", "seagull", "quetzal", "tucan")},
    "animals/mammals/rodents/mouse": "Mouse", "animals/insects/mosquito": "Mosquito",
    "animals/insects/bee": "Bee, wasp, etc.", "animals/insects/hornet": "Bee, wasp, etc.",
    "animals/amphibians/frog": "Frog", "animals/mammals/aquatic/whale": "Whale vocalization",
    "animals/mammals/aquatic/orca": "Whale vocalization",
    "hobbies/music/percussion/drumkit": "Drum kit",
    "hobbies/music/percussion/drum_tomtom_floor": "Drum",
    "hobbies/music/percussion/cymbal_crash": "Cymbal",
    "hobbies/music/string/violin": "Violin, fiddle", "hobbies/music/string/cello": "Cello",
    "household/tools/hammer": "Hammer", "household/tools/mallet_metal": "Hammer",
    "household/tools/saw": "Sawing", "household/arttools/scissors_small_open": "Scissors",
    "household/arttools/scissors_small_closed": "Scissors", "household/dishes/glass": "Glass",
    "household/vacuum_cleaner": "Vacuum cleaner", "household/toilet": "Toilet flush",
    "seasonal/newyears/fireworks": "Fireworks", "naturalforces/lightningbolt": "Thunder",
    "vehicles/emergency/firetruck": "Fire engine, fire truck (siren)",
}
# A stamp's spoken name or description: <stamp>_<language>.ogg (Speech, many voices).
_SPOKEN = re.compile(r"_(desc_)?[a-z]{2,3}(_[A-Za-z]{2,4})?\.ogg$")
# hydrogen-drumkits: a sample's class from its file name (first match).
DRUM_SAMPLES = (("Snare drum", re.compile(r"snare|\bsd[_\d]|_sn\b", re.I)),
                ("Bass drum", re.compile(r"kick|bass.?drum|\bbd[_\d]", re.I)),
                ("Hi-hat", re.compile(r"h(i|igh)?.?hat|\bhh", re.I)),
                ("Cymbal", re.compile(r"crash|ride|cymbal|china|splash", re.I)),
                ("Drum", re.compile(r"\btom|tom[_\d-]", re.I)))


@dataclasses.dataclass(frozen=True)
class RealParams:
  train_clips: int = 3000
  eval_clips: int = 1000
  clip_seconds: float = 2.0
  min_events: int = 1
  max_events: int = 3
  missing_rate: float = 0.02  # missed own labels, as a share of the implicit negatives
  parent_missing_rate: float = 0.5  # a parent present only through a child loses its label
  max_sources_per_class: int = 200  # Speech has thousands of spoken names
  eval_share: float = 0.3  # of each class's recordings, held out for the eval clips
  seed: int = 0


def fetch(debs_dir: str, packages=PACKAGES) -> str:
  """The packages downloaded (apt-get download) and unpacked into debs_dir/root, once."""
  root = os.path.join(debs_dir, "root")
  done = os.path.join(root, ".unpacked")
  if os.path.exists(done):
    return root
  os.makedirs(root, exist_ok=True)
  for package in packages:
    if not glob.glob(os.path.join(debs_dir, f"{package}_*.deb")):
      subprocess.run(["apt-get", "download", package], cwd=debs_dir, check=True)
    deb, = glob.glob(os.path.join(debs_dir, f"{package}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", deb, os.path.join(root, package)], check=True)
  open(done, "w").close()
  return root


def recordings(root: str) -> List[Tuple[str, str, str]]:
  """(package, path, class) of every recording used, sorted."""
  out = []
  stamps = os.path.join(root, "tuxpaint-stamps-default", "usr/share/tuxpaint/stamps")
  for path in sorted(glob.glob(os.path.join(stamps, "**", "*.ogg"), recursive=True)):
    rel = os.path.relpath(path, stamps)[:-len(".ogg")]
    if rel in TUXPAINT:
      out.append(("tuxpaint-stamps-default", path, TUXPAINT[rel]))
    elif _SPOKEN.search(os.path.basename(path)) and not rel.startswith("symbols/"):
      out.append(("tuxpaint-stamps-default", path, "Speech"))
  kits = os.path.join(root, "hydrogen-drumkits", "usr/share/hydrogen/data/drumkits")
  for path in sorted(glob.glob(os.path.join(kits, "**", "*"), recursive=True)):
    if not path.lower().endswith((".wav", ".flac")):
      continue
    name = os.path.basename(path)
    cls = next((c for c, pattern in DRUM_SAMPLES if pattern.search(name)), None)
    if cls:
      out.append(("hydrogen-drumkits", path, cls))
  return out


def _ancestors() -> Dict[str, set]:
  memo = {}

  def up(name):
    if name not in memo:
      memo[name] = set()
      for parent in CLASSES[name][1]:
        memo[name] |= {parent} | up(parent)
    return memo[name]
  return {name: up(name) for name in CLASSES}


def _load(path: str) -> np.ndarray:
  """A recording as 16 kHz mono float32, trimmed of leading and trailing near-silence; a
  WAV through scipy (24-bit PCM too), other formats through tensorflow-io."""
  from math import gcd
  import scipy.io.wavfile
  import scipy.signal
  if path.lower().endswith(".wav"):
    rate, x = scipy.io.wavfile.read(path)
    if x.dtype.kind in "iu":
      bits = 8 * x.dtype.itemsize
      x = (x.astype(np.float64) - (128 if x.dtype.kind == "u" else 0)) / 2 ** (bits - 1)
  else:
    import tensorflow as tf
    from tf_skeptical.data import audio_io
    x, rate = audio_io.decode_audio(tf.constant(path))
    x, rate = x.numpy(), int(rate.numpy())
  x = np.asarray(x, np.float64)
  x = x.mean(axis=1) if x.ndim == 2 else x
  if rate != 16000:
    g = gcd(int(rate), 16000)
    x = scipy.signal.resample_poly(x, 16000 // g, int(rate) // g)
  x = np.nan_to_num(x).astype(np.float32)
  loud = np.flatnonzero(np.abs(x) > 0.02 * (np.abs(x).max() + 1e-9))
  return x[loud[0]:loud[-1] + 1] if loud.size else x


def _readable(paths):
  """{path: samples} of the recordings that read as at least 0.1 s of sound, and the
  unreadable ones with why."""
  from tqdm import tqdm
  audio, skipped = {}, {}
  for path in tqdm(paths, desc="reading recordings", unit="file"):
    try:
      x = _load(path)
    except Exception as e:  # noqa: BLE001  (a file either side of the readers: listed)
      skipped[path] = str(e).splitlines()[0][:200]
      continue
    if len(x) < 1600 or not np.abs(x).max() > 0:
      skipped[path] = "shorter than 0.1 s of sound"
      continue
    audio[path] = x
  return audio, skipped


def generate(out_dir: str, found: List[Tuple[str, str, str]], p: RealParams = RealParams(),
             what: str = "real recordings") -> dict:
  """Writes the dataset of the recordings `found` ((package, path, class), as `recordings`
  lists them) into out_dir (module docstring); returns generation.json."""
  from tqdm import tqdm
  from tf_skeptical.datasets import builtin_data, layout
  from tf_skeptical.util import files
  from tf_skeptical.data import ontology
  from tf_skeptical.datasets.builtin_data import Event
  from tf_skeptical.data.class_map import ClassMap, write_class_map
  from tf_skeptical.data.segments import Segment, write_segments
  rng = np.random.default_rng(p.seed)
  names = sorted({c for _, _, c in found} | {a for _, _, c in found for a in _ancestors()[c]},
                 key=list(CLASSES).index)
  index = {n: i for i, n in enumerate(names)}
  ancestors = {n: sorted(index[a] for a in _ancestors()[n]) for n in names}
  cmap = ClassMap(tuple(CLASSES[n][0] for n in names), tuple(names))
  by_class: Dict[str, List[str]] = {}
  for _, path, cls in found:
    by_class.setdefault(cls, []).append(path)
  capped = {cls: [paths[i] for i in sorted(rng.permutation(len(paths))[:p.max_sources_per_class])]
            for cls, paths in sorted(by_class.items())}
  audio, skipped = _readable(sorted(x for paths in capped.values() for x in paths))
  split_of, pools = {}, {"train": {}, "eval": {}}
  for cls, paths in capped.items():
    paths = [x for x in paths if x in audio]
    held = max(1, int(round(p.eval_share * len(paths)))) if len(paths) > 1 else 0
    order = rng.permutation(len(paths))
    for k, i in enumerate(order):
      split = "eval" if k < held else "train"
      split_of[paths[i]] = split
      pools[split].setdefault(cls, []).append(paths[i])
  files.makedirs(os.path.join(out_dir, layout.AUDIO_DIR))
  write_class_map(cmap, os.path.join(out_dir, layout.CLASS_MAP))
  parent = [-1] * len(names)
  for n in names:  # ontology.json wants one parent each; these classes have at most one
    if CLASSES[n][1]:
      parent[index[n]] = index[CLASSES[n][1][0]]
  ontology.write_ontology(os.path.join(out_dir, layout.ONTOLOGY), cmap.mids, names, parent)
  root = os.path.commonpath([path for _, path, _ in found])
  with files.atomic_write(os.path.join(out_dir, SOURCES)) as f:
    w = csv.writer(f)
    w.writerow(["package", "path", "class", "split"])
    for package, path, cls in found:
      if path in split_of or path in skipped:
        w.writerow([package, os.path.relpath(path, root), cls,
                    split_of.get(path) or f"unreadable: {skipped[path]}"])

  n = int(round(p.clip_seconds * 16000))
  clips = {}
  for split, count in (("train", p.train_clips), ("eval", p.eval_clips)):
    usable = sorted(pools[split])
    clips[split] = []
    for _ in range(count):
      k = int(rng.integers(p.min_events, p.max_events + 1))
      chosen = [usable[i] for i in rng.choice(len(usable), min(k, len(usable)), replace=False)]
      events = []
      for cls in chosen:
        path = pools[split][cls][int(rng.integers(len(pools[split][cls])))]
        x = audio[path]
        length = min(len(x), n)
        offset = int(rng.integers(0, len(x) - length + 1))
        start = int(rng.integers(0, n - length + 1))
        events.append((Event(index[cls], float(rng.uniform(-30, -6)), start / 16000,
                             length / 16000), x[offset:offset + length], start))
      clips[split].append(events)
  class_weight = rng.uniform(0.2, 2.0, size=len(names))
  train_events = [[e for e, _, _ in evs] for evs in clips["train"]]
  present = []
  for evs in train_events:
    own = {e.cls for e in evs}
    present.append((own, {a for c in own for a in ancestors[names[c]]} - own))
  implicit = sum(len(names) - len(own | implied) for own, implied in present)
  wanted = p.missing_rate * implicit / (1 - p.missing_rate)
  drop = builtin_data.scale_to_rate(builtin_data.drop_weights(train_events, class_weight),
                                    wanted)
  dropped = rng.random(drop.size) < drop
  segments = {"train": [], "eval": []}
  truth, k = [], 0
  for split, all_events in clips.items():
    for i, evs in enumerate(tqdm(all_events, desc=f"mixing {split} clips", unit="clip",
                                 leave=False)):
      clip_id = f"{split}{i:06d}"
      own = {e.cls for e, _, _ in evs}
      implied = {a for c in own for a in ancestors[names[c]]} - own
      observed = own | implied
      if split == "train":
        for e, _, _ in evs:
          if dropped[k]:
            observed.discard(e.cls)
          k += 1
        for c in sorted(implied):
          if rng.random() < p.parent_missing_rate:
            observed.discard(c)
        if not observed:  # a clip keeps one label, as the nomination gave it one
          observed.add(min(own))
        truth += [[clip_id, cmap.mids[c], names[c]] for c in sorted((own | implied) - observed)]
      x = rng.standard_normal(n) * 10 ** (rng.uniform(-50, -40) / 20)
      for e, sound, start in evs:
        builtin_data.add_event(x, sound, start, e.level_db, 16000)
      builtin_data.write_pcm_wav(os.path.join(out_dir, layout.AUDIO_DIR,
                                              clip_id + ".wav"), x, 16000, 1)
      segments[split].append(Segment(clip_id, 0.0, p.clip_seconds, tuple(sorted(observed)),
                                     (), 0))
  write_segments(segments["train"], cmap, os.path.join(out_dir, layout.TRAIN_SEGMENTS),
                 header=f"{what}, train: labels miss some present events"
                 if p.missing_rate or p.parent_missing_rate else f"{what}, train")
  write_segments(segments["eval"], cmap, os.path.join(out_dir, layout.EVAL_SEGMENTS),
                 header=f"{what}, eval: complete labels")
  with files.atomic_write(os.path.join(out_dir, layout.TRUTH)) as f:
    w = csv.writer(f)
    w.writerow(["clip_id", "mid", "display_name"])
    w.writerows(truth)
  positives = np.zeros(len(names), int)
  for s in segments["train"]:
    positives[list(s.positives)] += 1
  summary = dict(params=dataclasses.asdict(p), classes=len(names),
                 recordings={s: sum(len(v) for v in pools[s].values()) for s in pools},
                 unreadable_recordings=len(skipped),
                 train_missing_labels=len(truth),
                 train_positives_per_class=dict(zip(names, positives.tolist())))
  files.write_json(os.path.join(out_dir, layout.SUMMARY), summary)  # last: complete
  return summary


def prepared(work_dir: str, p: RealParams = RealParams(), found=None,
             what: str = "real recordings"):
  """The set generated and prepared once under work_dir: (train examples, eval examples,
  truth CSV, ontology.json). found: a function of no argument that lists the recordings
  (default: this set's packages, downloaded into work_dir/debs)."""
  from tf_skeptical.datasets import layout
  from tf_skeptical.data import examples
  from tf_skeptical import prepare
  data = os.path.join(work_dir, "data")
  if not os.path.exists(os.path.join(data, layout.SUMMARY)):
    found = found or (lambda: recordings(fetch(os.path.join(work_dir, "debs"))))
    generate(data, found(), p, what)
  out = []
  for split, csv_name in (("train", layout.TRAIN_SEGMENTS),
                          ("eval", layout.EVAL_SEGMENTS)):
    ex = os.path.join(work_dir, "examples", split)
    if not os.path.exists(os.path.join(ex, examples.MANIFEST)):
      prepare.prepare_audio(os.path.join(data, csv_name),
                            os.path.join(data, layout.AUDIO_DIR),
                            os.path.join(data, layout.CLASS_MAP), ex,
                            clip_seconds=p.clip_seconds)
    out.append(ex)
  return out[0], out[1], os.path.join(data, layout.TRUTH), os.path.join(data, layout.ONTOLOGY)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out_dir", required=True)
  parser.add_argument("--debs_dir", default=None, help="Default: <out_dir>/../debs")
  parser.add_argument("--train_clips", type=int, default=RealParams.train_clips)
  parser.add_argument("--eval_clips", type=int, default=RealParams.eval_clips)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  debs = args.debs_dir or os.path.join(os.path.dirname(os.path.abspath(args.out_dir)), "debs")
  os.makedirs(debs, exist_ok=True)
  summary = generate(args.out_dir, recordings(fetch(debs)), RealParams(
      train_clips=args.train_clips, eval_clips=args.eval_clips, seed=args.seed))
  print({k: v for k, v in summary.items() if k != "train_positives_per_class"})


if __name__ == "__main__":
  main()
