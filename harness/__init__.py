"""What bench/ (speed and size) and experiments/ (what the method does to a tagger) share:
their command lines, the built-in data they run on, the rows they measure and the
RESULTS.md each writes from its stored rows."""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")  # speed and size: ratios measured side by side
EXPERIMENTS = os.path.join(ROOT, "experiments")  # what the method does to a tagger


def parse_args(description: str, extra: "argparse.ArgumentParser | None" = None):
  """The flags every benchmark takes, and a module's own (`extra`, a parser made with
  add_help=False) in the same namespace: --help lists them all, and the command line stays
  as given, so that the stored results record the whole command."""
  parser = argparse.ArgumentParser(description=description, parents=[extra] if extra else [])
  parser.add_argument("--quick", action="store_true", help="CI size: seconds, not minutes.")
  parser.add_argument("--work_dir", default="/tmp/tfsk_bench", help="Scratch space.")
  return parser.parse_args()


def report(name: str, rows: list, home: str = BENCH) -> None:
  """Prints rows (metric, value, target, holds) and saves them for home's RESULTS.md (home:
  BENCH or EXPERIMENTS)."""
  print(f"\n== {name}")
  for r in rows:
    target = r.get("target", "")
    holds = "" if r.get("holds") is None else ("holds" if r["holds"] else "MISSES")
    print(f"  {r['metric']:<58} {r['value']:>10.3f}  {target:<10} {holds}")
  results = os.path.join(home, "results")
  os.makedirs(results, exist_ok=True)
  with open(os.path.join(results, name + ".json"), "w") as f:
    json.dump(dict(rows=rows, commit=commit(), args=sys.argv[1:],
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())), f, indent=2)


def commit() -> str:
  """The repository's commit, marked when code (not docs) has uncommitted changes."""
  try:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True, check=True).stdout.strip()
    # Docs and the measurements' own outputs (results/) are not code.
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)*.md", ":(exclude)*/results/*"], cwd=ROOT, text=True,
                           capture_output=True, check=True).stdout.strip()
    return head + (" (with uncommitted changes)" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def row(metric, value, target=None, holds=None):
  return dict(metric=metric, value=float(value), target=target or "", holds=holds)


def builtin_examples(work_dir: str, clips: int, clip_seconds: float = 10.0):
  """Built-in train clips, generated and prepared once: returns (data dir, examples dir)."""
  from tf_skeptical.datasets import builtin_data
  from tf_skeptical.data import examples
  from tf_skeptical import prepare
  data = os.path.join(work_dir, f"builtin_{clips}x{clip_seconds:g}s")
  if not os.path.exists(os.path.join(data, builtin_data.SUMMARY)):
    builtin_data.generate(data, builtin_data.BuiltinDataParams(
        train_clips=clips, eval_clips=1, clip_seconds=clip_seconds))
  ex = os.path.join(data, "examples")
  if not os.path.exists(os.path.join(ex, examples.MANIFEST)):
    prepare.prepare_audio(os.path.join(data, builtin_data.TRAIN_SEGMENTS),
                          os.path.join(data, builtin_data.AUDIO_DIR),
                          os.path.join(data, builtin_data.CLASS_MAP), ex,
                          clip_seconds=clip_seconds)
  return data, ex


def builtin_dataset(work_dir: str, train_clips: int, eval_clips: int):
  """A built-in dataset with train and eval examples, generated and prepared once: returns
  (data dir, {"train": examples dir, "eval": examples dir})."""
  from tf_skeptical.datasets import builtin_data
  from tf_skeptical.data import examples
  from tf_skeptical import prepare
  data = os.path.join(work_dir, f"builtin_{train_clips}_{eval_clips}")
  params = builtin_data.BuiltinDataParams(train_clips=train_clips, eval_clips=eval_clips)
  if not os.path.exists(os.path.join(data, builtin_data.SUMMARY)):
    builtin_data.generate(data, params)
  dirs = {}
  for split, csv_name in (("train", builtin_data.TRAIN_SEGMENTS),
                          ("eval", builtin_data.EVAL_SEGMENTS)):
    dirs[split] = os.path.join(data, "examples", split)
    if not os.path.exists(os.path.join(dirs[split], examples.MANIFEST)):
      prepare.prepare_audio(os.path.join(data, csv_name),
                            os.path.join(data, builtin_data.AUDIO_DIR),
                            os.path.join(data, builtin_data.CLASS_MAP), dirs[split],
                            clip_seconds=params.clip_seconds)
  return data, dirs


DEMO_DONE = os.path.join("tfsk_work", "sweep", "results.csv")


def ensure_demo(why: str) -> None:
  """Runs tfsk_demo (about 14 minutes on 2 cores) into the repository's tfsk_work unless it
  has finished there; what needs it skips, and says so, if it fails."""
  if os.path.exists(os.path.join(ROOT, DEMO_DONE)):
    return
  print(f"-- tfsk_demo: {why}", flush=True)
  if subprocess.run([sys.executable, "-m", "tf_skeptical_bin.tfsk_demo"], cwd=ROOT).returncode:
    print("tfsk_demo failed: what reads it will skip", flush=True)


def demo_benchmark(name: str, description: str, **extra_args):
  """Arguments of a benchmark that trains at the demo's size on a finished demo: returns
  (args, the demo's work dir), or None (after saying why) under --quick or without a
  finished demo. extra_args: flag name -> (type, default)."""
  extra = argparse.ArgumentParser(add_help=False)
  extra.add_argument("--demo_dir", default="tfsk_work")
  for flag, (kind, default) in extra_args.items():
    extra.add_argument(f"--{flag}", type=kind, default=default)
  known = args = parse_args(description, extra)
  if args.quick:
    print(f"{name}: trains at the demo's size; not a --quick benchmark, skipped")
    return None
  if not os.path.exists(os.path.join(known.demo_dir, "sweep", "results.csv")):
    print(f"{name}: no finished demo in {known.demo_dir} (run tfsk_demo first); skipped")
    return None
  return known, known.demo_dir


def machine() -> str:
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
  except (OSError, StopIteration):
    pass
  return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def _sections(path: str) -> dict:
  """The sections of an existing RESULTS.md by benchmark name; those of a file written
  before sections named their own run say which run they came from."""
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    text = f.read()
  head, *parts = text.split("\n## ")
  origin = ", ".join(l[2:] for l in head.splitlines() if l.startswith(("- date", "- commit",
                                                                        "- size")))
  out = {}
  for part in parts:
    name, _, body = part.partition("\n")
    if origin and not body.lstrip().startswith("Commit "):
      body = f"\nFrom the full run of {origin}.\n" + body
    out[name.strip()] = f"## {name.strip()}\n{body.rstrip()}\n"
  return out


def run_all(home: str, names, title: str, preamble: str) -> None:
  """`python -m bench` and `python -m experiments`: runs each module of home in its own
  process (the command line passed on), or with --report none, and writes home/RESULTS.md
  from the stored results (a section kept as it was for a module not run since); exits 1
  if any run failed."""
  only_report = "--report" in sys.argv[1:]
  package = os.path.basename(home)
  failed = []
  for name in () if only_report else names:
    stale = os.path.join(home, "results", name + ".json")
    if os.path.exists(stale):
      os.remove(stale)
    print(f"-- {package}.{name}", flush=True)
    if subprocess.run([sys.executable, "-m", f"{package}.{name}"] + sys.argv[1:],
                      cwd=ROOT).returncode:
      failed.append(name)
  lines = [f"# {title}", "", f"- machine: {machine()}",
           f"- written: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
           f"at commit {commit()}", "", preamble, ""]
  out = os.path.join(home, "RESULTS.md")
  earlier = _sections(out) if only_report else {}
  for name in names:
    path = os.path.join(home, "results", name + ".json")
    stored = None
    if os.path.exists(path):
      with open(path) as f:
        stored = json.load(f)
      if isinstance(stored, list):  # written before runs recorded their commit and arguments
        stored = dict(rows=stored, commit="unrecorded", date="unrecorded", args=[])
    if only_report and stored is None and name in earlier:
      lines.append(earlier[name])  # no run of this module since: its section as it was
      continue
    lines.append(f"## {name}\n")
    if stored is None:
      lines.append("not run" + (" (failed)" if name in failed else " (its inputs are "
                                 "missing; see its docstring)") + "\n")
      continue
    command = " ".join([f"python -m {package}.{name}"] + stored["args"])
    lines.append(f"Commit {stored['commit']}, {stored['date']}: `{command}`\n")
    lines += ["| measure | value | target | holds |", "|---|---:|---|---|"]
    for r in stored["rows"]:
      holds = "" if r["holds"] is None else ("yes" if r["holds"] else "**no**")
      lines.append(f"| {r['metric']} | {r['value']:.3f} | {r['target']} | {holds} |")
    lines.append("")
  with open(out + ".tmp", "w") as f:
    f.write("\n".join(lines) + "\n")
  os.replace(out + ".tmp", out)
  print(f"wrote {out}")
  sys.exit(1 if failed else 0)
