"""Runs every experiment, each in its own process, and writes experiments/RESULTS.md.

  python -m experiments            # runs tfsk_demo first if tfsk_work has no finished demo
                                   # (peers, teachers and the built-in treatments read it);
                                   # hours on 2 cores
  python -m experiments --report   # RESULTS.md again from the stored results

Each experiment also runs alone (`python -m experiments.treatments --set=real`); each
section of RESULTS.md names the commit, date and arguments its numbers came from. The
narrative is in docs/results.md and docs/treatments.md.
"""

import sys

import harness as common

EXPERIMENTS = ("peers", "teachers", "harder_set", "harder_set_recipes", "treatments",
               "flag_threshold", "review_budget")


def main():
  if "--report" not in sys.argv[1:]:
    common.ensure_demo("peers, teachers and the built-in treatments read it")
  common.run_all(common.EXPERIMENTS, EXPERIMENTS, "Experiment results",
                 "Each row is one measurement of the method on a dataset with known missing "
                 "labels; gains carry their 95% intervals over seeds and over eval clips.")


if __name__ == "__main__":
  main()
