"""The web app end to end: gradio_client, the plain HTTP endpoint, and abuse of both."""

import io
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from inpaintkit.io import read_image

from .conftest import REPO, shared

pytest.importorskip("gradio", reason="the app extra is installed by make test")
sys.path.insert(0, str(REPO / "benchmarks"))
from app_load import free_port, serve_and_load  # noqa: E402  (the load benchmark's own driver)


@pytest.fixture(scope="module")
def server():
    from inpaintkit.app import launch

    demo, url = launch(port=free_port(), block=False, max_upload_mb=2, concurrency=2, max_pixels=4_000_000)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def photo_and_mask(tmp_path_factory):
    folder = tmp_path_factory.mktemp("upload")
    rgb = read_image(shared("bsds500", "test", "100007.jpg"))
    hole = np.zeros(rgb.shape[:2], bool)
    hole[120:170, 200:280] = True
    Image.fromarray(rgb).save(folder / "photo.png")
    Image.fromarray(hole).save(folder / "mask.png")
    return folder / "photo.png", folder / "mask.png", rgb, hole


def post(url, files: dict, data: dict | None = None):
    import httpx

    return httpx.post(f"{url}api/inpaint", files=files, data=data or {}, timeout=120)


def test_binds_to_localhost_by_default(server):
    assert server.startswith("http://127.0.0.1:")


def test_gradio_client_end_to_end(server, photo_and_mask):
    from gradio_client import Client, handle_file

    photo, mask, rgb, hole = photo_and_mask
    client = Client(server, verbose=False)
    result_path, info = client.predict(
        handle_file(str(photo)), handle_file(str(mask)), "telea", "auto", api_name="/inpaint_files"
    )
    out = read_image(result_path)
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    assert (out[hole] != rgb[hole]).any() and "telea" in info
    with pytest.raises(Exception, match="upload a photo|empty"):
        client.predict(handle_file(str(photo)), None, "telea", "auto", api_name="/inpaint_files")
    text = photo.with_name("notes.png")
    text.write_text("not a photo")
    with pytest.raises(Exception, match="notes.png: not an image"):  # our message, not Gradio's decoder's
        client.predict(handle_file(str(text)), handle_file(str(mask)), "telea", "auto", api_name="/inpaint_files")


def test_http_endpoint_success_and_errors(server, photo_and_mask):
    photo, mask, rgb, hole = photo_and_mask
    ok = post(server, {"image": photo.read_bytes(), "mask": mask.read_bytes()}, {"model": "navier-stokes"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
    out = np.asarray(Image.open(io.BytesIO(ok.content)).convert("RGB"))
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    corrupt = post(server, {"image": photo.read_bytes()[:2000], "mask": mask.read_bytes()})
    assert corrupt.status_code == 400 and "error" in corrupt.json()
    text = post(server, {"image": b"hello", "mask": mask.read_bytes()})
    assert text.status_code == 400 and "not an image" in text.json()["error"]
    unknown = post(server, {"image": photo.read_bytes(), "mask": mask.read_bytes()}, {"model": "../../etc/passwd"})
    assert unknown.status_code == 400 and "unknown model" in unknown.json()["error"]
    bad_strategy = post(server, {"image": photo.read_bytes(), "mask": mask.read_bytes()}, {"strategy": "x"})
    assert bad_strategy.status_code == 400
    empty = np.zeros(rgb.shape[:2], np.uint8)
    buf = io.BytesIO()
    Image.fromarray(empty).save(buf, format="PNG")
    assert post(server, {"image": photo.read_bytes(), "mask": buf.getvalue()}).status_code == 400
    missing = post(server, {"image": photo.read_bytes()})
    assert missing.status_code == 400
    huge = post(server, {"image": b"\0" * (3 * 1024 * 1024), "mask": mask.read_bytes()})
    assert huge.status_code == 413 and "the limit is 2 MB (--max-upload-mb)" in huge.json()["error"]
    assert post(server, {"image": photo.read_bytes(), "mask": mask.read_bytes()}).status_code == 200  # still alive


def test_twenty_concurrent_requests(server, photo_and_mask):
    photo, mask, rgb, hole = photo_and_mask
    files = {"image": photo.read_bytes(), "mask": mask.read_bytes()}
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: post(server, files, {"model": "telea"}), range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    first = responses[0].content
    assert all(r.content == first for r in responses)


def test_bad_input_matrix_through_the_endpoint(server, tmp_path):
    """Every case of the CLI matrix, uploaded: a PNG with known pixels kept, or a 4xx with a message."""
    from .test_robustness import CASES, make_inputs

    inputs = make_inputs(tmp_path)
    for case in CASES:
        photo, mask, expected = inputs[case]
        r = post(server, {"image": photo.read_bytes(), "mask": mask.read_bytes()}, {"model": "telea"})
        if expected == "ok" and case != "mask all zero":  # the app asks for a hole instead of echoing the photo
            assert r.status_code == 200 and r.headers["content-type"] == "image/png", (case, r.text[:200])
        else:
            assert 400 <= r.status_code < 500 and r.json()["error"], (case, r.status_code)
            assert str(tmp_path) not in r.json()["error"]
    assert post(server, {"image": inputs["grayscale"][0].read_bytes(), "mask": inputs["grayscale"][1].read_bytes()})


def test_bad_input_matrix_through_the_python_api(tmp_path):
    import inpaintkit
    from inpaintkit.errors import InpaintError

    from .test_robustness import CASES, make_inputs

    inputs = make_inputs(tmp_path)
    for case in CASES:
        photo, mask, expected = inputs[case]
        if expected == "ok":
            out = inpaintkit.inpaint(photo, mask, model="telea")
            assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3, case
        else:
            with pytest.raises(InpaintError):
                inpaintkit.inpaint(photo, mask, model="telea")


def test_load_200_requests_8_at_a_time():
    """The benchmark's driver in a short setting: small photos, classical methods, no errors."""
    stats = serve_and_load(200, 8, ["telea", "navier-stokes", "mean-fill"], sizes=((96, 128), (192, 256), (240, 320)))
    assert stats["errors"] == []
    assert stats["p95_s"] < 30
    assert stats["rss_after_mb"] - stats["rss_before_mb"] < 200, stats  # no leak per request


def test_no_parameter_reaches_files_outside_the_app(server, photo_and_mask, tmp_path):
    import httpx

    photo, mask, rgb, hole = photo_and_mask
    files = {"image": photo.read_bytes(), "mask": mask.read_bytes()}
    escapes = [
        "../../etc/passwd",
        "/etc/passwd",
        "..\\..\\windows\\win.ini",
        "telea/../../x",
        str(photo),
        "file:///etc/passwd",
    ]
    for value in escapes:
        assert post(server, files, {"model": value}).status_code == 400, value
        assert post(server, files, {"strategy": value}).status_code == 400, value
    target = tmp_path / "escaped.png"
    sneaky = f"../../../../../../..{target}"
    r = httpx.post(f"{server}api/inpaint", files={"image": (sneaky, files["image"]), "mask": (sneaky, files["mask"])})
    assert r.status_code == 200 and not target.exists()
    # Gradio's own routes: uploads land in the app's folder, files outside it are not served.
    r = httpx.post(f"{server}gradio_api/upload", files={"files": (sneaky, b"\x89PNG tiny")})
    assert r.status_code == 200 and not target.exists()
    (stored,) = r.json()
    assert "inpaintkit-app-" in stored
    for path in ("/etc/passwd", str(photo), "%2e%2e/%2e%2e/%2e%2e/etc/passwd"):
        assert httpx.get(f"{server}gradio_api/file={path}").status_code in (403, 404), path


def test_gradio_refuses_oversized_uploads_before_decoding(server):
    import httpx

    # 2 MB for a photo plus 4 bytes a pixel for the editor's PNGs of a photo of up to 4 megapixels
    r = httpx.post(f"{server}gradio_api/upload", files={"files": ("big.png", b"\0" * (19 * 1024 * 1024))})
    assert r.status_code == 413


def test_a_cancelled_fill_never_reaches_the_model(monkeypatch):
    """Cancelling stops the server's work: a fill already reading its photo stops before the model,
    a queued one never starts."""
    import threading

    import inpaintkit.api as api
    from inpaintkit.io import Keep

    ran = []
    monkeypatch.setattr(api, "inpaint_array", lambda *a: ran.append("model"))
    inpainter = api.Inpainter(concurrency=1)
    gate = threading.Event()
    image, hole = np.zeros((16, 16, 3), np.uint8), np.ones((16, 16), bool)

    def slow_read():
        gate.wait(10)
        ran.append("read")
        return image, hole, Keep()

    first, stop_first = inpainter.submit(slow_read, "telea", "original", lambda *a: ran.append("deliver"))
    second, stop_second = inpainter.submit(lambda: ran.append("second"), "telea", "original", lambda *a: None)
    stop_first.set(), stop_second.set()
    gate.set()
    with pytest.raises(api.Cancelled):
        first.result(timeout=10)
    assert second.cancelled() or isinstance(second.exception(timeout=10), api.Cancelled)
    assert ran == ["read"]  # the photo was read, then nothing: no model, no delivery, no second fill
    inpainter.close()


def test_api_keeps_the_colour_profile_and_uses_one_mask_rule(server, photo_and_mask, tmp_path):
    """A photo with an embedded (non-sRGB) profile comes back with the same profile and its known
    pixels bit-identical; a JPEG mask with compression noise fills the same hole as its PNG."""
    from PIL import ImageCms

    photo, mask, rgb, hole = photo_and_mask
    # an RGB profile the browser would convert from (its description changed: not sRGB's bytes)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes().replace(b"sRGB", b"P3xx", 1)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95, icc_profile=profile)
    sent = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))  # the JPEG's own pixels
    jpeg_mask = io.BytesIO()
    Image.fromarray(hole.astype(np.uint8) * 255).save(jpeg_mask, format="JPEG", quality=40)
    r = post(server, {"image": buf.getvalue(), "mask": jpeg_mask.getvalue()}, {"model": "telea"})
    assert r.status_code == 200, r.text
    out = Image.open(io.BytesIO(r.content))
    assert out.info.get("icc_profile") == profile
    pixels = np.asarray(out.convert("RGB"))
    changed = (pixels != sent).any(axis=2)
    np.testing.assert_array_equal(pixels[~hole], sent[~hole])
    assert changed[hole].mean() > 0.5 and not changed[~hole].any()
    small = io.BytesIO()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(small, format="PNG")
    wrong = post(server, {"image": photo.read_bytes(), "mask": small.getvalue()})
    assert wrong.status_code == 400
    message = wrong.json()["error"]
    assert message == "mask: mask is 10x10 but the image is 481x321; send a mask of the photo's size"


def test_api_selects_objects_and_extends_the_canvas(server, photo_and_mask):
    photo, mask, rgb, hole = photo_and_mask
    wider = post(server, {"image": photo.read_bytes()}, {"extend": "left=32,right=16", "model": "telea"})
    assert wider.status_code == 200, wider.text
    out = np.asarray(Image.open(io.BytesIO(wider.content)).convert("RGB"))
    assert out.shape == (rgb.shape[0], rgb.shape[1] + 48, 3)
    np.testing.assert_array_equal(out[:, 32:-16], rgb)
    bear = post(server, {"image": photo.read_bytes()}, {"select": "170,165", "model": "telea"})
    assert bear.status_code == 200, bear.text
    changed = (np.asarray(Image.open(io.BytesIO(bear.content)).convert("RGB")) != rgb).any(axis=2)
    rows, cols = np.nonzero(changed)
    assert 0.003 < changed.mean() < 0.1  # the bear, not the scene
    assert rows.min() > 100 and rows.max() < 230 and cols.min() > 70 and cols.max() < 280
    bad_fields = [
        ({"extend": "left=x"}, "extend 'left=x'"),
        ({"select": "9999,1"}, "outside the"),
        ({"dilate": "-3", "select": "1,1"}, "dilate"),
        ({"dilate": "\u00b2", "select": "1,1"}, "dilate"),  # a digit to str.isdigit, not to int()
        ({"extend": "all=\u00b2"}, "extend"),
        ({"extend": "all=2000"}, "over the limit of 4.0 megapixels"),  # the canvas, not the upload, is too big
        ({}, "no hole given"),
    ]
    for bad, words in bad_fields:
        r = post(server, {"image": photo.read_bytes()}, bad)
        assert r.status_code == 400 and words in r.json()["error"], (bad, r.text)


def test_the_api_keeps_16_bit_photos_16_bit(server, tmp_path):
    import cv2

    deep = (np.random.default_rng(0).random((40, 56, 3)) * 65535).astype(np.uint16)
    hole = np.zeros((40, 56), bool)
    hole[10:20, 20:30] = True
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    Image.fromarray(hole).save(tmp_path / "mask.png")
    r = post(server, {"image": (tmp_path / "deep.png").read_bytes(), "mask": (tmp_path / "mask.png").read_bytes()},
             {"model": "telea"})  # fmt: skip
    assert r.status_code == 200, r.text
    out = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and (out[~hole] == deep[~hole]).all()


def test_sigterm_stops_the_app_and_removes_its_folder(tmp_path):
    import os
    import signal
    import subprocess
    import time
    import urllib.request

    from .conftest import CLI

    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the app's folder is made here
    app = subprocess.Popen([str(CLI), "app", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                assert app.poll() is None and time.monotonic() < deadline, app.stderr.read()
                time.sleep(0.5)
        assert list(tmp_path.glob("inpaintkit-app-*"))
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=60) == 0
    finally:
        app.kill()
    assert not list(tmp_path.glob("inpaintkit-app-*"))


def test_the_app_removes_its_folder_when_it_stops(photo_and_mask):
    from inpaintkit.app import launch

    photo, mask, rgb, hole = photo_and_mask
    demo, url = launch(port=free_port(), block=False)
    assert post(url, {"image": photo.read_bytes(), "mask": mask.read_bytes()}, {"model": "telea"}).status_code == 200
    assert demo.workdir.is_dir() and any(demo.workdir.rglob("*.png"))  # examples, at least
    demo.close()
    assert not demo.workdir.exists()


def test_the_hole_is_tinted_in_the_colour_and_opacity_picked():
    from inpaintkit.page import overlay, rgb_colour

    assert rgb_colour("#0F0") == rgb_colour("#00ff00") == rgb_colour("rgba(0, 255, 0, 0.5)") == "#00ff00"
    assert rgb_colour(None) == rgb_colour("nonsense") == "#ff00ff"  # the default, never an error
    rgb = np.full((4, 4, 3), 100, np.uint8)
    hole = np.zeros((4, 4), bool)
    hole[1:3, 1:3] = True
    out = overlay(rgb, hole, "#00ff00", 0.5)
    np.testing.assert_array_equal(out[hole], np.tile([50, 178, 50], (4, 1)))  # 100 * 0.5 + 255 * 0.5 = 177.5
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
