"""UnpairedDataModule: the CycleGAN layout on small fake trees, items drawn from (seed, epoch, index) alone,
the error messages, and the offline presets on the real zips."""

from __future__ import annotations

import io
import shutil
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from ganforge.data import UnpairedDataModule
from ganforge.data.base import resize_uint8
from ganforge.errors import ConfigError, DatasetNotFoundError
from ganforge.train import compose_config

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
EMOJI_ZIP = SHARED / "emoji64-google-twitter.zip"
CIFAR_ZIP = SHARED / "cifar10-jpeg.zip"
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def marked(mark: int, h: int, w: int, seed: int) -> bytes:
    """Red = ``mark`` everywhere (survives resizing, cropping and flipping), green/blue noise."""
    x = np.random.RandomState(seed).randint(0, 256, (h, w, 3), dtype=np.uint8)
    x[..., 0] = mark
    return png(x)


def write(root: Path, files: dict[str, bytes]) -> Path:
    if root.suffix == ".zip":
        with zipfile.ZipFile(root, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
        return root
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


# 5 A images (10, 30, ... red; 20x24) and 3 B images (150, 170, 190 red; 16x16); 2 + 4 test images
LAYOUT = {
    **{f"trainA/a{i}.png": marked(10 + 20 * i, 20, 24, i) for i in range(5)},
    **{f"trainB/b{i}.jpg.png": marked(150 + 20 * i, 16, 16, 10 + i) for i in range(3)},
    **{f"testA/t{i}.png": marked(5, 30, 30, 20 + i) for i in range(2)},
    **{f"testB/u{i}.png": marked(250, 12, 12, 30 + i) for i in range(4)},
}


def tree(tmp_path: Path, kind: str = "folder", files: dict[str, bytes] | None = None) -> Path:
    return write(
        tmp_path / ("domains.zip" if kind == "zip" else "domains"), LAYOUT if files is None else files
    )


def setup(**kwargs) -> UnpairedDataModule:
    dm = UnpairedDataModule(**{"batch_size": 1, "resolution": 8, "load_size": 10, **kwargs})
    dm.setup("fit")
    return dm


def marks(x: torch.Tensor) -> int:
    return int(x[0].float().mean().round())


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_layout_sizes_and_test_sets(tmp_path, kind):
    dm = setup(path=str(tree(tmp_path, kind)))
    assert len(dm.dataset) == 5 and dm.train_names_a == [f"a{i}" for i in range(5)]
    assert dm.train_names_b == ["b0.jpg", "b1.jpg", "b2.jpg"]
    assert dm.kind == "unpaired" and dm.items_know_epoch
    assert dm.input_shape == dm.image_shape == (3, 8, 8)
    a, b = dm.dataset[(0, 0)]
    assert a.dtype == b.dtype == torch.uint8 and a.shape == b.shape == (3, 8, 8)
    ta, tb = dm.test_sets()
    assert ta.shape == (2, 3, 8, 8) and tb.shape == (4, 3, 8, 8)
    assert dm.test_names_a == ["t0", "t1"] and dm.test_names_b == ["u0", "u1", "u2", "u3"]
    assert torch.equal(dm.test_sets(1)[0], ta[:1]) and dm.test_sets(3)[1].shape[0] == 3
    assert dm.test_ground_truth() == (None, None)
    ga, gb = dm.grid_pairs(2)
    assert torch.equal(ga, ta) and torch.equal(gb, tb[:2])


def test_every_a_once_per_epoch_and_a_random_b_with_each(tmp_path):
    dm = setup(path=str(tree(tmp_path)))
    orders = []
    for epoch in range(4):
        items = [dm.dataset[(epoch, i)] for i in range(5)]
        a_marks = [marks(a) for a, _ in items]
        b_marks = Counter(marks(b) for _, b in items)
        assert sorted(a_marks) == [10, 30, 50, 70, 90]  # every A once
        assert sorted(b_marks) == [150, 170, 190] and sorted(b_marks.values()) == [1, 2, 2]
        orders.append((a_marks, sorted(b_marks.items())))
    assert len({str(o) for o in orders}) > 1  # the pairing changes with the epoch


def test_items_depend_on_seed_epoch_and_index_only(tmp_path):
    root = str(tree(tmp_path))
    first, second, other = setup(path=root, seed=3), setup(path=root, seed=3), setup(path=root, seed=4)
    for i in (4, 0, 2):  # any order: nothing carries over from one item to the next
        for epoch in (1, 0):
            x, y = first.dataset[(epoch, i)], second.dataset[(epoch, i)]
            assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
    stack = lambda dm, e: torch.stack([torch.cat(dm.dataset[(e, i)]) for i in range(5)])  # noqa: E731
    assert not torch.equal(stack(first, 0), stack(first, 1))
    assert not torch.equal(stack(first, 0), stack(other, 0))


def test_crops_and_flips_are_per_side_and_of_the_decoded_image(tmp_path):
    dm = setup(path=str(tree(tmp_path)), resolution=8, load_size=12)
    data = dm.dataset
    assert data.sides[0].shape == (5, 3, 12, 12) and data.sides[1].shape == (3, 3, 12, 12)
    seen = set()
    for epoch in range(6):
        for i in range(5):
            for side, x in enumerate(data[(epoch, i)]):
                images = data.sides[side]
                full = images[int(data.permutation(epoch, side)[i % len(images)])]
                windows = {
                    (top, left, flip)
                    for top in range(5)
                    for left in range(5)
                    for flip in (False, True)
                    if torch.equal(
                        x, (lambda c: c.flip(-1) if flip else c)(full[:, top : top + 8, left : left + 8])
                    )
                }
                assert windows, "not a crop of the decoded image"
                seen |= windows
    assert {f for _, _, f in seen} == {False, True} and len({(t, x) for t, x, _ in seen}) > 8
    plain = setup(path=str(tree(tmp_path)), resolution=8, load_size=8, flip=False).dataset
    for i in range(5):  # no room to crop, no flip: the decoded images themselves
        a, b = plain[(2, i)]
        assert torch.equal(a, plain.sides[0][int(plain.permutation(2, 0)[i])])
        assert torch.equal(b, plain.sides[1][int(plain.permutation(2, 1)[i % 3])])


def test_the_dataloader_resumes_mid_epoch_exactly(tmp_path):
    def batches(consumed: int, n: int) -> list[torch.Tensor]:
        dm = setup(path=str(tree(tmp_path)), batch_size=2, seed=5)
        dm.consumed_batches = consumed
        out, it = [], None
        while len(out) < n:
            if it is None:
                it = iter(dm.train_dataloader())
            try:
                a, b = next(it)
            except StopIteration:
                it = None
                continue
            assert a.shape == b.shape == (2, 3, 8, 8) and a.dtype == torch.uint8
            out.append(torch.cat([a, b], 1))
            dm.consumed_batches += 1
        return out

    straight = batches(0, 6)  # 3 epochs of 2 batches (5 items, drop_last)
    resumed = batches(3, 3)
    assert all(torch.equal(x, y) for x, y in zip(straight[3:], resumed, strict=True))
    assert not torch.equal(straight[0], straight[2])


def test_separate_paths_per_side_and_max_samples(tmp_path):
    write(tmp_path / "a", {k[7:]: v for k, v in LAYOUT.items() if k.startswith("trainA/")})
    write(tmp_path / "b.zip", {k[7:]: v for k, v in LAYOUT.items() if k.startswith("trainB/")})
    write(tmp_path / "ta", {k[6:]: v for k, v in LAYOUT.items() if k.startswith("testA/")})
    dm = setup(path_a=str(tmp_path / "a"), path_b=str(tmp_path / "b.zip"), test_path_a=str(tmp_path / "ta"))
    assert len(dm.train_names_a) == 5 and len(dm.train_names_b) == 3 and dm.test_names_a == ["t0", "t1"]
    with pytest.raises(ConfigError, match="no test images for domain B"):
        dm.test_sets()
    ga, gb = dm.grid_pairs(2)  # no B test set: training images instead
    assert ga.shape == gb.shape == (2, 3, 8, 8) and marks(gb[0]) == 150
    few = setup(path=str(tree(tmp_path, "zip")), max_samples=3)
    assert few.train_names_a == ["a0", "a2", "a4"] and len(few.train_names_b) == 3 and len(few.dataset) == 3


def test_train_draw_is_seeded_resized_and_all_when_fewer(tmp_path):
    dm = setup(path=str(tree(tmp_path)))
    b = dm.train_draw("b", 2, seed=0)
    assert (
        b.shape == (2, 3, 8, 8) and b.dtype == torch.uint8 and torch.equal(b, dm.train_draw("b", 2, seed=0))
    )
    assert {marks(x) for x in b} < {150, 170, 190}  # two different training B images, at the test size
    assert sorted(marks(x) for x in dm.train_draw("b", 10)) == [150, 170, 190]
    draws = {tuple(marks(x) for x in dm.train_draw("a", 2, seed=s)) for s in range(8)}
    assert len(draws) > 1 and all(m in {10, 30, 50, 70, 90} for d in draws for m in d)
    with pytest.raises(ValueError, match="'a' or 'b'"):
        dm.train_draw("c", 1)


def test_disjoint_by_name_split_on_a_fake_tree(tmp_path):
    files = {
        f"{style}/{i:02d}.png": marked(i if style == "x" else 200 + i, 10, 10, i)
        for style in "xy"
        for i in range(12)
    }
    dm = setup(
        path=str(write(tmp_path / "styles", files)),
        a_dir="x",
        b_dir="y",
        split="disjoint_by_name",
        holdout_every=4,
        load_size=8,
        flip=False,
    )
    assert dm.test_names_a == dm.test_names_b == ["03", "07", "11"]
    assert dm.train_names_a == ["00", "02", "05", "08", "10"] and dm.train_names_b == ["01", "04", "06", "09"]
    ta, tb = dm.test_sets()
    gt_b, gt_a = dm.test_ground_truth()
    assert [marks(x) for x in gt_b] == [203, 207, 211] and [marks(x) for x in gt_a] == [3, 7, 11]
    assert torch.equal(gt_b, tb) and torch.equal(gt_a, ta)


# -- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_a_missing_or_empty_domain_says_which(tmp_path, kind):
    no_b = {k: v for k, v in LAYOUT.items() if not k.startswith("trainB/")}
    with pytest.raises(DatasetNotFoundError) as err:
        setup(path=str(tree(tmp_path, kind, no_b)))
    msg = str(err.value)
    assert "domain B (data.b_dir=trainB) not found" in msg and "trainB/" in msg
    assert "has the folders: testA, testB, trainA" in msg and "trainA/ trainB/ testA/ testB/" in msg
    empty_a = {k: v for k, v in LAYOUT.items() if not k.startswith("trainA/")} | {"trainA/notes.txt": b"x"}
    with pytest.raises(DatasetNotFoundError, match=r"domain A \(data.a_dir=trainA\) is empty: no images"):
        setup(
            path=str(
                write(tmp_path / f"empty.{kind}", empty_a)
                if kind == "zip"
                else write(tmp_path / "empty", empty_a)
            )
        )


def test_a_zip_without_train_folders_lists_what_it_has(tmp_path):
    root = write(
        tmp_path / "other.zip", {"photos/x.png": marked(1, 8, 8, 0), "paintings/y.png": marked(2, 8, 8, 1)}
    )
    with pytest.raises(DatasetNotFoundError) as err:
        setup(path=str(root))
    assert "no folder " + f"{root}:trainA/" in str(err.value) and "has the folders: paintings, photos" in str(
        err.value
    )


def test_bad_options_and_missing_data(tmp_path):
    with pytest.raises(ConfigError, match=r"load_size=8 < data.resolution=16"):
        UnpairedDataModule(path="x", resolution=16, load_size=8)
    with pytest.raises(ConfigError, match=r"data.path is not set"):
        setup(path=None)
    with pytest.raises(ConfigError, match=r"data.split='paired' is not one of folders, disjoint_by_name"):
        UnpairedDataModule(path="x", split="paired")
    with pytest.raises(ConfigError, match=r"two different names"):
        UnpairedDataModule(path="x", domains=["cat", "cat"])
    with pytest.raises(ConfigError, match=r"use \{domain\} but data.domains is not set"):
        UnpairedDataModule(path="x", a_dir="train/{domain}")
    with pytest.raises(DatasetNotFoundError, match=f"looked for {tmp_path}/nothing/trainA/"):
        setup(path=str(tmp_path / "nothing"))
    classes = {f"{s}/{c}/0.png": marked(1, 8, 8, 0) for s in ("train", "test") for c in CIFAR_CLASSES}
    root = write(tmp_path / "cifar.zip", classes)
    with pytest.raises(DatasetNotFoundError) as err:
        setup(path=str(root), domains=["horse", "zebra"], a_dir="train/{domain}", b_dir="train/{domain}")
    msg = str(err.value)
    assert "domain B (data.b_dir=train/zebra) not found" in msg and ", ".join(CIFAR_CLASSES) in msg


# -- presets ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo"])
def test_cyclegan_presets_compose(tmp_path, name):
    dm = instantiate(compose_config([f"data={name}", f"paths.data_dir={tmp_path}", "seed=7"]).data)
    assert type(dm) is UnpairedDataModule and dm.path == str(tmp_path / name) and dm.seed == 7
    assert dm.url == f"https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip" and dm.download
    assert dm.batch_size == 1 and dm.image_shape == (3, 256, 256) and dm.load_size == 286


def test_a_cyclegan_download_is_unzipped_into_data_dir(tmp_path, monkeypatch):
    archive = write(tmp_path / "h2z.zip", {f"horse2zebra/{k}": v for k, v in LAYOUT.items()})
    urls = []
    monkeypatch.setattr(
        urllib.request, "urlretrieve", lambda url, to: urls.append(url) or shutil.copy(archive, to)
    )
    overrides = ["data=horse2zebra", f"paths.data_dir={tmp_path}/data", f"paths.log_dir={tmp_path}/logs"]
    dm = instantiate(compose_config([*overrides, "data.resolution=8", "data.load_size=10"]).data)
    dm.setup("fit")
    assert urls == ["https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"]
    assert (tmp_path / "data/horse2zebra/testB/u3.png").is_file() and len(dm.dataset) == 5


def test_offline_presets_compose(tmp_path):
    emoji = instantiate(compose_config(["data=emoji_unpaired", f"paths.data_dir={tmp_path}"]).data)
    assert emoji.split == "disjoint_by_name" and emoji.holdout_every == 10 and emoji.load_size == 72
    assert emoji.image_shape == (3, 64, 64) and emoji.batch_size == 1
    with pytest.raises(DatasetNotFoundError, match=r"npm pack emoji-datasource-google@16\.0\.0"):
        emoji.setup("fit")
    cifar = instantiate(compose_config(["data=cifar_unpaired", f"paths.data_dir={tmp_path}"]).data)
    assert (cifar.a_dir, cifar.b_dir, cifar.test_a_dir, cifar.test_b_dir) == (
        "train/horse",
        "train/deer",
        "test/horse",
        "test/deer",
    )
    assert cifar.image_shape == (3, 32, 32) and cifar.path == str(tmp_path / "cifar10-jpeg.zip")


# -- the real offline data (../shared/datasets beside the repository) -------------------------------------


def over_white(z: zipfile.ZipFile, name: str, size: int) -> torch.Tensor:
    x = np.asarray(Image.open(io.BytesIO(z.read(name))).convert("RGBA"), np.float64)
    rgb = x[..., :3] * x[..., 3:] / 255 + 255 * (1 - x[..., 3:] / 255)
    t = torch.from_numpy(rgb.round().astype(np.uint8)).permute(2, 0, 1)[None]
    return resize_uint8(t, size)[0]


@pytest.mark.skipif(not EMOJI_ZIP.is_file(), reason=f"{EMOJI_ZIP} not available")
def test_real_emoji_unpaired_never_shows_a_pair(tmp_path):
    overrides = ["data=emoji_unpaired", f"data.path={EMOJI_ZIP}", f"paths.log_dir={tmp_path}"]
    dm = instantiate(compose_config([*overrides, "data.max_samples=32"]).data)
    dm.setup("fit")
    found = dm._find()
    train_a, train_b = set(found["train_a"].stems), set(found["train_b"].stems)
    test = dm.test_names_a
    assert len(train_a) == len(train_b) == 1704 and len(test) == 378 and dm.test_names_b == test
    assert not train_a & train_b and not (train_a | train_b) & set(test)
    assert len(dm.dataset) == 32 and set(dm.train_names_a) <= train_a and set(dm.train_names_b) <= train_b
    gt_b, gt_a = dm.test_ground_truth(max_n=4)
    ta, tb = dm.test_sets(max_n=4)
    with zipfile.ZipFile(EMOJI_ZIP) as z:
        for i, name in enumerate(test[:4]):
            assert (gt_b[i].int() - over_white(z, f"twitter/{name}.png", 64).int()).abs().max() <= 1
            assert (gt_a[i].int() - over_white(z, f"google/{name}.png", 64).int()).abs().max() <= 1
            assert torch.equal(gt_b[i], tb[i]) and torch.equal(gt_a[i], ta[i])
    assert int(ta[:, :, 0, 0].min()) == 255  # transparent corners over white
    a, b = next(iter(dm.train_dataloader()))
    assert a.shape == b.shape == (1, 3, 64, 64)


@pytest.mark.skipif(not CIFAR_ZIP.is_file(), reason=f"{CIFAR_ZIP} not available")
def test_real_cifar_unpaired_reads_two_classes(tmp_path):
    overrides = ["data=cifar_unpaired", f"data.path={CIFAR_ZIP}", f"paths.log_dir={tmp_path}"]
    dm = instantiate(compose_config([*overrides, "data.max_samples=16"]).data)
    dm.setup("fit")
    assert len(dm.dataset) == 16 and dm.dataset.sides[0].shape == (16, 3, 36, 36)
    assert dm.test_ground_truth() == (None, None)
    ta, tb = dm.test_sets(max_n=8)
    assert ta.shape == tb.shape == (8, 3, 32, 32) and dm.test_names_a[:2] == ["0000", "0001"]
    with zipfile.ZipFile(CIFAR_ZIP) as z:
        for x, cls in ((ta[0], "horse"), (tb[0], "deer")):
            ref = torch.from_numpy(
                np.array(Image.open(io.BytesIO(z.read(f"test/{cls}/0000.jpg"))).convert("RGB"))
            )
            assert torch.equal(x, ref.permute(2, 0, 1))
    bad = instantiate(compose_config([*overrides, "data.domains=[horse,zebra]"]).data)
    with pytest.raises(DatasetNotFoundError, match=", ".join(CIFAR_CLASSES)):
        bad.setup("fit")
