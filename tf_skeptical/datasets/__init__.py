"""Datasets with known missing labels, made on this machine: the built-in sound events
(builtin_data) and an AudioSet-sized embedding simulation (audioset_simulation), both
written in the layout that layout.py names."""
