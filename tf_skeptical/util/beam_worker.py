"""The local runner's worker process: Beam's SDK worker, deaf to a terminal's Ctrl-C.

A Ctrl-C reaches every process of the terminal's foreground group. The binary that runs
the job stops it and kills its workers (stopping.py); a worker that also took the SIGINT
would print a KeyboardInterrupt traceback first. An ignored signal stays ignored through
exec, so ignoring it here, before Python's own handler exists for the SDK, is enough.
"""

import signal
import sys

if __name__ == "__main__":
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  from apache_beam.runners.worker import sdk_worker_main
  sdk_worker_main.main(sys.argv)
