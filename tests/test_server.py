"""The HTTP service: jobs end to end, Range requests, limits, path safety, cancel, expiry."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from talkinghead.media import write_wav  # noqa: E402
from talkinghead.server.app import Settings, create_app  # noqa: E402
from talkinghead.server.limits import Limits  # noqa: E402

POLL_S, MAX_WAIT_S = 0.2, 180.0


@pytest.fixture(scope="module")
def hello_wav(tmp_path_factory) -> Path:
    """About 0.8 s of synthetic speech as a wav file."""
    from talkinghead.audio.tts import synthesize

    return write_wav(tmp_path_factory.mktemp("hello") / "hello.wav", synthesize("Hello there.").waveform)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A running app (one worker) and its data directory."""
    data = tmp_path_factory.mktemp("data")
    app = create_app(Settings(data_dir=data, workers=1, ttl_s=3600))
    with TestClient(app) as client:
        yield client, app, data


def submit(client, portrait: Path, audio: Path | None = None, **fields):
    files = {"image": ("photo.jpg", portrait.read_bytes(), "image/jpeg")}
    if audio is not None:
        files["audio"] = ("speech.wav", audio.read_bytes(), "audio/wav")
    return client.post("/v1/videos", files=files, data={k: str(v) for k, v in fields.items()})


def wait_for(client, job_id: str, statuses=("done", "failed")) -> dict:
    deadline = time.monotonic() + MAX_WAIT_S
    while time.monotonic() < deadline:
        job = client.get(f"/v1/videos/{job_id}").json()
        if job.get("status") in statuses:
            return job
        time.sleep(POLL_S)
    raise AssertionError(f"job {job_id} did not reach {statuses} in {MAX_WAIT_S} s")


def test_audio_job_runs_to_an_mp4_that_serves_byte_ranges(server, portrait_path, hello_wav, tmp_path):
    from talkinghead.media import probe_video

    client, _, _ = server
    r = submit(client, portrait_path, hello_wav, size=128, pose_style=3, seed=1)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "running") and r.headers["location"] == f"/v1/videos/{job['id']}"
    job = wait_for(client, job["id"])
    assert job["status"] == "done", job
    assert job["progress"] == 1.0 and job["frames_total"] > 10 and job["expires_at"] > time.time()
    video = client.get(job["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.headers["accept-ranges"] == "bytes"
    out = tmp_path / "got.mp4"
    out.write_bytes(video.content)
    info = probe_video(out)
    assert (info.width, info.height) == (128, 128) and info.has_audio
    part = client.get(job["video_url"], headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.content == video.content[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(video.content)}"
    tail = client.get(job["video_url"], headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == video.content[-10:]
    bad = client.get(job["video_url"], headers={"Range": f"bytes={len(video.content) + 5}-"})
    assert bad.status_code == 416
    download = client.get(job["video_url"], params={"download": "true"})
    assert download.headers["content-disposition"].startswith("attachment")


def test_text_job_with_options_is_spoken_offline(server, portrait_path):
    client, _, _ = server
    r = submit(client, portrait_path, text="Hi, Bob.", size=96, still="true", no_blink="on",
               emotion="happy", expression_scale=1.2, gaze="camera")
    assert r.status_code == 202, r.text
    job = wait_for(client, r.json()["id"])
    assert job["status"] == "done", job
    assert client.get(job["video_url"]).content[4:8] == b"ftyp"


def test_a_photo_without_a_face_fails_with_a_clear_message_then_expires(portrait_path, hello_wav,
                                                                      tmp_path):
    from PIL import Image

    wall = tmp_path / "wall.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((64, 64, 3)) * 40 + 100).astype(np.uint8)).save(wall)
    data = tmp_path / "data"
    with TestClient(create_app(Settings(data_dir=data, ttl_s=0.5))) as client:
        r = submit(client, wall, hello_wav, size=128)
        job_id = r.json()["id"]
        job = wait_for(client, job_id)
        assert job["status"] == "failed" and "face" in job["error"].lower()
        assert str(data) not in job["error"]
        deadline = time.monotonic() + 10
        while client.get(f"/v1/videos/{job_id}").status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get(f"/v1/videos/{job_id}").status_code == 404
        assert not (data / "jobs" / job_id).exists()


def test_expire_removes_finished_jobs_and_their_files(server, portrait_path, hello_wav):
    client, app, data = server
    job_id = submit(client, portrait_path, hello_wav, size=64).json()["id"]
    assert wait_for(client, job_id)["status"] == "done"
    manager = app.state.manager
    assert manager.expire(now=time.time()) == 0
    assert manager.expire(now=time.time() + manager.ttl_s + 1) >= 1
    assert client.get(f"/v1/videos/{job_id}").status_code == 404
    assert client.get(f"/v1/videos/{job_id}/video").status_code == 404
    assert not (data / "jobs" / job_id).exists()


def test_delete_cancels_a_running_job(server, portrait_path):
    client, _, data = server
    text = "This sentence is long enough to keep the worker busy for a while. " * 3
    job_id = submit(client, portrait_path, text=text, size=128).json()["id"]
    job = wait_for(client, job_id, statuses=("running", "done", "failed"))
    assert job["status"] == "running"
    assert client.delete(f"/v1/videos/{job_id}").status_code == 204
    assert client.get(f"/v1/videos/{job_id}").status_code == 404
    assert client.delete(f"/v1/videos/{job_id}").status_code == 404
    deadline = time.monotonic() + 15
    while (data / "jobs" / job_id).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (data / "jobs" / job_id).exists()
    assert client.get("/healthz").json()["jobs"]["running"] == 0


def test_a_restarted_server_takes_back_its_jobs(tmp_path, portrait_path, hello_wav):
    """Jobs survive a restart of the server: a finished one is still served, and the one the
    stop interrupted and the one still queued run again; a job folder without a saved state
    (a job never submitted) is removed."""
    data = tmp_path / "data"
    with TestClient(create_app(Settings(data_dir=data, workers=1))) as client:
        done = submit(client, portrait_path, hello_wav, size=64).json()["id"]
        assert wait_for(client, done)["status"] == "done"
        text = "This sentence is long enough to keep the worker busy for a while. " * 3
        busy = submit(client, portrait_path, text=text, size=128).json()["id"]
        waiting = submit(client, portrait_path, hello_wav, size=64).json()["id"]
        assert wait_for(client, busy, statuses=("running",))["status"] == "running"
    stray = data / "jobs" / ("f" * 32)
    stray.mkdir()
    with TestClient(create_app(Settings(data_dir=data, workers=1))) as client:
        assert client.get(f"/v1/videos/{done}").json()["status"] == "done"
        assert client.get(f"/v1/videos/{done}/video").status_code == 200
        assert client.get(f"/v1/videos/{waiting}").json()["status"] == "queued"
        for job_id in (busy, waiting):
            assert wait_for(client, job_id)["status"] == "done"
            assert client.get(f"/v1/videos/{job_id}/video").status_code == 200
        assert not stray.exists()


def test_video_of_an_unfinished_job_is_409(server, portrait_path, hello_wav):
    client, _, _ = server
    job_id = submit(client, portrait_path, hello_wav, size=64).json()["id"]
    r = client.get(f"/v1/videos/{job_id}/video")
    assert r.status_code in (409, 200)
    if r.status_code == 409:
        assert r.json()["error"]["code"] == "not_ready"
    assert client.delete(f"/v1/videos/{job_id}").status_code == 204


# ------------------------------------------------------------------------------------ limits


def limited(tmp_path: Path, **limits) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path / "data", limits=Limits(**limits))))


def error_code(r) -> str:
    return r.json()["error"]["code"]


def test_upload_over_the_size_limit_is_413(tmp_path, portrait_path, hello_wav):
    with limited(tmp_path, max_upload_bytes=20_000) as client:
        r = submit(client, portrait_path, hello_wav)
        assert r.status_code == 413 and error_code(r) == "upload_too_large"
        body = submit_body(portrait_path)

        def chunks():  # no Content-Length: the limit is enforced while the body streams in
            for i in range(0, len(body[0]), 4096):
                yield body[0][i:i + 4096]

        r = client.post("/v1/videos", content=chunks(), headers={"content-type": body[1]})
        assert r.status_code == 413 and error_code(r) == "upload_too_large"
    assert not any((tmp_path / "data" / "jobs").iterdir())


def submit_body(portrait: Path) -> tuple[bytes, str]:
    """A multipart body (and its content type) with the portrait and a text."""
    import httpx

    request = httpx.Request("POST", "http://x/", files={"image": ("p.jpg", portrait.read_bytes())},
                            data={"text": "hello"})
    return request.read(), request.headers["content-type"]


def test_image_with_too_many_pixels_is_413_and_not_an_image_is_422(tmp_path, portrait_path, hello_wav):
    with limited(tmp_path, max_image_pixels=10_000) as client:
        r = submit(client, portrait_path, hello_wav)
        assert r.status_code == 413 and error_code(r) == "image_too_large"
        r = submit(client, hello_wav, hello_wav)
        assert r.status_code == 422 and error_code(r) == "bad_image"


def test_audio_too_long_or_unreadable_is_422(tmp_path, portrait_path, hello_wav):
    with limited(tmp_path, max_audio_seconds=0.2, max_text_chars=10) as client:
        r = submit(client, portrait_path, hello_wav)
        assert r.status_code == 422 and error_code(r) == "audio_too_long"
        r = submit(client, portrait_path, portrait_path)
        assert r.status_code == 422 and error_code(r) == "bad_audio"
        assert str(tmp_path) not in r.json()["error"]["message"]
        r = submit(client, portrait_path, text="far too many characters")
        assert r.status_code == 422 and error_code(r) == "text_too_long"


@pytest.mark.parametrize("fields, code", [
    ({"pose_style": "99"}, "bad_option"),
    ({"size": "4096"}, "bad_size"),
    ({"emotion": "bored"}, "bad_option"),
    ({"gaze": "wander"}, "bad_option"),
    ({"no_such_option": "1"}, "bad_option"),
    ({"ref_pose": "/etc/passwd"}, "bad_option"),  # file-path options are not for clients
    ({"still": "maybe"}, "bad_option"),
    ({"language": "English"}, "bad_option"),
])
def test_invalid_options_are_422(tmp_path, portrait_path, hello_wav, fields, code):
    with limited(tmp_path) as client:
        r = submit(client, portrait_path, hello_wav, **fields)
        assert r.status_code == 422 and error_code(r) == code, r.text
        name, message = list(fields)[0], r.json()["error"]["message"]
        assert name in message or name.replace("_", " ") in message


def test_missing_or_doubled_inputs_are_refused(tmp_path, portrait_path, hello_wav):
    with limited(tmp_path) as client:
        assert error_code(submit(client, portrait_path)) == "missing_speech"
        assert error_code(submit(client, portrait_path, hello_wav, text="hi")) == "missing_speech"
        r = client.post("/v1/videos", data={"text": "hi"})
        assert r.status_code == 415
        r = client.post("/v1/videos", files={"audio": ("a.wav", hello_wav.read_bytes())},
                        data={"text": ""})
        assert r.status_code == 422 and error_code(r) == "missing_image"


def test_full_queue_is_429_with_retry_after(tmp_path, portrait_path, hello_wav):
    with limited(tmp_path, max_queued=0) as client:
        r = submit(client, portrait_path, hello_wav)
        assert r.status_code == 429 and error_code(r) == "queue_full"
        assert r.headers["retry-after"].isdigit()


# ------------------------------------------------------------------------------------ safety


def test_client_names_never_become_paths(server, portrait_path, hello_wav):
    client, _, data = server
    before = set(data.parent.iterdir())
    files = {"image": ("../../../evil.jpg", portrait_path.read_bytes(), "image/jpeg"),
             "audio": ("/tmp/../../evil.wav", hello_wav.read_bytes(), "audio/wav")}
    r = client.post("/v1/videos", files=files, data={"size": "64"})
    assert r.status_code == 202
    job_id = r.json()["id"]
    assert sorted(p.name for p in (data / "jobs" / job_id).iterdir() if p.name != "video.mp4")[:3] \
        == ["audio", "image", "spec.json"]
    assert set(data.parent.iterdir()) == before
    assert client.delete(f"/v1/videos/{job_id}").status_code == 204
    for path in ["/v1/videos/..%2F..%2Fetc%2Fpasswd", "/v1/videos/../../etc/passwd",
                 f"/v1/videos/{job_id}%2F..%2Fspec.json", "/v1/videos/%2e%2e/video",
                 "/static/../app.py", "/static/%2e%2e/jobs.py", "/static/..%2Fjobs.py"]:
        r = client.get(path)
        assert r.status_code == 404, path
        assert b"import" not in r.content and b"root:" not in r.content


# ------------------------------------------------------------------------------------ pages


def test_health_docs_and_page_are_served_without_external_urls(server):
    client, _, _ = server
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["workers"] == 1
    spec = client.get("/openapi.json").json()
    paths = {"/v1/videos", "/v1/videos/{job_id}", "/v1/videos/{job_id}/video", "/healthz"}
    assert paths <= set(spec["paths"])
    for path in ["/", "/docs", "/static/app.js", "/static/app.css", "/static/docs.js"]:
        r = client.get(path)
        assert r.status_code == 200, path
        assert "http://" not in r.text and "https://" not in r.text, path
    options = {o["name"]: o for o in client.get("/v1/options").json()["options"]}
    assert options["preprocess"]["choices"][0] == "crop" and "ref_pose" not in options
    assert options["language"]["default"] == "en"


def test_worker_exit_codes_become_messages(tmp_path):
    from talkinghead.server.jobs import _outcome_error

    assert "signal 9" in _outcome_error(tmp_path, -9, False, 10)
    assert "exit code 1" in _outcome_error(tmp_path, 1, False, 10)
    assert "longer than 10 s" in _outcome_error(tmp_path, None, True, 10)


# ---- live sessions over a WebSocket (/v1/live) ----

def live_frames(ws, pcm: bytes, chunk: int) -> tuple[list[bytes], dict]:
    """Send ``pcm`` in ``chunk``-byte messages, then end → (the frames, the done message)."""
    for start in range(0, len(pcm), chunk):
        ws.send_bytes(pcm[start:start + chunk])
    ws.send_text('{"type": "end"}')
    frames = []
    while (message := ws.receive()).get("bytes") is not None:
        frames.append(message["bytes"])
    return frames, json.loads(message["text"])


def test_live_session_sends_the_frames_a_local_stream_renders(server, portrait_path, hello_wav):
    import cv2

    from talkinghead.config import Config, FaceConfig
    from talkinghead.media import load_audio, load_image
    from talkinghead.server.live import JPEG_QUALITY
    from talkinghead.stream import Stream

    client, _, _ = server
    speech = load_audio(hello_wav)  # 16 kHz
    pcm = (np.clip(speech.samples, -1, 1) * 32767).astype("<i2").tobytes()
    with client.websocket_connect("/v1/live?size=128&seed=3") as ws:
        ws.send_bytes(portrait_path.read_bytes())
        ready = ws.receive_json()
        assert ready == {"type": "ready", "width": 128, "height": 128, "fps": 25.0, "sample_rate": 16000}
        frames, done = live_frames(ws, pcm, 641)  # odd sizes: samples split across messages
    local = Stream(load_image(portrait_path), Config(face=FaceConfig(size=128), seed=3))
    samples = (np.clip(speech.samples, -1, 1) * 32767).astype(np.int16) / np.float32(32768.0)
    expected = [f.pixels for f in local.feed(samples.astype(np.float32)) + local.finish()]
    assert done == {"type": "done", "frames": len(frames)} and len(frames) == len(expected) >= 20
    quality = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    assert frames == [cv2.imencode(".jpg", e[..., ::-1], quality)[1].tobytes() for e in expected]
    decoded = [cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_GRAYSCALE) for f in frames]
    assert np.std([d[80:110, 40:90].mean() for d in decoded]) > 0.5  # the mouth moves


def test_live_frames_leave_while_the_speech_is_still_arriving(server, portrait_path, hello_wav):
    from talkinghead.media import load_audio

    client, _, _ = server
    speech = load_audio(hello_wav)
    pcm = (np.clip(speech.samples, -1, 1) * 32767).astype("<i2").tobytes()
    with client.websocket_connect("/v1/live?size=96") as ws:
        ws.send_bytes(portrait_path.read_bytes())
        ws.receive_json()
        assert client.get("/healthz").json()["live"] == {"active": 1, "max": 2}
        half = len(pcm) // 4 * 2
        ws.send_bytes(pcm[:half])  # half the speech: the frames it covers come back at once
        seconds = half / 2 / 16000
        count, ready = int((seconds - 0.12) * 25), []
        reader = threading.Thread(target=lambda: ready.extend(ws.receive_bytes() for _ in range(count)),
                                  daemon=True)  # a server that held the frames back would hang it
        reader.start()
        reader.join(60)
        assert len(ready) == count and all(f[:2] == b"\xff\xd8" for f in ready)  # JPEGs
        frames, done = live_frames(ws, pcm[half:], 3200)
        assert done["frames"] == len(ready) + len(frames)


def test_live_speech_at_48_khz_is_resampled(server, portrait_path, hello_wav):
    from talkinghead.audio.dsp import resample_poly
    from talkinghead.media import load_audio

    client, _, _ = server
    speech = load_audio(hello_wav)
    counts = {}
    for rate in (16000, 48000):
        samples = speech.samples if rate == 16000 else resample_poly(speech.samples, 3, 1)
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        with client.websocket_connect(f"/v1/live?size=96&sample_rate={rate}") as ws:
            ws.send_bytes(portrait_path.read_bytes())
            assert ws.receive_json()["sample_rate"] == rate
            frames, done = live_frames(ws, pcm, 4000)
            counts[rate] = done["frames"]
    assert counts[48000] == counts[16000] > 15


def test_live_motion_only_needs_no_portrait_and_sends_the_live_coefficients(server, hello_wav):
    from talkinghead.config import Config
    from talkinghead.face.model import CHANNELS
    from talkinghead.media import load_audio
    from talkinghead.motion.live import LiveMotion
    from talkinghead.motion.track import num_frames_for

    client, _, _ = server
    speech = load_audio(hello_wav)
    pcm = (np.clip(speech.samples, -1, 1) * 32767).astype("<i2").tobytes()
    with client.websocket_connect("/v1/live?output=motion&seed=3") as ws:
        ready = ws.receive_json()
        assert ready == {"type": "ready", "channels": list(CHANNELS), "fps": 25.0, "sample_rate": 16000}
        for start in range(0, len(pcm), 1280):
            ws.send_bytes(pcm[start:start + 1280])
        ws.send_text('{"type": "end"}')
        frames = []
        while (message := ws.receive_json())["type"] == "frame":
            frames.append(message)
    assert message == {"type": "done", "frames": len(frames)}
    assert len(frames) == num_frames_for(speech.duration, 25.0)
    assert [f["index"] for f in frames] == list(range(len(frames)))
    local = LiveMotion(CHANNELS, Config(seed=3))
    samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
    blocks = local.feed(samples) + local.finish(len(frames))
    expression = np.concatenate([b.expression for b in blocks])
    got = np.array([[f["expression"][c] for c in CHANNELS] for f in frames])
    np.testing.assert_allclose(got, expression, atol=1e-4)  # the stream's own motion, rounded
    assert set(frames[0]["pose"]) == {"pitch", "yaw", "roll", "x", "y", "z"}
    assert got[:, CHANNELS.index("jaw_open")].max() > 0.1  # the mouth opens on the speech


@pytest.mark.parametrize("first, query, code", [
    ("text", "", "missing_image"),
    ("photo", "sample_rate=500", "bad_option"),
    ("photo", "output=gif", "bad_option"),
    ("photo", "yaw=10", "bad_input"),
    ("junk", "", "bad_image"),
    ("grey", "", "bad_input"),
    ("photo", "pose_style=99", "bad_option"),
    ("chat", "", "bad_message"),
    ("silent", "", "idle"),
])
def test_live_session_errors_are_named_and_close_the_socket(server, portrait_path, monkeypatch,
                                                            first, query, code):
    import cv2

    from talkinghead.server import live

    monkeypatch.setattr(live, "IDLE_S", 0.5)
    client, _, _ = server
    with client.websocket_connect(f"/v1/live?{query}") as ws:
        if first == "text":
            ws.send_text("hello")
        elif first == "junk":
            ws.send_bytes(b"not a picture at all")
        elif first == "grey":  # a photo without a face
            ws.send_bytes(cv2.imencode(".png", np.full((200, 200, 3), 128, np.uint8))[1].tobytes())
        else:
            ws.send_bytes(portrait_path.read_bytes())
        if first in ("chat", "silent"):
            assert ws.receive_json()["type"] == "ready"
        if first == "chat":
            ws.send_text("hello")
        error = ws.receive_json()
        assert error["type"] == "error" and error["error"]["code"] == code, error
        assert ws.receive()["code"] == 1008


def test_live_sessions_beyond_the_limit_are_told_to_wait(tmp_path, portrait_path):
    app = create_app(Settings(data_dir=tmp_path, max_live=0))
    with TestClient(app) as client, client.websocket_connect("/v1/live") as ws:
        error = ws.receive_json()
        assert error["error"]["code"] == "busy" and ws.receive()["code"] == 1013


def test_serve_over_https(tmp_path):
    import shutil
    import socket
    import subprocess
    import sys

    import httpx

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "talkinghead", "serve", "--port", str(port), "--quiet",
           "--data-dir", str(tmp_path / "data"), "--ssl-certfile", str(cert)]
    half = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert half.returncode == 2 and "both --ssl-certfile and --ssl-keyfile" in half.stderr
    server = subprocess.Popen(cmd + ["--ssl-keyfile", str(key)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and server.poll() is None, "no https server"
                time.sleep(0.3)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)  # plain http is not served
    finally:
        server.terminate()
        server.wait(timeout=30)
