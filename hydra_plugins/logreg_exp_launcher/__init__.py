"""logreg_exp's Hydra plugins: the vectorized launcher, and the submitit launchers of the
``slurm`` and ``slurm_local`` presets."""
