"""Programs that run inside a job's replicas.

They know nothing about kfkit's backends: they read only the environment the
training operator gives every replica (RANK, WORLD_SIZE, MASTER_ADDR, TF_CONFIG, ...),
so the same code runs under the local backend and on a cluster.
"""
