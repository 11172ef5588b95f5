"""Unpaired images of two domains, A and B, for unpaired translation (CycleGAN).

The reference layout is a folder or ``.zip`` holding ``trainA/ trainB/ testA/ testB/`` (the CycleGAN
datasets unpack so); each side can also come from a folder or zip of its own. The domains may differ in
size. Training images are decoded once, into memory, at ``load_size`` x ``load_size``.

An epoch has ``max(nA, nB)`` items. Item ``(epoch, i)`` (the sampler passes the epoch) is
``A[permA[i % nA]]`` with ``B[permB[i % nB]]``, each permutation seeded by (seed, epoch, side): the
reference pairs a random B with each A, and here the pairing, like the random ``resolution`` crop and
horizontal flip drawn per side from (seed, epoch, i, side), depends on nothing else. A resumed run sees
exactly the items an uninterrupted one would, and the global RNG is never touched.

``split=disjoint_by_name`` makes an unpaired task out of paired data (two styles of the same emoji, named
alike): every ``holdout_every``-th name is a test pair, with its counterpart as ground truth, and the
other names are dealt alternately to A and B, so that no training image has its counterpart on the
other side.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import zipfile
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ganforge.data import decoded_cache
from ganforge.data.base import (
    GANDataModule,
    check_choices,
    download_and_extract,
    find_or_download,
    jitter_load_size,
)
from ganforge.data.image_folder import CACHE_MODES, IMAGE_EXTENSIONS, ON_CORRUPT, ImageSource, is_image_file
from ganforge.data.paired import WHITE, _fit, _read, _try_all, decode_rgb, stem
from ganforge.errors import ConfigError, CorruptImageError, DatasetNotFoundError

log = logging.getLogger(__name__)

SPLITS = ("folders", "disjoint_by_name")
SIDES = ("A", "B")


def shown(items: list[str], n: int = 12) -> str:
    return (
        ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "") if items else "none"
    )


def _seeded(*parts: Any) -> torch.Generator:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


@dataclass(frozen=True)
class Domain:
    """The images ``names`` of ``source`` (one side, one split), decoded to ``channels`` channels."""

    source: ImageSource
    names: list[str]
    channels: int
    label: str  # for messages: "A (data.a_dir=trainA)"

    def __len__(self) -> int:
        return len(self.names)

    @property
    def stems(self) -> list[str]:
        return [stem(Path(n).name) for n in self.names]

    def select(self, index: list[int]) -> Domain:
        return replace(self, names=[self.names[i] for i in index])

    def read(self, i: int, size: int) -> torch.Tensor:
        """Image ``i`` as ``uint8 [channels, size, size]`` (RGBA over white, resized, converted)."""
        name = self.names[i]
        x = _read(self.source, name, partial(decode_rgb, name=name))
        return _fit(x, size, self.channels)

    def fingerprint(self) -> str:
        return self.source.fingerprint(self.names)


class _Listing:
    """All file names of a folder or ``.zip`` (``/``-separated, relative), listed once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.is_zip = root.is_file() and root.suffix.lower() == ".zip"
        if self.is_zip:
            try:
                with zipfile.ZipFile(root) as z:
                    self.files = [n for n in z.namelist() if not n.endswith("/")]
                    self.dirs = {n.rstrip("/") for n in z.namelist() if n.endswith("/")}
            except zipfile.BadZipFile as e:
                raise DatasetNotFoundError(f"{root} is not a readable zip ({e}); get it again") from e
        elif root.is_dir():
            self.files, self.dirs = [], set()
            for d, dirs, files in os.walk(root, followlinks=True):
                rel = Path(d).relative_to(root).as_posix()
                prefix = "" if rel == "." else rel + "/"
                self.files += [prefix + f for f in files]
                self.dirs.update(prefix + x for x in dirs)
        else:
            raise DatasetNotFoundError(f"{root} is neither a folder nor a .zip")
        parents = {f.rsplit("/", 1)[0] for f in self.files if "/" in f}
        for d in parents:  # and their parents: zips need not list folders
            parts = d.split("/")
            self.dirs.update("/".join(parts[: k + 1]) for k in range(len(parts)))
        self.images = [f for f in self.files if is_image_file(f)]

    def where(self, subdir: str) -> str:
        return f"{self.root}:{subdir}/" if self.is_zip else f"{self.root / subdir}/"

    def folders_in(self, parent: str) -> list[str]:
        prefix = parent.strip("/") + "/" if parent.strip("/") else ""
        return sorted(
            {d[len(prefix) :] for d in self.dirs if d.startswith(prefix) and "/" not in d[len(prefix) :]}
            - {"__MACOSX", ""}
        )

    def source(self, subdir: str | None, label: str, layout_hint: str) -> ImageSource:
        """The images below ``subdir``; a missing or empty folder names the side and what was looked for."""
        sub = (subdir or "").strip("/")
        prefix = sub + "/" if sub else ""
        names = sorted(f[len(prefix) :] for f in self.images if f.startswith(prefix))
        if not names:
            if sub and sub not in self.dirs:
                parent = sub.rsplit("/", 1)[0] if "/" in sub else ""
                has = self.folders_in(parent)
                inside = f"{parent}/ in {self.root}" if parent else str(self.root)
                raise DatasetNotFoundError(
                    f"domain {label} not found: no folder {self.where(sub)}. {inside} has the folders: "
                    f"{shown(has)}.\n{layout_hint}"
                )
            kinds = "/".join(e[1:] for e in IMAGE_EXTENSIONS)
            raise DatasetNotFoundError(
                f"domain {label} is empty: no images ({kinds}) in {self.where(sub)}\n{layout_hint}"
            )
        return ImageSource(self.root, sub or None, names=names)


class UnpairedImages(Dataset):
    """Item ``(epoch, i)``: ``(a [Ca, R, R], b [Cb, R, R])``, a random crop and flip of ``A[permA[i % nA]]``
    and of ``B[permB[i % nB]]``, all drawn from ``(seed, epoch, i, side)`` alone.

    ``a``/``b``: decoded ``[n, C, L, L]`` tensors, or ``Domain`` lists decoded on access at ``load_size``.
    """

    def __init__(
        self,
        a: torch.Tensor | Domain,
        b: torch.Tensor | Domain,
        resolution: int,
        load_size: int,
        flip: bool,
        seed: int,
    ) -> None:
        self.sides = (a, b)
        self.resolution, self.load_size, self.flip, self.seed = resolution, load_size, flip, seed
        self._perms: dict[tuple[int, int], torch.Tensor] = {}

    def __len__(self) -> int:
        return max(len(s) for s in self.sides)

    def permutation(self, epoch: int, side: int) -> torch.Tensor:
        """The order of ``side``'s images in ``epoch`` (seeded by seed, epoch and side)."""
        key = (epoch, side)
        if key not in self._perms:
            if len(self._perms) >= 4:  # the current epoch's two and the previous epoch's
                self._perms.pop(next(iter(self._perms)))
            n = len(self.sides[side])
            self._perms[key] = torch.randperm(n, generator=_seeded(self.seed, epoch, SIDES[side], "order"))
        return self._perms[key]

    def image(self, epoch: int, i: int, side: int) -> torch.Tensor:
        images = self.sides[side]
        j = int(self.permutation(epoch, side)[i % len(images)])
        x = images[j] if isinstance(images, torch.Tensor) else images.read(j, self.load_size)
        g = _seeded(self.seed, epoch, i, SIDES[side], "jitter")
        room = self.load_size - self.resolution + 1
        top, left = torch.randint(0, room, (2,), generator=g).tolist()
        flip = bool(torch.rand(1, generator=g) < 0.5) and self.flip
        x = x[:, top : top + self.resolution, left : left + self.resolution]
        return (x.flip(-1) if flip else x).contiguous()

    def __getitem__(self, item: tuple[int, int] | int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = item if isinstance(item, tuple) else (0, item)
        return self.image(epoch, i, 0), self.image(epoch, i, 1)


class UnpairedDataModule(GANDataModule):
    """Two unpaired image domains: items ``(a uint8 [Ca, R, R], b uint8 [Cb, R, R])``, ``R = resolution``.

    Args:
        path: folder or ``.zip`` holding ``a_dir``/, ``b_dir``/, ``test_a_dir``/, ``test_b_dir``/ (the
            CycleGAN layout ``trainA/ trainB/ testA/ testB/``).
        path_a, path_b: a folder or ``.zip`` of its own for a side's training images (all images below
            it; ``a_dir``/``b_dir`` are then not used); ``test_path_a``, ``test_path_b``: the same for the
            test images. Each falls back to ``path`` and the ``*_dir`` option.
        a_dir, b_dir, test_a_dir, test_b_dir: subfolders of ``path``; ``{domain}`` in them is replaced by
            ``domains[0]`` (A) or ``domains[1]`` (B). A missing test folder means no test set (sample
            grids then show training images).
        domains: two names filling ``{domain}`` (``cifar_unpaired``: ``[horse, deer]``, i.e. class folders).
        split: ``folders``: the folders as they are. ``disjoint_by_name``: only ``a_dir`` and ``b_dir`` are
            read, holding the same images in two styles, named alike: the sorted names common to both are
            split into a test set (every ``holdout_every``-th: the k-th, 2k-th, ...; both sides, each the
            other's ground truth) and training names dealt alternately (1st, 3rd, ... of the rest to A,
            2nd, 4th, ... to B), so no training image has its counterpart on the other side. Names on one
            side only train that side.
        holdout_every: ``disjoint_by_name``: every k-th name is held out for testing; 0/null: none.
        resolution: the random crop, what the networks see. ``load_size``: training images are resized to
            this square first (null: ``round(resolution * 286 / 256)``, the reference's 286 -> 256).
        flip: random horizontal flip, drawn per side.
        channels: domain B's channels; ``input_channels``: domain A's (1 or 3; RGBA over white).
        max_samples: per domain, evenly spaced over the sorted names (only these are decoded).
        on_corrupt: ``fail`` or ``skip`` (leave unreadable training images out).
        cache: ``auto`` decodes into memory when it fits ``memory_limit_mb``, ``memory``, ``none`` (decode
            on access). ``decoded_cache``: folder keeping decoded images for the next run (sweeps, resumes).
        download, url: when ``path`` is missing, fetch the ``.zip``/``.tar.gz`` at ``url`` and unpack it
            into ``path``'s parent (the CycleGAN zips unpack to ``<name>/trainA`` ...).
        name: for messages. ``how_to_get``: appended to the not-found error.
        **kwargs: ``GANDataModule`` arguments (batch_size, num_workers, seed, ...).
    """

    kind = "unpaired"
    items_know_epoch = True

    def __init__(
        self,
        path: str | None = None,
        path_a: str | None = None,
        path_b: str | None = None,
        test_path_a: str | None = None,
        test_path_b: str | None = None,
        a_dir: str = "trainA",
        b_dir: str = "trainB",
        test_a_dir: str = "testA",
        test_b_dir: str = "testB",
        domains: list[str] | None = None,
        split: str = "folders",
        holdout_every: int | None = None,
        resolution: int = 256,
        load_size: int | None = None,
        flip: bool = True,
        channels: int = 3,
        input_channels: int = 3,
        max_samples: int | None = None,
        on_corrupt: str = "fail",
        cache: str = "auto",
        memory_limit_mb: float = 2048,
        decoded_cache: str | None = None,
        download: bool = True,
        url: str | None = None,
        name: str = "unpaired",
        how_to_get: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(resolution=resolution, channels=channels, max_samples=max_samples, **kwargs)
        check_choices(
            ("split", split, SPLITS),
            ("cache", cache, CACHE_MODES),
            ("on_corrupt", on_corrupt, ON_CORRUPT),
            ("input_channels", input_channels, (1, 3)),
        )
        self.load_size = jitter_load_size(resolution, load_size)
        if holdout_every is not None and holdout_every < 0:
            raise ConfigError(f"data.holdout_every={holdout_every} must be >= 0 (0 or null: no test set)")
        dirs = {"a_dir": a_dir, "b_dir": b_dir, "test_a_dir": test_a_dir, "test_b_dir": test_b_dir}
        if domains is not None:
            domains = [str(d) for d in domains]
            if len(domains) != 2 or domains[0] == domains[1]:
                raise ConfigError(f"data.domains={domains} must be two different names: [A, B]")
            side_of = {"a_dir": 0, "b_dir": 1, "test_a_dir": 0, "test_b_dir": 1}
            dirs = {k: v.replace("{domain}", domains[side_of[k]]) if v else v for k, v in dirs.items()}
        else:
            templated = [f"data.{k}={v}" for k, v in dirs.items() if v and "{domain}" in v]
            if templated:
                raise ConfigError(f"{', '.join(templated)} use {{domain}} but data.domains is not set")
        self.path, self.path_a, self.path_b = path, path_a, path_b
        self.test_path_a, self.test_path_b = test_path_a, test_path_b
        self.a_dir, self.b_dir = dirs["a_dir"], dirs["b_dir"]
        self.test_a_dir, self.test_b_dir = dirs["test_a_dir"], dirs["test_b_dir"]
        self.domains, self.split, self.holdout_every = domains, split, holdout_every
        self.flip, self.input_channels = flip, input_channels
        self.on_corrupt, self.cache, self.memory_limit_mb = on_corrupt, cache, memory_limit_mb
        self.decoded_cache = decoded_cache
        self.download, self.url, self.name, self.how_to_get = download, url, name, how_to_get
        self.train_names_a: list[str] = []
        self.train_names_b: list[str] = []
        self._domains: dict[str, Domain | None] | None = None
        self._listings: dict[Path, _Listing] = {}
        self._test: dict[int | None, tuple[torch.Tensor, torch.Tensor]] = {}
        self._grid: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input_channels, self.resolution, self.resolution)

    # -- finding the images (listing only) -----------------------------------------------------------
    def _hint(self) -> str:
        return self.how_to_get or (
            "Expected data.path to be a folder or .zip with trainA/ trainB/ testA/ testB/ (the CycleGAN "
            "layout; see data.a_dir ...), or data.path_a and data.path_b."
        )

    def _root(self) -> Path | None:
        """``path``, downloaded if missing (and ``url``/``download`` allow); ``None`` when not set."""
        if self.path is None:
            if self.path_a is None or self.path_b is None:
                raise ConfigError(
                    "data.path is not set: point it at a folder or .zip with trainA/ trainB/ testA/ testB/, "
                    "or set both data.path_a and data.path_b"
                )
            return None
        root = Path(self.path).expanduser()
        needs = [d for d, p in ((self.a_dir, self.path_a), (self.b_dir, self.path_b)) if p is None]
        marker = root / needs[0] if needs and not root.name.lower().endswith(".zip") else root

        def find() -> Path | None:
            return root if root.is_file() or marker.is_dir() else None

        if self.url is None:
            found, tried = find(), ""
        else:
            get = partial(download_and_extract, self.url, root.parent) if self.download else None
            found, tried = find_or_download(find, get)
        if found is None:
            wanted = f"the file {root}" if root.name.lower().endswith(".zip") else f"{marker}/"
            raise DatasetNotFoundError(f"{self.name} not found: looked for {wanted}.\n{tried}{self._hint()}")
        return found

    def _listing(self, root: Path) -> _Listing:
        if root not in self._listings:
            if not root.exists():
                raise DatasetNotFoundError(f"{root} does not exist.\n{self._hint()}")
            self._listings[root] = _Listing(root)
        return self._listings[root]

    def _side(self, root: Path | None, split: str, side: str) -> ImageSource:
        """One side's images (``split``: ``""`` or ``"test_"``): all of ``data.<split>path_<side>`` when
        set, else ``path/<split><side>_dir``."""
        path_option, dir_option = f"{split}path_{side}", f"{split}{side}_dir"
        own, subdir = getattr(self, path_option), getattr(self, dir_option)
        if own is not None:
            label = f"{side.upper()} (data.{path_option}={own})"
            return self._listing(Path(own).expanduser()).source(None, label, "")
        assert root is not None
        return self._listing(root).source(
            subdir, f"{side.upper()} (data.{dir_option}={subdir})", self._hint()
        )

    def _find(self) -> dict[str, Domain | None]:
        """Training and test domains, listed once (nothing decoded): keys train_a, train_b, test_a, test_b."""
        if self._domains is not None:
            return self._domains
        root = self._root()
        ca, cb = self.input_channels, self.channels
        a, b = self._side(root, "", "a"), self._side(root, "", "b")
        if self.split == "disjoint_by_name":
            found = self._disjoint(a, b)
        else:
            found = {
                "train_a": Domain(a, a.names, ca, "A"),
                "train_b": Domain(b, b.names, cb, "B"),
                "test_a": self._test_side(root, "a", ca),
                "test_b": self._test_side(root, "b", cb),
            }
        self._domains = found
        return found

    def _test_side(self, root: Path | None, side: str, channels: int) -> Domain | None:
        own = self.test_path_a if side == "a" else self.test_path_b
        subdir = self.test_a_dir if side == "a" else self.test_b_dir
        if own is None and (root is None or not subdir):
            return None
        if own is None:
            assert root is not None and subdir
            listing = self._listing(root)
            if subdir.strip("/") not in listing.dirs:  # optional: no test set
                log.warning(
                    "%s: no test folder %s (data.test_%s_dir): no test set for domain %s",
                    self.name,
                    listing.where(subdir.strip("/")),
                    side,
                    side.upper(),
                )
                return None
        source = self._side(root, "test_", side)
        return Domain(source, source.names, channels, f"test {side.upper()}")

    def _disjoint(self, a: ImageSource, b: ImageSource) -> dict[str, Domain | None]:
        by_a = {stem(Path(n).name): n for n in a.names}
        by_b = {stem(Path(n).name): n for n in b.names}
        common = sorted(by_a.keys() & by_b.keys())
        k = self.holdout_every or 0
        held = set(range(k - 1, len(common), k)) if k else set()
        rest = [s for i, s in enumerate(common) if i not in held]
        test = [common[i] for i in sorted(held)]
        only_a, only_b = sorted(by_a.keys() - by_b.keys()), sorted(by_b.keys() - by_a.keys())
        train_a, train_b = sorted(rest[0::2] + only_a), sorted(rest[1::2] + only_b)
        log.info(
            "%s: %d names in both styles: %d held out for testing (1 in %s), %d train A only, %d B only%s",
            self.name,
            len(common),
            len(test),
            k or "none",
            len(train_a),
            len(train_b),
            f" ({len(only_a)} + {len(only_b)} found on one side only)" if only_a or only_b else "",
        )
        ca, cb = self.input_channels, self.channels
        return {
            "train_a": Domain(a, [by_a[s] for s in train_a], ca, "A"),
            "train_b": Domain(b, [by_b[s] for s in train_b], cb, "B"),
            "test_a": Domain(a, [by_a[s] for s in test], ca, "test A") if test else None,
            "test_b": Domain(b, [by_b[s] for s in test], cb, "test B") if test else None,
        }

    @property
    def has_ground_truth(self) -> bool:
        """Test images have their true counterpart in the other domain (``split=disjoint_by_name``)."""
        return self.split == "disjoint_by_name" and self._find()["test_a"] is not None

    @property
    def test_names_a(self) -> list[str]:
        test = self._find()["test_a"]
        return [] if test is None else test.stems

    @property
    def test_names_b(self) -> list[str]:
        test = self._find()["test_b"]
        return [] if test is None else test.stems

    # -- decoding -----------------------------------------------------------------------------------------
    def _decode_all(self, domain: Domain, size: int, skip_bad: bool) -> tuple[torch.Tensor, Domain]:
        """``domain``'s images in one ``[n, C, size, size]`` tensor (and the readable ones when skipping),
        from ``decoded_cache`` when an earlier run left them there."""
        start = time.perf_counter()
        shape = (domain.channels, size, size)
        cache = hit = None
        if self.decoded_cache is not None:
            key = {"images": domain.fingerprint(), "shape": shape, "background": WHITE, "kind": "unpaired"}
            cache = decoded_cache.cache_file(self.decoded_cache, key)
            hit = decoded_cache.load(cache, len(domain), shape)
        if hit is not None:
            out, bad = hit
            log.info(
                "%s: %d %s images decoded earlier, loaded from %s",
                self.name,
                len(domain),
                domain.label,
                cache,
            )
        else:
            out = torch.empty((len(domain), *shape), dtype=torch.uint8)

            def one(i: int) -> None:
                out[i] = domain.read(i, size)

            bad = _try_all(len(domain), one)
            log.info(
                "%s: %d %s images from %s decoded at %d px in %.1f s",
                self.name,
                len(domain),
                domain.label,
                domain.source.where(),
                size,
                time.perf_counter() - start,
            )
            if cache is not None:
                decoded_cache.save(cache, out, bad, domain.source.where())
        if not bad:
            return out, domain
        more = f" ({len(bad)} of {len(domain)} {domain.label} images are unreadable)" if len(bad) > 1 else ""
        if not skip_bad or len(bad) == len(domain):
            raise CorruptImageError(f"{bad[0][1]}{more}; fix or remove it, or set data.on_corrupt=skip")
        log.warning(
            "%s: left out %d unreadable %s image(s): %s", self.name, len(bad), domain.label, bad[0][1]
        )
        skip = {i for i, _ in bad}
        keep = [i for i in range(len(domain)) if i not in skip]
        return out[keep], domain.select(keep)

    def _subsample(self, domain: Domain) -> Domain:
        if self.max_samples is None or self.max_samples >= len(domain):
            return domain
        return domain.select(torch.linspace(0, len(domain) - 1, self.max_samples).round().long().tolist())

    def load_dataset(self) -> Dataset:
        found = self._find()
        a, b = self._subsample(found["train_a"]), self._subsample(found["train_b"])  # type: ignore[arg-type]
        skip = self.on_corrupt == "skip"
        nbytes = (len(a) * a.channels + len(b) * b.channels) * self.load_size**2
        sides: list[torch.Tensor | Domain] = []
        if self.cache == "memory" or (self.cache == "auto" and nbytes <= self.memory_limit_mb * 2**20):
            for i, d in enumerate((a, b)):
                images, d = self._decode_all(d, self.load_size, skip)
                sides.append(images)
                a, b = (d, b) if i == 0 else (a, d)
        else:
            log.info("%s: %d A and %d B images, decoded on access", self.name, len(a), len(b))
            sides = [a, b]
        self.train_names_a, self.train_names_b = a.stems, b.stems
        log.info(
            "%s: %d A and %d B training images; %d items per epoch, %d px crops of %d px",
            self.name,
            len(a),
            len(b),
            max(len(a), len(b)),
            self.resolution,
            self.load_size,
        )
        return UnpairedImages(sides[0], sides[1], self.resolution, self.load_size, self.flip, self.seed)

    def train_draw(self, side: str, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` training images of domain ``side`` (``"a"`` or ``"b"``; all of them when it has fewer), drawn
        without replacement by ``seed``, ``uint8 [n, C, R, R]`` resized to ``resolution`` without jitter as
        the test sets are: real images of a style, to score as a perfect translator's outputs would be."""
        if side not in ("a", "b"):
            raise ValueError(f"side must be 'a' or 'b', not {side!r}")
        domain: Domain = self._find()[f"train_{side}"]  # type: ignore[assignment]
        index = torch.randperm(len(domain), generator=torch.Generator().manual_seed(seed))[:n]
        drawn = domain.select(sorted(index.tolist()))
        return self._decode_all(drawn, self.resolution, self.on_corrupt == "skip")[0]

    # -- test images --------------------------------------------------------------------------------------
    def test_sets(self, max_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``max_n`` (default all) test images of each domain, ``(a [Na, Ca, R, R], b [Nb, Cb, R,
        R])``, resized to ``resolution`` (no jitter), named ``test_names_a``/``test_names_b``."""
        if max_n not in self._test:
            found = self._find()
            missing = [s for s in ("a", "b") if found[f"test_{s}"] is None]
            if missing:
                raise ConfigError(
                    f"{self.name} has no test images for domain {' and '.join(s.upper() for s in missing)}: "
                    "add the test folders (data.test_a_dir / test_b_dir), or set data.test_path_a / "
                    "test_path_b" + (", or data.holdout_every" if self.split == "disjoint_by_name" else "")
                )
            out = []
            for s in ("a", "b"):
                d: Domain = found[f"test_{s}"]  # type: ignore[assignment]
                if max_n is not None:
                    d = d.select(list(range(min(max_n, len(d)))))
                out.append(self._decode_all(d, self.resolution, skip_bad=False)[0])
            self._test[max_n] = (out[0], out[1])
        return self._test[max_n]

    def test_ground_truth(self, max_n: int | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(b_for_test_a [Na, Cb, R, R], a_for_test_b [Nb, Ca, R, R])``: each test image's true counterpart
        in the other domain, or ``(None, None)`` when the data has none (only ``disjoint_by_name`` has)."""
        if not self.has_ground_truth:
            return None, None
        test_a, test_b = self.test_sets(max_n)
        return test_b, test_a  # the same names on both sides, in the same order

    def grid_pairs(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample-grid images: the first ``n`` test images of each domain (training images, resized,
        when there is no test set)."""
        found = self._find()
        if found["test_a"] is not None and found["test_b"] is not None:
            return self.test_sets(n)
        if n not in self._grid:
            out = []
            for s in ("a", "b"):
                d: Domain = found[f"train_{s}"]  # type: ignore[assignment]
                out.append(self._decode_all(d.select(list(range(min(n, len(d))))), self.resolution, False)[0])
            self._grid[n] = (out[0], out[1])
        return self._grid[n]


__all__ = ["UnpairedDataModule", "UnpairedImages"]
