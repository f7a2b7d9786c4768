"""logreg_exp: logistic regression trained by SGD, configured by Hydra, logged to TensorBoard."""

__version__ = "0.1.0"
