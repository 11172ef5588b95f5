"""A checkpoint cut down to what sampling and evaluation need: the EMA generator (float16) and the run
config, without G, D and optimizer states. Small enough to bring back from a device machine (16 MB a
file); ``eval.py`` / ``generate.py`` / ``load_generator`` read it like a full one (float32 again).

    python scripts/slim_checkpoint.py outputs/run/checkpoints/last.ckpt slim.ckpt
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    ckpt = torch.load(argv[0], map_location="cpu", weights_only=False)
    drop = {"optimizer_states", "lr_schedulers", "loops", "callbacks"}
    slim = {k: v for k, v in ckpt.items() if k not in drop}
    ema = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("G_ema.")}
    slim["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ema.items()}
    out = Path(argv[1])
    torch.save(slim, out)
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB (G_ema of step {ckpt.get('global_step')})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
