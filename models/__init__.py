"""Bundled MNIST models, calibration and test digits, and the script that trained them."""
