"""Hydra's YAML configs, installed as the package ``logreg_exp.conf`` (see pyproject.toml)."""
