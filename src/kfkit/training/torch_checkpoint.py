"""Checkpoints for the PyTorch trainer: written atomically by rank 0, read by rank 0 and
broadcast, so replicas whose volume is not shared still resume from the same state."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from kfkit.errors import KfkitError

FILE_NAME = "checkpoint.pt"


class Checkpoints:
    """The single latest checkpoint in ``directory`` (None: checkpointing off)."""

    def __init__(self, directory: Path | None, rank: int) -> None:
        self.directory = directory
        self.rank = rank
        self.path = directory / FILE_NAME if directory else None

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def save(self, state: dict[str, Any]) -> None:
        """Rank 0 writes ``state``: a temp file in the same directory, fsync, rename."""
        if self.path is None or self.rank != 0:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{FILE_NAME}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as stream:
                torch.save(state, stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def load_broadcast(self) -> dict[str, Any] | None:
        """The latest state on every rank (None when there is none), as rank 0 reads it."""
        state: dict[str, Any] | None = None
        if self.path is not None and self.rank == 0 and self.path.exists():
            try:
                state = torch.load(self.path, map_location="cpu", weights_only=True)
            except Exception as error:  # a damaged file: say which, do not train from garbage
                raise KfkitError(f"{self.path}: cannot load checkpoint: {error}") from error
        if dist.is_initialized():
            box = [state]
            dist.broadcast_object_list(box, src=0)
            state = box[0]
        return state
