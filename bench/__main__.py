"""Runs every speed and size benchmark, each in its own process, and writes
bench/RESULTS.md. (What the method does to a tagger is measured in experiments/.)

  python -m bench            # full sizes; runs tfsk_demo first if tfsk_work has no finished
                             # demo (the trained tagger's int8 rows need it); bench.scale at
                             # 100k, 500k and 2.04M clips takes hours
  python -m bench --quick    # CI sizes (the whole pipeline at 20k simulated clips)
  python -m bench --report   # RESULTS.md again from the stored results, without running
                             # (e.g. after `python -m bench.scale --sizes=2041789`)

Each section of RESULTS.md names the commit, date and arguments its numbers came from.
"""

import sys

import harness as common

BENCHMARKS = ("input_pipeline", "masked_step", "bootstrap", "training_speed",
              "scoring_and_flagging", "export", "ceiling", "storage", "scale")


def main():
  if not {"--quick", "--report"} & set(sys.argv[1:]):
    common.ensure_demo("the export benchmark's trained-tagger rows compare against it")
  common.run_all(common.BENCH, BENCHMARKS, "Benchmark results",
                 "Every ratio is measured side by side in one run; absolute rates are context "
                 "only. Each section says the commit, date and arguments of its own run.")


if __name__ == "__main__":
  main()
