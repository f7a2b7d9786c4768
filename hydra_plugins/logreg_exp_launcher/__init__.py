"""logreg_exp's Hydra plugins: the vectorized launcher, and joblib's with jobs that fail
alone."""
