"""Image pairs ``(a, b)`` = (input, target) for image-to-image GANs (Pix2Pix; super-resolution and
CycleGAN build on it): side-by-side ``A|B`` images (the pix2pix datasets), or two folders paired by name.

Training pairs are decoded once at ``load_size``. The random crop to ``resolution`` and the flip (the
pix2pix paper's 286 -> 256 jitter) happen per batch in ``on_after_batch_transfer``, on the training
device, identically for ``a`` and ``b``, and are drawn from (seed, batch index, rank) alone: a resumed
run gets the jitter an uninterrupted one would, and the global RNG is never touched.
"""

from __future__ import annotations

import hashlib
import logging
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch.utils.data import Dataset

from ganforge.data import decoded_cache
from ganforge.data.base import (
    GANDataModule,
    check_choices,
    convert_channels,
    download_and_extract,
    find_or_download,
    jitter_load_size,
    resize_uint8,
)
from ganforge.data.image_folder import (
    CACHE_MODES,
    ON_CORRUPT,
    ImageSource,
    _run_parallel,
    check_image,
    image_tensor,
    is_image_file,
    open_image,
)
from ganforge.errors import ConfigError, CorruptImageError, DatasetNotFoundError, GanforgeError

log = logging.getLogger(__name__)
T = TypeVar("T")

LAYOUTS = ("aligned", "folders")
DIRECTIONS = ("AtoB", "BtoA")
ARCHIVES = (".tar", ".tgz", ".tar.gz")
WHITE = 255  # transparent pixels (emoji, rendered SVGs) are composited over this grey level


def render_svg(data: bytes, size: int | None) -> bytes:
    """PNG of an SVG at ``size`` x ``size`` pixels (``None``: the SVG's own size)."""
    try:
        import cairosvg
    except (ImportError, OSError) as e:  # OSError: cairocffi finds no system libcairo
        raise ConfigError(
            f"SVG images need cairosvg and the cairo library ({type(e).__name__}: {e}): "
            'pip install "ganforge[svg]"'
        ) from e
    return cairosvg.svg2png(bytestring=data, output_width=size, output_height=size)


def decode_rgb(data: bytes, name: str, size: int | None = None) -> torch.Tensor:
    """``uint8 [3, H, W]``, transparency composited over white; an SVG is rendered at ``size``."""
    if name.lower().endswith(".svg"):
        data = render_svg(data, size)
    return image_tensor(open_image(data, 3, background=WHITE))


def is_pair_file(name: str) -> bool:
    return is_image_file(name[:-4] + ".png" if name.lower().endswith(".svg") else name)


class TarSource:
    """``ImageSource``'s interface for the files below ``subdir`` of a ``.tar``/``.tgz`` (what ``npm pack``
    gives), held in memory: a gzip stream reads forward only, so reading files one by one would
    decompress it over and over. For small archives."""

    def __init__(self, path: Path, subdir: str, files: dict[str, bytes]) -> None:
        self.path, self.subdir, self.files = path, subdir.strip("/"), files
        self.names = sorted(files)
        if not self.names:
            raise DatasetNotFoundError(f"no images found in {self.where()}")

    @classmethod
    def open(cls, path: Path, subdirs: list[str]) -> list[TarSource]:
        """One pass over the archive for all ``subdirs``."""
        prefixes = [s.strip("/") + "/" for s in subdirs]
        files: list[dict[str, bytes]] = [{} for _ in subdirs]
        try:
            with tarfile.open(path) as tar:
                for m in tar:
                    for prefix, found in zip(prefixes, files, strict=True):
                        if m.isfile() and m.name.startswith(prefix) and is_pair_file(m.name):
                            found[m.name[len(prefix) :]] = tar.extractfile(m).read()  # type: ignore[union-attr]
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DatasetNotFoundError(f"{path} is not a readable tar archive ({e}); get it again") from e
        return [cls(path, s, f) for s, f in zip(subdirs, files, strict=True)]

    def where(self, name: str = "") -> str:
        return f"{self.path}:{self.subdir}/{name}"

    def read(self, name: str) -> bytes:
        return self.files[name]

    def fingerprint(self, names: list[str]) -> str:
        return decoded_cache.source_fingerprint(self.path, True, None, [f"{self.subdir}/{n}" for n in names])


Source = ImageSource | TarSource


def stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Pairs:
    """The pairs of one split: ``a_names[i]`` in ``a`` with ``b_names[i]`` in ``b``, named ``stems[i]``;
    ``b=None`` means side-by-side ``A|B`` images in ``a``. ``swap`` (direction BtoA) exchanges a and b."""

    a: Source
    b: Source | None
    a_names: list[str]
    b_names: list[str]
    stems: list[str]
    swap: bool
    channels: tuple[int, int]  # of a (input) and b (target)

    def __len__(self) -> int:
        return len(self.stems)

    def select(self, index: list[int]) -> Pairs:
        pick = lambda names: [names[i] for i in index]  # noqa: E731
        return replace(self, a_names=pick(self.a_names), b_names=pick(self.b_names), stems=pick(self.stems))

    def where(self, i: int) -> str:
        return self.a.where(self.a_names[i]) + (
            "" if self.b is None else f" / {self.b.where(self.b_names[i])}"
        )

    def fingerprint(self) -> str:
        parts = [self.a.fingerprint(self.a_names), self.b.fingerprint(self.b_names) if self.b else "A|B"]
        return hashlib.sha256(f"{parts}{self.swap}{self.channels}".encode()).hexdigest()

    def read(self, i: int, size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair ``i`` resized to ``size`` x ``size`` (``None``: as stored), channels converted."""
        if self.b is None:
            ab = _read(self.a, self.a_names[i], partial(decode_rgb, name=self.a_names[i]))
            h, w = ab.shape[1:]
            if w % 2:
                raise ConfigError(
                    f"{self.a.where(self.a_names[i])} is {w}x{h}: an odd width cannot hold two side-by-side "
                    "halves A|B (data.layout=aligned); crop it, or use data.layout=folders"
                )
            a, b = ab[..., : w // 2], ab[..., w // 2 :]
        else:
            a = _read(self.a, self.a_names[i], partial(decode_rgb, name=self.a_names[i], size=size))
            b = _read(self.b, self.b_names[i], partial(decode_rgb, name=self.b_names[i], size=size))
            if a.shape != b.shape:
                (ha, wa), (hb, wb) = a.shape[1:], b.shape[1:]
                raise ConfigError(
                    f"{self.stems[i]}: {self.a.where(self.a_names[i])} is {wa}x{ha} but "
                    f"{self.b.where(self.b_names[i])} is {wb}x{hb}; paired images must be the same size"
                )
        if self.swap:
            a, b = b, a
        return _fit(a, size, self.channels[0]), _fit(b, size, self.channels[1])

    def check(self, i: int) -> None:
        """Cheap integrity check of pair ``i``'s files (SVGs are only checked by rendering them)."""
        files = [(self.a, self.a_names[i])] + ([] if self.b is None else [(self.b, self.b_names[i])])
        for source, name in files:
            if not name.lower().endswith(".svg"):
                _read(source, name, check_image)


def _fit(x: torch.Tensor, size: int | None, channels: int) -> torch.Tensor:
    x = x[None] if size is None else resize_uint8(x[None], size)
    return convert_channels(x, channels)[0]


def _read(source: Source, name: str, fn: Callable[[bytes], T]) -> T:
    """``fn`` of the file's bytes; any decoder error becomes a ``CorruptImageError`` naming the file."""
    try:
        return fn(source.read(name))
    except GanforgeError:
        raise
    except Exception as e:  # any decoder error means the file is unusable
        raise CorruptImageError(f"cannot decode {source.where(name)} ({type(e).__name__}: {e})") from e


def _try_all(n: int, fn: Callable[[int], None]) -> list[tuple[int, str]]:
    """``fn(i)`` for ``i < n`` on threads; the unreadable ``i`` as ``(i, error)``."""
    errors: dict[int, str] = {}

    def one(i: int) -> None:
        try:
            fn(i)
        except CorruptImageError as e:
            errors[i] = str(e)

    _run_parallel(one, n)
    return sorted(errors.items())


class PairTensors(Dataset):
    """Pairs decoded into one ``uint8`` tensor ``[N, Ca + Cb, H, W]`` (one decoded-cache file)."""

    def __init__(self, ab: torch.Tensor, input_channels: int) -> None:
        self.ab, self.ca = ab, input_channels

    def __len__(self) -> int:
        return len(self.ab)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ab[i, : self.ca], self.ab[i, self.ca :]


class LazyPairs(Dataset):
    """Pairs decoded on access (in dataloader workers), for data too big for memory (edges2shoes)."""

    def __init__(self, pairs: Pairs, size: int) -> None:
        self.pairs, self.size = pairs, size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pairs.read(i, self.size)


class PairedDataModule(GANDataModule):
    """Paired images for image-to-image translation: items ``(a uint8 [Ca, L, L], b uint8 [Cb, L, L])``.

    Args:
        path: ``aligned``: folder or ``.zip`` with ``train/`` and ``test/`` (or ``val/``) of side-by-side
            ``A|B`` images. ``folders``: folder, ``.zip`` or ``.tar``/``.tgz`` with ``a_dir/`` and ``b_dir/``.
        layout: ``aligned`` or ``folders``; folders pair files by name without extension (``x.png`` with
            ``x.jpg``). ``.svg`` files (in a tar) are rendered with cairosvg.
        direction: ``AtoB`` (a = left half / ``a_dir``) or ``BtoA`` (swapped).
        test_split: ``aligned``: the subfolder of the test split; ``test`` falls back to ``val``.
        holdout_every: ``folders``: every k-th name (sorted; the k-th, 2k-th, ...) is the test split,
            fixed by file name; 0 or ``None``: no test split. Ignored when ``test_path`` is set.
        test_path: a second root of the same layout holding the test split.
        resolution: crop size, what the networks see. ``channels``: target (b) channels; ``input_channels``:
            input (a) channels (1 or 3; RGBA is composited over white first).
        load_size: training pairs are resized to this before the per-batch random crop; ``None`` is
            ``round(resolution * 286 / 256)``. ``flip``: random horizontal flip per sample.
        test_size: ``test_pairs`` size: ``"resolution"``, pixels, or ``None`` for the stored size.
        on_corrupt, cache, memory_limit_mb, decoded_cache: as ``ImageFolderDataModule``; ``skip`` leaves out
            pairs with an unreadable file, ``cache=none`` decodes on access (after a quick check).
        download, url: when ``path`` is missing, fetch the ``.tar.gz`` at ``url`` and unpack it into
            ``path``'s parent.
        name: for messages. ``how_to_get``: appended to the not-found error.
        **kwargs: ``GANDataModule`` arguments (batch_size, num_workers, seed, max_samples, ...);
            ``max_samples`` keeps evenly spaced training pairs, and only those are decoded.
    """

    kind = "pairs"

    def __init__(
        self,
        path: str | None,
        layout: str = "aligned",
        direction: str = "AtoB",
        a_dir: str = "A",
        b_dir: str = "B",
        test_split: str = "test",
        holdout_every: int | None = 10,
        test_path: str | None = None,
        resolution: int = 256,
        load_size: int | None = None,
        flip: bool = True,
        test_size: int | str | None = "resolution",
        channels: int = 3,
        input_channels: int = 3,
        on_corrupt: str = "fail",
        cache: str = "auto",
        memory_limit_mb: float = 2048,
        decoded_cache: str | None = None,
        download: bool = True,
        url: str | None = None,
        name: str = "paired",
        how_to_get: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(resolution=resolution, channels=channels, **kwargs)
        check_choices(
            ("layout", layout, LAYOUTS),
            ("direction", direction, DIRECTIONS),
            ("cache", cache, CACHE_MODES),
            ("on_corrupt", on_corrupt, ON_CORRUPT),
            ("input_channels", input_channels, (1, 3)),
        )
        self.load_size = jitter_load_size(resolution, load_size)
        if test_size == "resolution":
            test_size = resolution
        if test_size is not None and (not isinstance(test_size, int) or test_size < 4):
            raise ConfigError(
                f"data.test_size={test_size!r}: use resolution, a size >= 4, or null (stored size)"
            )
        if holdout_every is not None and holdout_every < 0:
            raise ConfigError(f"data.holdout_every={holdout_every} must be >= 0 (0 or null: no test split)")
        self.path, self.layout, self.direction = path, layout, direction
        self.a_dir, self.b_dir, self.test_split = a_dir, b_dir, test_split
        self.holdout_every, self.test_path = holdout_every, test_path
        self.flip, self.test_size, self.input_channels = flip, test_size, input_channels
        self.on_corrupt, self.cache, self.memory_limit_mb = on_corrupt, cache, memory_limit_mb
        self.decoded_cache = decoded_cache
        self.download, self.url, self.name, self.how_to_get = download, url, name, how_to_get
        self.train_names: list[str] = []
        self._splits: tuple[Pairs, Pairs | None] | None = None
        self._test: dict[int | None, tuple[torch.Tensor, torch.Tensor]] = {}
        self._bad: set[str] = set()  # names of unreadable pairs left out (on_corrupt=skip)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input_channels, self.resolution, self.resolution)

    # -- finding the pairs (listing only) ---------------------------------------------------------------
    def _locate(self) -> Path:
        if self.path is None:
            raise ConfigError("data.path is not set; point it at the paired dataset")
        root = Path(self.path).expanduser()
        marker = root / ("train" if self.layout == "aligned" else self.a_dir)
        find = lambda: root if root.is_file() or marker.is_dir() else None  # noqa: E731
        if self.url is None:
            found, tried = find(), ""
        else:
            download = partial(download_and_extract, self.url, root.parent) if self.download else None
            found, tried = find_or_download(find, download)
        if found is None:
            archive = root.name.lower().endswith((".zip", *ARCHIVES))
            wanted = f"the file {root}" if archive else f"{marker}/ (data.layout={self.layout})"
            raise DatasetNotFoundError(
                f"{self.name} not found: looked for {wanted}.\n"
                f"{tried}{self.how_to_get or 'Set data.path to the dataset.'}"
            )
        return found

    def _sources(self, root: Path, subdirs: list[str]) -> list[Source]:
        if root.is_file() and root.name.lower().endswith(ARCHIVES):
            return list(TarSource.open(root, subdirs))
        return [ImageSource(root, s) for s in subdirs]

    def _aligned(self, root: Path, split: str) -> Pairs:
        (src,) = self._sources(root, [split])
        stems, swap = [stem(n) for n in src.names], self.direction == "BtoA"
        return Pairs(src, None, src.names, src.names, stems, swap, (self.input_channels, self.channels))

    def _aligned_test(self, root: Path) -> Pairs | None:
        for split in [self.test_split] + (["val"] if self.test_split == "test" else []):
            try:
                pairs = self._aligned(root, split)
            except DatasetNotFoundError:
                continue
            if split != self.test_split:
                log.info(
                    "%s: no %s/ in %s; using %s/ as the test split", self.name, self.test_split, root, split
                )
            return pairs
        log.warning("%s: no %s/ images in %s: no test split", self.name, self.test_split, root)
        return None

    def _folders(self, root: Path) -> Pairs:
        a, b = self._sources(root, [self.a_dir, self.b_dir])
        a_by, b_by = _by_stem(a), _by_stem(b)
        only_a, only_b = sorted(a_by.keys() - b_by.keys()), sorted(b_by.keys() - a_by.keys())
        if only_a or only_b:
            example = lambda names: f" (e.g. {', '.join(names[:5])})" if names else ""  # noqa: E731
            raise ConfigError(
                f"data.layout=folders pairs files by name, but {len(only_a)} of the {len(a_by)} in "
                f"{a.where()} have no same-named file in {b.where()}{example(only_a)}, and "
                f"{len(only_b)} of the {len(b_by)} in {b.where()} none in {a.where()}{example(only_b)}; "
                "remove or rename them"
            )
        stems = sorted(a_by)
        channels = (self.input_channels, self.channels)
        a_names, b_names = [a_by[s] for s in stems], [b_by[s] for s in stems]
        return Pairs(a, b, a_names, b_names, stems, self.direction == "BtoA", channels)

    def split_pairs(self) -> tuple[Pairs, Pairs | None]:
        """Training and test pairs, listed once (nothing decoded)."""
        if self._splits is not None:
            return self._splits
        root = self._locate()
        test_root = Path(self.test_path).expanduser() if self.test_path else None
        if test_root is not None and not test_root.exists():
            raise DatasetNotFoundError(f"data.test_path={test_root} does not exist")
        if self.layout == "aligned":
            train, test = self._aligned(root, "train"), self._aligned_test(test_root or root)
        elif test_root is not None:
            train, test = self._folders(root), self._folders(test_root)
        elif self.holdout_every:
            pairs, k = self._folders(root), self.holdout_every
            held = set(range(k - 1, len(pairs), k))
            train = pairs.select([i for i in range(len(pairs)) if i not in held])
            test = pairs.select(sorted(held))
            log.info("%s: %d of %d pairs (1 in %d by name) held out", self.name, len(test), len(pairs), k)
        else:
            train, test = self._folders(root), None
        self._splits = (train, test)
        return self._splits

    @property
    def test_names(self) -> list[str]:
        """Names (file name without extension) of the test pairs, in ``test_pairs`` order; with
        ``on_corrupt=skip``, unreadable ones are left out once decoding has found them."""
        test = self.split_pairs()[1]
        return [] if test is None else [s for s in test.stems if s not in self._bad]

    # -- decoding -------------------------------------------------------------------------------------
    def _decode_all(self, pairs: Pairs, size: int | None) -> tuple[torch.Tensor, Pairs]:
        """The readable pairs in one ``[N, Ca + Cb, H, W]`` tensor, and which they are; from
        ``decoded_cache`` when an earlier run left them there."""
        start = time.perf_counter()
        shape = (sum(pairs.channels), *((size, size) if size else pairs.read(0, None)[0].shape[1:]))
        cache = hit = None
        if self.decoded_cache is not None:
            key = {"pairs": pairs.fingerprint(), "size": size, "shape": shape, "background": WHITE}
            cache = decoded_cache.cache_file(self.decoded_cache, key)
            hit = decoded_cache.load(cache, len(pairs), shape)
        if hit is not None:
            out, bad = hit
            seconds = time.perf_counter() - start
            log.info(
                "%s: %d pairs, decoded earlier: loaded in %.1f s from %s",
                self.name,
                len(pairs),
                seconds,
                cache,
            )
        else:
            log.info("%s: decoding %d pairs from %s", self.name, len(pairs), pairs.a.where())
            out = torch.empty((len(pairs), *shape), dtype=torch.uint8)

            def one(i: int) -> None:
                a, b = pairs.read(i, size)
                if a.shape[1:] != shape[1:]:  # stored size (test_size=null) differs from the first pair's
                    raise ConfigError(
                        f"data.test_size=null keeps the stored size, but {pairs.where(i)} is "
                        f"{a.shape[2]}x{a.shape[1]} and {pairs.where(0)} {shape[2]}x{shape[1]}; "
                        "set data.test_size"
                    )
                out[i] = torch.cat([a, b])

            bad = _try_all(len(pairs), one)
            log.info("%s: decoded in %.1f s", self.name, time.perf_counter() - start)
            if cache is not None:
                decoded_cache.save(cache, out, bad, pairs.a.where())
        keep = self._without_bad(pairs, bad)
        return (out, pairs) if len(keep) == len(pairs) else (out[keep], pairs.select(keep))

    def _without_bad(self, pairs: Pairs, bad: list[tuple[int, str]]) -> list[int]:
        """Indices of the readable pairs; unreadable ones fail (``on_corrupt=fail``) or are left out."""
        if not bad:
            return list(range(len(pairs)))
        more = f" ({len(bad)} of {len(pairs)} pairs are unreadable)" if len(bad) > 1 else ""
        if self.on_corrupt == "fail" or len(bad) == len(pairs):
            raise CorruptImageError(
                f"{bad[0][1]}{more}; fix or remove it, or set data.on_corrupt=skip to leave it out"
            )
        self._bad.update(pairs.stems[i] for i, _ in bad)
        shown = ", ".join(pairs.stems[i] for i, _ in bad[:5]) + (", ..." if len(bad) > 5 else "")
        log.warning(
            "%s: left out %d unreadable pair(s) of %d: %s (%s)",
            self.name,
            len(bad),
            len(pairs),
            shown,
            bad[0][1],
        )
        skip = {i for i, _ in bad}
        return [i for i in range(len(pairs)) if i not in skip]

    def load_dataset(self) -> Dataset:
        train = self.split_pairs()[0]
        if self.max_samples is not None and self.max_samples < len(train):
            train = train.select(torch.linspace(0, len(train) - 1, self.max_samples).round().long().tolist())
        nbytes = len(train) * sum(train.channels) * self.load_size**2
        if self.cache == "memory" or (self.cache == "auto" and nbytes <= self.memory_limit_mb * 2**20):
            ab, train = self._decode_all(train, self.load_size)
            dataset: Dataset = PairTensors(ab, self.input_channels)
        else:
            log.info(
                "%s: %d pairs in %s (checking; decoded on access)", self.name, len(train), train.a.where()
            )
            train = train.select(self._without_bad(train, _try_all(len(train), train.check)))
            dataset = LazyPairs(train, self.load_size)
        self.train_names = list(train.stems)
        return dataset

    def test_pairs(self, max_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The test split's first ``max_n`` (default all) pairs ``(a [N, Ca, S, S], b [N, Cb, S, S])``,
        named ``test_names[:N]``, at ``test_size`` (no jitter), kept in memory for the next call."""
        if max_n not in self._test:
            test = self.split_pairs()[1]
            if test is None:
                raise ConfigError(
                    f"{self.name} has no test split: set data.test_path, or data.holdout_every "
                    "(layout=folders), or data.test_split (layout=aligned)"
                )
            if max_n is not None:
                test = test.select(list(range(min(max_n, len(test)))))
            ab = self._decode_all(test, self.test_size)[0]
            self._test[max_n] = (ab[:, : self.input_channels].clone(), ab[:, self.input_channels :].clone())
        return self._test[max_n]

    def grid_pairs(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The pairs shown in sample grids: the first ``n`` test pairs."""
        return self.test_pairs(n)

    # -- per-batch jitter ---------------------------------------------------------------------------------
    def jitter(self, a: torch.Tensor, b: torch.Tensor, batch_index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random ``resolution`` crop and (``flip``) horizontal flip per sample, the same for ``a`` and ``b``,
        drawn from (seed, ``batch_index``, rank) only, on a generator of its own."""
        n, size, crop = a.shape[0], a.shape[-1], self.resolution
        digest = hashlib.sha256(f"{self.seed}:{batch_index}:{self._world()[1]}".encode()).digest()
        g = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
        tops = torch.randint(0, size - crop + 1, (n,), generator=g).tolist()
        lefts = torch.randint(0, size - crop + 1, (n,), generator=g).tolist()
        flips = ((torch.rand(n, generator=g) < 0.5) & self.flip).tolist()

        def apply(x: torch.Tensor) -> torch.Tensor:
            at = enumerate(zip(tops, lefts, strict=True))
            crops = [x[i, :, top : top + crop, left : left + crop] for i, (top, left) in at]
            return torch.stack([c.flip(-1) if f else c for c, f in zip(crops, flips, strict=True)])

        return apply(a), apply(b)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        a, b = batch
        a, b = self.jitter(a, b, self.consumed_batches)  # before the base class counts this batch
        return super().on_after_batch_transfer((a, b), dataloader_idx)


def _by_stem(source: Source) -> dict[str, str]:
    """``{name without extension: file name}``; two files of one name on one side are ambiguous."""
    out: dict[str, str] = {}
    for n in source.names:
        if stem(n) in out:
            raise ConfigError(
                f"{source.where()} has both {out[stem(n)]} and {n}: data.layout=folders pairs by the name "
                "without extension, which must be unique on each side"
            )
        out[stem(n)] = n
    return out
