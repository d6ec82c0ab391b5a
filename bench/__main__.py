"""Runs every benchmark, each in its own process, and writes bench/RESULTS.md.

  python -m bench            # full sizes; runs tfsk_demo first if tfsk_work has no finished
                             # demo (the peers and the trained tagger's int8 rows need it);
                             # bench.scale at 100k, 500k and 2.04M clips takes hours
  python -m bench --quick    # CI sizes (the whole pipeline at 20k simulated clips); the
                             # peers need a finished demo and are skipped
  python -m bench --report   # RESULTS.md again from the stored results, without running
                             # (e.g. after `python -m bench.scale --sizes=2041789`)

Each section of RESULTS.md names the commit, date and arguments its numbers came from.
"""

import datetime
import json
import os
import platform
import subprocess
import sys

from bench import common

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = ("input_pipeline", "masked_step", "training_speed", "scoring_and_flagging",
              "export", "ceiling", "peers", "teachers", "harder_set", "harder_set_recipes",
              "treatments", "storage", "scale")


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


DEMO_DONE = os.path.join("tfsk_work", "sweep", "results.csv")


def main():
  quick = "--quick" in sys.argv[1:]
  only_report = "--report" in sys.argv[1:]
  results_dir = os.path.join(HERE, "results")
  os.makedirs(results_dir, exist_ok=True)
  failed = []
  root = os.path.dirname(HERE)
  if not only_report and not quick and not os.path.exists(os.path.join(root, DEMO_DONE)):
    print("-- tfsk_demo (about 15 min on 2 cores): the peers benchmark compares against it",
          flush=True)
    if subprocess.run([sys.executable, "-m", "tf_skeptical_bin.tfsk_demo"], cwd=root).returncode:
      failed.append("tfsk_demo")
  for name in () if only_report else BENCHMARKS:
    stale = os.path.join(results_dir, name + ".json")
    if os.path.exists(stale):
      os.remove(stale)
    print(f"-- bench.{name}", flush=True)
    done = subprocess.run([sys.executable, "-m", f"bench.{name}"] + sys.argv[1:],
                          cwd=os.path.dirname(HERE))
    if done.returncode:
      failed.append(name)
  lines = ["# Benchmark results", "",
           f"- machine: {machine()}",
           f"- written: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
           f"at commit {common.commit()}", "",
           "Every ratio is measured side by side in one run; absolute rates are context only. "
           "Each section says the commit, date and arguments of its own run.", ""]
  out = os.path.join(HERE, "RESULTS.md")
  earlier = _sections(out) if only_report else {}
  for name in BENCHMARKS:
    path = os.path.join(results_dir, name + ".json")
    stored = None
    if os.path.exists(path):
      with open(path) as f:
        stored = json.load(f)
    if only_report and not isinstance(stored, dict) and name in earlier:
      lines.append(earlier[name])  # no run of this benchmark since: its section as it was
      continue
    lines.append(f"## {name}\n")
    if stored is None:
      lines.append("not run" + (" (failed)" if name in failed else " (its inputs are "
                                 "missing; see its docstring)") + "\n")
      continue
    if isinstance(stored, list):  # written before runs recorded their commit and arguments
      written = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
      lines.append(f"Commit and arguments not recorded; results written "
                   f"{written:%Y-%m-%d %H:%M} UTC.\n")
      stored = dict(rows=stored)
    else:
      command = " ".join(["python -m bench." + name] + stored["args"])
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


if __name__ == "__main__":
  main()
