"""Train the Fashion-MNIST classifier behind ``build_extractor("domain")`` (a few minutes on 2 CPU cores).

Inception features describe ImageNet photos; on 28x28 grey clothes a classifier trained on the data
itself gives more meaningful FID/KID/IS. Writes weights + metadata (test accuracy, classes,
resolution) that ``ganforge.metrics.extractors.build_domain`` checks on load::

    python scripts/train_domain_classifier.py                  # -> outputs/domain/fashion_mnist_classifier.pt
    python scripts/train_domain_classifier.py --epochs 1 --out /tmp/clf.pt
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ganforge.data import FashionMNISTDataModule
from ganforge.errors import GanforgeError
from ganforge.metrics.extractors import DEFAULT_DOMAIN_WEIGHTS, DOMAIN_FORMAT, DomainClassifier

log = logging.getLogger("ganforge")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=DEFAULT_DOMAIN_WEIGHTS, help="checkpoint to write (default: %(default)s)")
    p.add_argument(
        "--root", default="data", help="Fashion-MNIST data.root (Debian's package is searched too)"
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (quick tests)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--feature-dim", type=int, default=128)
    p.add_argument("--test-samples", type=int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


@torch.no_grad()
def accuracy(net: DomainClassifier, images: torch.Tensor, labels: torch.Tensor, resolution: int) -> float:
    net.eval()
    correct = 0
    for x, y in zip(images.split(1000), labels.split(1000), strict=True):
        correct += int((net(DomainClassifier.preprocess(x, 1, resolution))[1].argmax(1) == y).sum())
    return correct / len(labels)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train, evaluate on the test split, save; returns the saved metadata (without weights)."""
    torch.manual_seed(args.seed)
    data = {}
    for split in ("train", "test"):
        dm = FashionMNISTDataModule(root=args.root, split=split, download=False, batch_size=args.batch_size)
        dm.setup()
        data[split] = dm
    train_set, test_set = data["train"].dataset, data["test"].dataset
    test_images, test_labels = test_set.images[: args.test_samples], test_set.labels[: args.test_samples]
    resolution, classes = data["train"].resolution, data["train"].class_names

    arch = {"num_classes": len(classes), "width": args.width, "feature_dim": args.feature_dim}
    net = DomainClassifier(1, **arch)
    loader = DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
        generator=torch.Generator().manual_seed(args.seed),
    )  # fmt: skip
    total = args.epochs * len(loader) if args.max_steps is None else args.max_steps
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=max(total, 1))
    step, start = 0, time.perf_counter()
    while step < total:
        net.train()
        for x, y in loader:
            x = DomainClassifier.preprocess(x, 1, resolution)
            x = torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x, x.flip(3))  # horizontal flips
            loss = F.cross_entropy(net(x)[1], y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0:
                log.info("step %d/%d loss %.4f (%.0f s)", step, total, loss, time.perf_counter() - start)
            if step >= total:
                break
    acc = accuracy(net, test_images, test_labels, resolution)
    meta = {
        "format": DOMAIN_FORMAT,
        "name": "fashion-mnist-classifier",
        "dataset": "fashion_mnist",
        "classes": list(classes),
        "resolution": resolution,
        "channels": 1,
        "arch": arch,
        "accuracy": acc,
        "test_samples": len(test_labels),
        "steps": step,
        "seed": args.seed,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    torch.save({**meta, "state_dict": net.state_dict()}, tmp)
    os.replace(tmp, out)
    log.info(
        "Test accuracy %.4f on %d images after %d steps (%.0f s); saved %s",
        acc, len(test_labels), step, time.perf_counter() - start, out,
    )  # fmt: skip
    return meta


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        meta = train(parse_args(argv))
    except GanforgeError as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    print(f"test accuracy: {meta['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
