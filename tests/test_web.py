"""`srnl serve`'s HTTP API, through a real HTTP client against a server on a real socket."""
import io
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from conftest import Server, smooth_image
from srnl.models.registry import for_input

httpx = pytest.importorskip("httpx")


def png_bytes(h=40, w=48, seed=0, mode="RGB") -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(smooth_image(h, w, seed, channels=4 if mode == "RGBA" else 3), mode)
    img.save(buf, "PNG")
    return buf.getvalue()


def post(server, task, content, name="photo.png", **fields):
    return httpx.post(f"{server.url}/api/{task}", files={"image": (name, content)},
                      data={k: str(v) for k, v in fields.items()}, timeout=120)


def error_of(answer) -> str:
    message = answer.json()["error"]
    assert "\n" not in message and "Traceback" not in message
    return message


def test_models_lists_the_shipped_ones_with_their_defaults(server):
    from srnl.models.registry import DEFAULTS, PRETRAINED

    models = httpx.get(f"{server.url}/api/models").json()
    assert [m["name"] for m in models] == list(PRETRAINED)
    assert {m["name"] for m in models if m["default"]} == set(DEFAULTS.values())
    assert all(m["purpose"] and m["task"] in ("sr", "denoise") for m in models)


@pytest.mark.parametrize("task, name, fields, args", [
    ("upscale", "photo.png", {}, []),
    ("upscale", "alpha.png", {"scale": 3}, ["-s", 3]),
    ("upscale", "photo.jpg", {"width": 70, "model": "x2"}, ["--width", 70, "-m", "x2"]),
    ("denoise", "photo.jpg", {"sigma": 20}, ["--sigma", 20]),
    ("denoise", "photo.png", {}, []),
])
def test_answers_the_bytes_the_command_line_writes(server, srnl, tmp_path, task, name, fields,
                                                   args):
    img = Image.fromarray(smooth_image(40, 48, channels=4 if name == "alpha.png" else 3))
    src = tmp_path / name
    img.save(src, **({"quality": 80} if name.endswith(".jpg") else {}))
    answer = post(server, task, src.read_bytes(), name, **fields)
    assert answer.status_code == 200, answer.text
    code, _, err = srnl(task, src, "-o", tmp_path / "out/", "--tile", 64, "--threads", 1, *args)
    assert code == 0, err
    (written,) = (tmp_path / "out").iterdir()
    assert answer.content == written.read_bytes()
    assert answer.headers["content-type"] == ("image/jpeg" if name.endswith(".jpg") else "image/png")
    assert written.name in answer.headers["content-disposition"]
    out = Image.open(io.BytesIO(answer.content))
    assert answer.headers["x-srnl-output-size"] == f"{out.size[0]}x{out.size[1]}"
    assert answer.headers["x-srnl-input-size"] == "48x40"
    assert out.mode == img.mode


def test_a_size_request_says_how_it_was_met(server):
    answer = post(server, "upscale", png_bytes(), height=100)
    assert answer.status_code == 200
    assert Image.open(io.BytesIO(answer.content)).size == (120, 100)
    assert answer.headers["x-srnl-note"] == "Lanczos to 120x100"
    # The model that ran on this picture: photo-x3, or its model for aliased input.
    picture = np.asarray(Image.open(io.BytesIO(png_bytes())))
    assert answer.headers["x-srnl-model"] == for_input("photo-x3", picture)
    answer = post(server, "upscale", png_bytes(), ext="webp")
    assert answer.headers["content-type"] == "image/webp"
    assert 'filename="photo_x2.webp"' in answer.headers["content-disposition"]


def test_bad_input_answers_4xx_with_one_line(server):
    answer = post(server, "upscale", b"not an image at all", "../../etc/evil.png")
    assert answer.status_code == 400
    assert error_of(answer) == "../../etc/evil.png: not an image Pillow can read"
    truncated = png_bytes()[:300]
    assert post(server, "denoise", truncated).status_code == 400

    big = png_bytes(500, 500)  # 250,000 pixels: over the server's 200,000
    answer = post(server, "upscale", big)
    assert answer.status_code == 413 and "--max-pixels" in error_of(answer)
    answer = post(server, "upscale", b"\0" * 1_200_000)  # over --max-upload-mb 1
    assert answer.status_code == 413 and "limit" in error_of(answer)

    for task, fields, field in [("upscale", {"scale": 9}, "scale"),
                                ("upscale", {"scale": "abc"}, "scale"),
                                ("upscale", {"scale": 2, "width": 10}, "scale"),
                                ("upscale", {"model": "/etc/passwd"}, "model"),
                                ("upscale", {"model": "denoise"}, "model"),
                                ("upscale", {"ext": "jepg"}, None),
                                ("upscale", {"quality": 0}, "quality"),
                                ("denoise", {"sigma": "abc"}, "sigma"),
                                ("denoise", {"job": "../x"}, "job")]:
        answer = post(server, task, png_bytes(), **fields)
        assert answer.status_code == 422, (fields, answer.text)
        assert error_of(answer).startswith(f"{field}: " if field else "")
    assert httpx.post(f"{server.url}/api/upscale", timeout=30).status_code == 422  # no image
    answer = httpx.get(f"{server.url}/nothing-here")
    assert answer.status_code == 404 and error_of(answer)
    assert server.folders() == []


def test_eight_clients_at_once_get_their_own_answers(server):
    images = [png_bytes(24 + 4 * i, 32, seed=i) for i in range(8)]
    alone = [post(server, "upscale", im).content for im in images]
    answers = [None] * 8

    def client(i):
        answers[i] = post(server, "upscale", images[i])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200] * 8
    assert [a.content for a in answers] == alone
    assert server.folders() == []


def wait_for(condition, seconds=60):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def raw_request(server, task, content, **fields) -> socket.socket:
    """A request sent whole on a socket of our own, so that the test can hang up mid-job."""
    request = httpx.Client().build_request(
        "POST", f"{server.url}/api/{task}", files={"image": ("big.png", content)},
        data={k: str(v) for k, v in fields.items()})
    body = request.read()
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    sock.sendall(f"POST {request.url.raw_path.decode()} HTTP/1.1\r\n{head}\r\n".encode() + body)
    return sock


def test_queue_positions_progress_and_a_client_that_hangs_up(server):
    progress = lambda job: httpx.get(f"{server.url}/api/progress/{job}").json()
    long = png_bytes(256, 256)  # 16 tiles of 64, eight passes each
    first = raw_request(server, "upscale", long, scale=4, self_ensemble="true", job="first")
    wait_for(lambda: progress("first").get("total", 0) > 1)
    second = raw_request(server, "upscale", png_bytes(), job="second")
    assert wait_for(lambda: progress("second").get("position")) == 1
    running = progress("first")
    assert running["state"] == "running" and 0 < running["done"] < running["total"]

    # The running job stops at its next tile, the waiting one leaves the queue, and neither
    # leaves anything behind.
    started = time.monotonic()
    first.close()
    second.close()
    wait_for(lambda: "error" in progress("first") and "error" in progress("second"))
    assert time.monotonic() - started < 10
    wait_for(lambda: server.folders() == [])
    assert post(server, "upscale", png_bytes()).status_code == 200


def test_memory_returns_to_its_idle_level(server):
    post(server, "upscale", png_bytes(200, 200), scale=4)  # every model and buffer warm
    idle = server.rss_mb()
    threads = [threading.Thread(target=post, args=(server, "upscale", png_bytes(200, 200, i)),
                                kwargs={"scale": 4}) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.rss_mb() < idle + 50


def test_stops_cleanly_mid_job_and_removes_its_folder(tmp_path):
    pytest.importorskip("fastapi")
    running = Server(tmp_path, "--tile", 64)
    assert "<input type=\"file\"" in httpx.get(running.url).text
    job = raw_request(running, "upscale", png_bytes(256, 256), scale=4, self_ensemble="true",
                      job="long")
    wait_for(lambda: httpx.get(f"{running.url}/api/progress/long").json().get("done", 0) > 0)
    started = time.monotonic()
    code, out, err = running.stop()
    # The job was stopped, not waited for, and its client told why.
    assert time.monotonic() - started < 10
    assert job.recv(100).startswith(b"HTTP/1.1 503")
    job.close()
    assert code == 0, err
    assert "stopped" in out and "Traceback" not in err and "ERROR" not in err
    assert list(tmp_path.iterdir()) == []


def test_another_host_warns_and_a_taken_port_is_one_line(tmp_path, srnl):
    pytest.importorskip("fastapi")
    running = Server(tmp_path, "--host", "0.0.0.0")
    assert httpx.get(f"{running.url}/api/models").status_code == 200
    code, _, err = running.stop()
    assert code == 0 and "warning: listening on 0.0.0.0" in err

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    code, _, err = srnl("serve", "--port", taken.getsockname()[1])
    taken.close()
    assert code == 2 and err.count("\n") == 1 and "cannot listen on 127.0.0.1" in err


def test_without_the_web_extra_serve_says_what_to_install(srnl, monkeypatch):
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvicorn" else find(name, *a))
    code, _, err = srnl("serve")
    assert code == 2
    assert err.count("\n") == 1 and "pip install 'srnl[web]'" in err and "uvicorn" in err
