"""Sweeps: the Hydra callback, the summary, and the launcher and sweeper plugins."""
