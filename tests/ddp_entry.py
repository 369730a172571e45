"""Entry point for the DDP test: train a few steps on unit-blobs and report what this rank saw."""

import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import blobs  # noqa: E402

from caw_core.train import TrainConfig, Trainer  # noqa: E402


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    blobs.ensure_registered()
    config = TrainConfig(method="caw", model="caw-test-tiny", pretrained=None, data=blobs.NAME, batch_size=16,
                         max_steps=3, num_workers=0, runs_dir=str(Path(out_dir) / "runs"), name="ddp",
                         device="cpu", warmup_steps=0, lr=0.05, save_every=100, eps=4.0, attack_step_size=2.0)
    trainer = Trainer(config)
    records = [r for r in trainer.run() if r["event"] == "step"]
    weights = torch.cat([p.detach().flatten() for p in trainer.model.image_encoder.parameters()])
    report = {"rank": trainer.ctx.rank, "world": trainer.ctx.world_size,
              "losses": [r["loss"] for r in records],
              "weights_sha": hashlib.sha256(weights.numpy().tobytes()).hexdigest()}
    (Path(out_dir) / f"rank{trainer.ctx.rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
