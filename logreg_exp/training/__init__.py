"""Training: the model, its updaters, the loop, and what it runs on. Imports no Hydra."""
