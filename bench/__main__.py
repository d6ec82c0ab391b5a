"""Runs every benchmark, each in its own process, and writes bench/RESULTS.md.

  python -m bench            # full sizes; runs tfsk_demo first if tfsk_work has no finished
                             # demo (the peers and the trained tagger's int8 rows need it);
                             # bench.scale at 100k, 500k and 2.04M clips takes hours
  python -m bench --quick    # CI sizes (the whole pipeline at 20k simulated clips); the
                             # peers need a finished demo and are skipped
"""

import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = ("input_pipeline", "masked_step", "scoring_and_flagging", "export", "ceiling",
              "peers", "teachers", "storage", "scale")


def machine() -> str:
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
  except (OSError, StopIteration):
    pass
  return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def commit() -> str:
  try:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, text=True,
                          capture_output=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)*.md"], cwd=os.path.dirname(HERE), text=True,
                           capture_output=True, check=True).stdout.strip()  # docs don't count
    return head + (" (with uncommitted changes)" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


DEMO_DONE = os.path.join("tfsk_work", "sweep", "results.csv")


def main():
  quick = "--quick" in sys.argv[1:]
  results_dir = os.path.join(HERE, "results")
  os.makedirs(results_dir, exist_ok=True)
  failed = []
  root = os.path.dirname(HERE)
  if not quick and not os.path.exists(os.path.join(root, DEMO_DONE)):
    print("-- tfsk_demo (about 11 min on 2 cores): the peers benchmark compares against it",
          flush=True)
    if subprocess.run([sys.executable, "-m", "tf_skeptical_bin.tfsk_demo"], cwd=root).returncode:
      failed.append("tfsk_demo")
  for name in BENCHMARKS:
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
           f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
           f"- commit: {commit()}",
           f"- size: {'--quick (CI sizes)' if quick else 'full'}", "",
           "Every ratio is measured side by side in one run; absolute rates are context only.",
           ""]
  for name in BENCHMARKS:
    path = os.path.join(results_dir, name + ".json")
    lines.append(f"## {name}\n")
    if not os.path.exists(path):
      lines.append("not run" + (" (failed)" if name in failed else " (its inputs are "
                                 "missing; see its docstring)") + "\n")
      continue
    lines += ["| measure | value | target | holds |", "|---|---:|---|---|"]
    with open(path) as f:
      for r in json.load(f):
        holds = "" if r["holds"] is None else ("yes" if r["holds"] else "**no**")
        lines.append(f"| {r['metric']} | {r['value']:.3f} | {r['target']} | {holds} |")
    lines.append("")
  out = os.path.join(HERE, "RESULTS.md")
  with open(out + ".tmp", "w") as f:
    f.write("\n".join(lines) + "\n")
  os.replace(out + ".tmp", out)
  print(f"wrote {out}")
  sys.exit(1 if failed else 0)


if __name__ == "__main__":
  main()
