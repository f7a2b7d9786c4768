"""The Hydra entrypoint: ``python -m logreg_exp [overrides]`` (or ``logreg-exp``).

It knows the config and the output dir, not tensors: the work is in ``runner.run``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from logreg_exp.config import register_configs
from logreg_exp.errors import ConfigError
from logreg_exp.startup import long_lived_objects

log = logging.getLogger("logreg_exp")

register_configs()


@hydra.main(version_base="1.3", config_path="pkg://logreg_exp.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one job in its Hydra output dir; return the best monitored value for sweepers."""
    with long_lived_objects():  # torch is imported here
        from logreg_exp.runner import run

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        return run(cfg, run_dir)
    except ConfigError as err:
        log.error("error: %s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()
