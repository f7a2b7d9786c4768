"""logreg_exp's Hydra plugins: the vectorized launcher."""
