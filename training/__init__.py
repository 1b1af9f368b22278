"""Training and evaluation entry points (python -m training.run / training.evaluate). Not built yet."""
