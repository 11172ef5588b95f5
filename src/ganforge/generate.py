"""Sample a checkpoint: ``python generate.py ckpt_path=... n=64 truncation=0.7 class=3 out=grid.png``.

Loads the EMA generator of a ganforge checkpoint and writes

- a grid PNG (``out``); conditional models get one row per class (``class=k``: that class only),
- optionally one PNG per image (``per_image=true``, into ``per_image_dir``),
- optionally a latent interpolation (``interpolate=N`` steps between each pair of random keyframe
  latents, a closed loop): numbered PNG frames, an animated GIF and, when ``ffmpeg`` is on the PATH
  or installed with ``ganforge[video]``, an H.264 MP4 (skipped with a log message otherwise).

Everything is deterministic given ``seed``. ``truncation`` is passed as ``truncation_psi`` to
generators that accept it (StyleGAN); on any other generator it is an error, not a silent no-op.
"""

from __future__ import annotations

import inspect
import logging
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig
from PIL import Image
from torchvision.utils import make_grid

from ganforge.callbacks.samples import is_points, scatter_image
from ganforge.checkpoint import load_generator
from ganforge.errors import ConfigError
from ganforge.images import to_unit
from ganforge.models import num_classes_of
from ganforge.train import CONFIG_DIR
from ganforge.utils import pick_device, run_cli

log = logging.getLogger("ganforge")


def accepts_kwarg(module: torch.nn.Module, name: str) -> bool:
    params = inspect.signature(module.forward).parameters
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def generator_kwargs(G: torch.nn.Module, truncation: float | None) -> dict[str, Any]:
    """``{truncation_psi: ...}`` for generators that take it; a clear error for those that do not."""
    if truncation is None:
        return {}
    if not accepts_kwarg(G, "truncation_psi"):
        raise ConfigError(
            f"truncation={truncation}: {type(G).__name__} has no truncation trick "
            "(only StyleGAN generators, model=stylegan_lite, accept truncation_psi); drop truncation=..."
        )
    return {"truncation_psi": float(truncation)}


def check_class(G: torch.nn.Module, cls: int | None) -> None:
    k = num_classes_of(G)
    if cls is None:
        return
    if k == 0:
        raise ConfigError(f"class={cls}: {type(G).__name__} is unconditional; drop class=...")
    if not isinstance(cls, int) or isinstance(cls, bool) or not 0 <= cls < k:
        raise ConfigError(f"class={cls} is not a class index of this model: use 0..{k - 1}")


@torch.no_grad()
def run_generator(
    G: torch.nn.Module,
    z: torch.Tensor,
    labels: torch.Tensor | None,
    g_kwargs: dict[str, Any],
    batch_size: int,
    device: torch.device,
) -> torch.Tensor:
    """Images ``[N, ...]`` in ``[-1, 1]`` on the CPU, generated in batches of ``batch_size``."""
    out = []
    for i in range(0, len(z), batch_size):
        zb = z[i : i + batch_size].to(device)
        if labels is None:
            out.append(G(zb, **g_kwargs).float().cpu())
        else:
            out.append(G(zb, labels[i : i + batch_size].to(device), **g_kwargs).float().cpu())
    return torch.cat(out).clamp(-1, 1)


def to_pil(images: torch.Tensor, nrow: int, scale: int = 1) -> Image.Image:
    """``[N, C, H, W]`` in ``[-1, 1]`` -> a PIL grid (2 px white padding), upscaled ``scale`` times."""
    grid = make_grid(to_unit(images), nrow=nrow, padding=2, pad_value=1.0)
    arr = grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[..., 0] if images.shape[1] == 1 else arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    return img


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of Gaussian latents (keeps their norm typical); rows of ``a``/``b``."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolation_latents(keys: torch.Tensor, steps: int, method: str = "slerp") -> list[torch.Tensor]:
    """Frames of a closed walk through ``keys [K, W, z_dim]``: ``steps`` per segment, ``K * steps`` in all."""
    if method not in ("slerp", "lerp"):
        raise ConfigError(f"interpolation={method!r}: choose slerp or lerp")
    frames = []
    for k in range(len(keys)):
        a, b = keys[k], keys[(k + 1) % len(keys)]
        for s in range(steps):
            t = s / steps
            frames.append(slerp(a, b, t) if method == "slerp" else torch.lerp(a, b, t))
    return frames


def find_ffmpeg() -> str | None:
    """An ``ffmpeg`` binary: the one on the PATH, else the one the ``imageio-ffmpeg`` wheel ships
    (``pip install "ganforge[video]"``), else ``None``."""
    found = shutil.which("ffmpeg")
    if found is not None:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the wheel's binary is missing for this platform
        return None


def write_mp4(frames: list[Image.Image], path: Path, fps: int) -> bool:
    """Encode frames as H.264 with ``ffmpeg``; ``False`` (nothing written) when there is none."""
    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        return False
    w, h = frames[0].size
    w2, h2 = w + w % 2, h + h % 2  # yuv420p needs even sizes
    cmd = [
        ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w2}x{h2}",
        "-r", str(fps), "-i", "-", "-pix_fmt", "yuv420p", "-vcodec", "libx264", str(path),
    ]  # fmt: skip
    data = b"".join(_pad_rgb(f, w2, h2).tobytes() for f in frames)
    proc = subprocess.run(cmd, input=data, capture_output=True)
    if proc.returncode != 0:
        log.warning("MP4 skipped: ffmpeg failed: %s", proc.stderr.decode(errors="replace")[-500:])
        return False
    return True


def _pad_rgb(img: Image.Image, w: int, h: int) -> Image.Image:
    canvas = Image.new("RGB", (w, h), "white")
    canvas.paste(img.convert("RGB"), (0, 0))
    return canvas


def check_options(cfg: DictConfig) -> None:
    """Fail on bad options before the checkpoint is loaded or anything is written."""
    for key in ("n", "batch_size", "scale", "fps", "interpolate_walks"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ConfigError(f"{key}={cfg[key]} must be a whole number >= 1")
    for key in ("per_class", "nrow"):
        if cfg[key] is not None and (not isinstance(cfg[key], int) or cfg[key] < 1):
            raise ConfigError(f"{key}={cfg[key]} must be null or a whole number >= 1")
    if not isinstance(cfg.interpolate, int) or cfg.interpolate < 0:
        raise ConfigError(f"interpolate={cfg.interpolate} must be 0 (off) or the frames per segment (>= 1)")
    if cfg.interpolate and (not isinstance(cfg.interpolate_keys, int) or cfg.interpolate_keys < 2):
        raise ConfigError(f"interpolate_keys={cfg.interpolate_keys} must be >= 2")
    if cfg.interpolation not in ("slerp", "lerp"):
        raise ConfigError(f"interpolation={cfg.interpolation!r}: choose slerp or lerp")
    if cfg.mp4 not in (True, False, "auto"):
        raise ConfigError(f"mp4={cfg.mp4!r}: choose auto, true or false")
    if cfg.interpolate and cfg.mp4 is True and find_ffmpeg() is None:
        raise ConfigError(
            'mp4=true but no ffmpeg encoder was found: install ffmpeg or pip install "ganforge[video]", '
            "or use mp4=auto"
        )


def generate(cfg: DictConfig) -> dict[str, Any]:
    """Write the grid (and per-image files, interpolation) for ``cfg``; return what was written."""
    check_options(cfg)
    device = pick_device(str(cfg.device))
    G, run_cfg = load_generator(cfg.ckpt_path, ema=cfg.ema)
    if not hasattr(G, "z_dim"):
        raise ConfigError(
            f"{cfg.ckpt_path} holds an image -> image generator ({type(G).__name__}), which needs input "
            "images, not latents: use translate.py ckpt_path=... input=<image, folder or zip> out=<folder>"
        )
    G.to(device)
    cls = cfg.get("class")
    check_class(G, cls)
    g_kwargs = generator_kwargs(G, cfg.truncation)
    k = num_classes_of(G)
    seed = int(cfg.seed)
    torch.manual_seed(seed)  # generators that draw noise themselves (StyleGAN noise_mode=random)
    rng = torch.Generator().manual_seed(seed)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {
        "generator": run_cfg.model.generator._target_,
        "num_classes": k,
        "g_kwargs": g_kwargs,
    }

    # -- grid --------------------------------------------------------------------------------------
    if k and cls is None:
        per_class = int(cfg.per_class or max(1, cfg.n // k))
        z = torch.randn(per_class, G.z_dim, generator=rng).repeat(k, 1)
        labels = torch.arange(k).repeat_interleave(per_class)
        nrow = per_class  # one row per class; same latents down each column
    else:
        z = torch.randn(cfg.n, G.z_dim, generator=rng)
        labels = torch.full((cfg.n,), cls, dtype=torch.long) if k else None
        nrow = int(cfg.nrow or math.ceil(math.sqrt(cfg.n)))
    images = run_generator(G, z, labels, g_kwargs, cfg.batch_size, device)
    if is_points(images):
        if cfg.per_image or cfg.interpolate:
            raise ConfigError("per_image and interpolate need an image generator; this one makes 2-D points")
        scatter_image(images).save(out)
        log.info("%d points -> %s", len(images), out)
        return {**written, "grid": str(out), "count": len(images)}
    to_pil(images, nrow, cfg.scale).save(out)
    written.update(grid=str(out), count=len(images), nrow=nrow)
    log.info("%d images (%d per row) -> %s", len(images), nrow, out)

    # -- one file per image ------------------------------------------------------------------------
    if cfg.per_image:
        folder = Path(cfg.per_image_dir or out.with_name(out.stem + "_images"))
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            name = f"{i:06d}" + (f"_class{int(labels[i])}" if labels is not None else "") + ".png"
            to_pil(img[None], 1, cfg.scale).save(folder / name)
        written["per_image_dir"] = str(folder)
        log.info("%d image files -> %s", len(images), folder)

    # -- interpolation -----------------------------------------------------------------------------
    if cfg.interpolate:
        steps = int(cfg.interpolate)
        walks = int(cfg.interpolate_walks)
        irng = torch.Generator().manual_seed(seed + 1)
        keys = torch.randn(cfg.interpolate_keys, walks, G.z_dim, generator=irng)
        if k:
            walk_labels = (
                torch.full((walks,), cls, dtype=torch.long)
                if cls is not None
                else torch.randint(k, (walks,), generator=irng)
            )
        else:
            walk_labels = None
        frames_z = interpolation_latents(keys, steps, cfg.interpolation)
        frame_dir = out.with_name(out.stem + "_interp")
        frame_dir.mkdir(parents=True, exist_ok=True)
        for old in frame_dir.glob("frame_*.png"):
            old.unlink()
        frames = []
        for i, fz in enumerate(frames_z):
            imgs = run_generator(G, fz, walk_labels, g_kwargs, cfg.batch_size, device)
            frame = to_pil(imgs, walks, cfg.scale)
            frame.save(frame_dir / f"frame_{i:05d}.png")
            frames.append(frame)
        gif = out.with_name(out.stem + "_interp.gif")
        frames[0].save(
            gif, save_all=True, append_images=frames[1:], duration=max(1, round(1000 / cfg.fps)), loop=0
        )
        written.update(frames_dir=str(frame_dir), gif=str(gif), frames=len(frames))
        log.info("%d interpolation frames -> %s and %s", len(frames), frame_dir, gif)
        if cfg.mp4:
            mp4 = out.with_name(out.stem + "_interp.mp4")
            if write_mp4(frames, mp4, cfg.fps):
                written["mp4"] = str(mp4)
                log.info("MP4 -> %s", mp4)
            elif cfg.mp4 is True:
                raise ConfigError("mp4=true but ffmpeg could not encode the frames (see the warning above)")
            else:
                log.info(
                    "MP4 skipped: no ffmpeg (on the PATH or from ganforge[video]); the GIF and PNG frames "
                    "were written"
                )
    print(out)
    return written


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="generate")
def _hydra_main(cfg: DictConfig) -> None:
    run_cli(generate, cfg)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
