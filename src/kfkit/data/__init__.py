"""MNIST for the trainers: find it in a directory, verify it, fetch and cache what is missing."""

from kfkit.data.mnist import FILES, RAW_MD5, Mnist, cache_dir, load, prepare

__all__ = ["FILES", "RAW_MD5", "Mnist", "cache_dir", "load", "prepare"]
