"""The torch-free deployment layer."""
