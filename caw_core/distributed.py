"""torch.distributed plumbing: one process per GPU under torchrun, or a single process.

Under ``torchrun`` (RANK, WORLD_SIZE, LOCAL_RANK set) the process group is
created with NCCL on CUDA and gloo on the CPU. Rank 0 alone writes files;
metrics are averaged across ranks before anyone sees them. Inconsistent
variables (``RANK=1 WORLD_SIZE=1``: a process that would write nothing) are
refused rather than run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA (this process's GPU) if available, else MPS, else CPU."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(preference)
    except RuntimeError as exc:
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {preference!r}") from exc
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but Apple's MPS backend is not available; use --device cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def _env_int(name: str, default: int, low: int) -> int:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise ValueError(f"environment variable {name}={text!r}: expected an integer >= {low} (set by torchrun)")
    return value


def init_distributed(device_preference: str = "auto") -> DistContext:
    """Join the torchrun process group if there is one; otherwise a world of one."""
    world = _env_int("WORLD_SIZE", 1, 1)
    rank = _env_int("RANK", 0, 0)
    local_rank = _env_int("LOCAL_RANK", 0, 0)
    if rank >= world:
        raise ValueError(f"RANK={rank} with WORLD_SIZE={world}: expected 0 <= RANK < WORLD_SIZE (set by torchrun; "
                         "unset both to run a single process)")
    device = resolve_device(device_preference, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistContext(rank, world, local_rank, device)


def mean_across_ranks(values: Mapping[str, Optional[float]], ctx: DistContext) -> dict[str, Optional[float]]:
    """Average each (non-None) value over the ranks; a world of one returns them as they are."""
    if not ctx.distributed:
        return dict(values)
    keys = [k for k, v in values.items() if v is not None]
    packed = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                          device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    packed /= ctx.world_size
    reduced = dict(values)
    reduced.update({k: float(v) for k, v in zip(keys, packed.tolist())})
    return reduced


def any_across_ranks(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when ``flag`` is true on any (a stop request reaches all ranks at the same step)."""
    if not ctx.distributed:
        return flag
    packed = torch.tensor([1.0 if flag else 0.0], device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(packed, op=dist.ReduceOp.MAX)
    return bool(packed.item() > 0)


def shutdown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()
