"""Beam pipeline options: pass every user option through, with local defaults.

The same job runs locally and on Dataflow, Flink or Spark with `--runner=...` and that
runner's own options after the binary's flags. The local default is Beam's FnApiRunner:
what DirectRunner runs these pipelines on in the end, minus DirectRunner's first attempt
to download the Prism runner binary, which fails (slowly) on offline machines.
"""

import sys
from typing import Sequence

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.transforms import environments


def pipeline_options(beam_args: Sequence[str], local_workers: int = 1) -> PipelineOptions:
  """Options from the command line's unparsed arguments (FnApiRunner when no --runner)."""
  args = list(beam_args)
  named = {a.split("=")[0] for a in args if a.startswith("--")}
  if "--default_sdk_harness_log_level" not in named:
    args.append("--default_sdk_harness_log_level=WARNING")  # workers' per-bundle INFO lines
  if "--runner" not in named:
    args.append("--runner=FnApiRunner")
    if local_workers > 1 and "--direct_num_workers" not in named:
      args.append(f"--direct_num_workers={local_workers}")
  return PipelineOptions(args)


# The local runner's worker process: Beam's SDK worker, started by a shell with SIGINT
# ignored. A terminal's Ctrl-C reaches every process of its foreground group; the binary
# stops the job and kills its workers (util/stopping.py), and a worker that also took the
# SIGINT would print a KeyboardInterrupt traceback first (or "Fatal Python error" while it
# starts). An ignored signal stays ignored through exec, and Python then installs no
# handler for it.
WORKER_COMMAND = (f"trap '' INT; exec {sys.executable} -m "
                  "apache_beam.runners.worker.sdk_worker_main")


def pipeline(beam_args: Sequence[str], local_workers: int = 1) -> beam.Pipeline:
  """A pipeline on the runner the arguments name; locally, local_workers > 1 runs that
  many worker processes (WORKER_COMMAND)."""
  options = pipeline_options(beam_args, local_workers)
  named = {a.split("=")[0] for a in beam_args if a.startswith("--")}
  if "--runner" in named or local_workers <= 1 or "--direct_running_mode" in named:
    return beam.Pipeline(options=options)
  worker = environments.SubprocessSDKEnvironment.from_command_string(WORKER_COMMAND)
  return beam.Pipeline(runner=FnApiRunner(default_environment=worker), options=options)


def counter(result, name: str) -> int:
  """A Beam counter's committed value (attempted where the runner has no committed ones)."""
  found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
  total = 0
  for c in found:
    total += c.committed if c.committed is not None else c.attempted
  return total
