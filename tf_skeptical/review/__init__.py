"""The listening test: a page to answer the teacher's flags (server.py, page.html), the
verdicts file it writes (verdicts.py), the order candidates come in (queue.py), the cleaned
dataset it hands back (cleaned.py), and a simulated reviewer for experiments (simulated.py)."""
