"""The data: datasets, and how they become minibatches."""
