"""The web page end to end in a real headless browser (Debian's chromium, driven by selenium):
upload a portrait and speech (or record it: chromium's fake microphone beeps), watch the job
finish, get a playable video. Skips without chromium."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="needs Debian's chromium and chromium-driver")
WAIT_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """uvicorn serving the app on a free loopback port, in a thread, for this module."""
    pytest.importorskip("uvicorn")
    import uvicorn

    from talkinghead.server.app import Settings, create_app

    port = free_port()
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("webdata"), ttl_s=600))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser():
    selenium = pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=900,1100", "--autoplay-policy=no-user-gesture-required",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    assert selenium.__version__
    yield driver
    driver.quit()


def wait_until(condition, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_upload_watch_progress_and_play_the_video(base_url, browser, portrait_path,
                                                   short_speech_wav, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from talkinghead.media import load_audio

    wav = short_speech_wav
    browser.get(base_url + "/")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#preprocess option"), "crop modes")
    for name in ("emotion", "gaze", "language", "head_motion_scale", "seed", "no_blink"):
        assert browser.find_elements(By.ID, name), f"the server's {name} option has a control"
    assert browser.find_element(By.ID, "no_blink").get_attribute("type") == "checkbox"
    assert not browser.find_element(By.ID, "preview").is_displayed()
    browser.find_element(By.ID, "image").send_keys(str(portrait_path))
    wait_until(lambda: browser.execute_script(
        "const p = document.getElementById('preview'); return !p.hidden && p.naturalWidth;"),
        "the portrait's thumbnail")
    browser.find_element(By.ID, "no_blink").click()
    browser.find_element(By.ID, "seed").clear()
    browser.find_element(By.ID, "seed").send_keys("7")
    browser.find_element(By.ID, "audio").send_keys(str(wav))
    Select(browser.find_element(By.ID, "preprocess")).select_by_value("crop")
    Select(browser.find_element(By.ID, "emotion")).select_by_value("happy")
    browser.find_element(By.ID, "size").send_keys("128")
    browser.find_element(By.ID, "pose_style").clear()
    browser.find_element(By.ID, "pose_style").send_keys("5")
    browser.find_element(By.ID, "submit").click()
    video = browser.find_element(By.ID, "video")
    src = wait_until(lambda: video.get_attribute("src"), "the video's source")
    assert "/v1/videos/" in src and browser.find_element(By.ID, "status").text == "done"
    duration = wait_until(lambda: browser.execute_script(
        "const v = document.getElementById('video'); return v.readyState >= 2 && v.duration;"),
        "the video's metadata", timeout=30)
    assert abs(duration - load_audio(wav).duration) < 0.2
    assert browser.find_element(By.ID, "download").get_attribute("href").endswith("?download=true")
    browser.execute_script("document.getElementById('video').currentTime = 1.0")
    time.sleep(0.5)
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_text_to_speech_and_a_clear_error(base_url, browser, portrait_path):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#preprocess option"), "crop modes")
    browser.find_element(By.ID, "image").send_keys(str(portrait_path))
    browser.find_element(By.CSS_SELECTOR, "input[name=speech-kind][value=text]").click()
    browser.find_element(By.ID, "text").send_keys("Hi.")
    browser.find_element(By.ID, "size").send_keys("4096")  # beyond the server's limit
    browser.execute_script("document.getElementById('size').removeAttribute('max')")
    browser.find_element(By.ID, "submit").click()
    status = browser.find_element(By.ID, "status")
    wait_until(lambda: "size" in status.text, "the server's error message", timeout=30)
    assert "error" in status.get_attribute("class")


def test_record_speech_with_the_microphone(base_url, browser, portrait_path):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#preprocess option"), "crop modes")
    record_kind = browser.find_element(By.CSS_SELECTOR, "input[name=speech-kind][value=record]")
    assert record_kind.is_displayed()
    browser.find_element(By.ID, "image").send_keys(str(portrait_path))
    record_kind.click()
    assert not browser.find_element(By.ID, "audio").is_displayed()
    browser.find_element(By.ID, "size").send_keys("128")
    status, record = browser.find_element(By.ID, "status"), browser.find_element(By.ID, "record")
    browser.find_element(By.ID, "submit").click()
    wait_until(lambda: "record some speech first" in status.text, "the missing-recording message", 10)
    record.click()
    wait_until(lambda: record.text == "Stop", "the recording to start", 10)
    time.sleep(2.0)
    record.click()
    wait_until(lambda: browser.execute_script("return recording && recording.size"), "the recording", 10)
    assert browser.find_element(By.ID, "playback").is_displayed() and record.text == "Record again"
    browser.find_element(By.ID, "submit").click()
    wait_until(lambda: browser.find_element(By.ID, "video").get_attribute("src"), "the video")
    duration = wait_until(lambda: browser.execute_script(
        "const v = document.getElementById('video'); return v.readyState >= 2 && v.duration;"),
        "the video's metadata", timeout=30)
    assert 1.5 < duration < 3.0 and status.text == "done"


def test_take_the_portrait_with_the_camera(base_url, browser):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#preprocess option"), "crop modes")
    browser.find_element(By.ID, "camera-button").click()
    wait_until(lambda: browser.execute_script(
        "const v = document.getElementById('camera'); return v.readyState >= 2 && v.videoWidth;"),
        "the camera's picture", 10)
    browser.find_element(By.ID, "shoot").click()
    size = wait_until(lambda: browser.execute_script(
        "const p = document.getElementById('preview');"
        "return snapshot && !p.hidden && p.naturalWidth && [p.naturalWidth, p.naturalHeight];"),
        "the photo's thumbnail", 10)
    assert size[0] >= 320 and not browser.find_element(By.ID, "camera").is_displayed()
    assert browser.execute_script("return document.getElementById('image').required") is False
    browser.find_element(By.CSS_SELECTOR, "input[name=speech-kind][value=text]").click()
    browser.find_element(By.ID, "text").send_keys("Hi.")
    browser.find_element(By.ID, "submit").click()
    status = browser.find_element(By.ID, "status")
    # chromium's fake camera films a test pattern: the photo arrives, and has no face in it
    wait_until(lambda: "no face found" in status.text, "the server's verdict on the photo", 60)
    assert "error" in status.get_attribute("class")


def test_go_live_the_portrait_speaks_as_the_microphone_hears(base_url, browser, portrait_path):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#preprocess option"), "crop modes")
    go = browser.find_element(By.ID, "live")
    go.click()  # no portrait yet
    status = browser.find_element(By.ID, "status")
    wait_until(lambda: "choose a portrait first" in status.text, "the missing-portrait message", 10)
    browser.find_element(By.ID, "image").send_keys(str(portrait_path))
    browser.find_element(By.ID, "size").send_keys("128")
    go.click()
    wait_until(lambda: status.text == "live: speak", "the live session to start", 30)
    frames = wait_until(lambda: browser.execute_script("return live && live.frames >= 25 && live.frames"),
                        "a second of live frames", 30)  # chromium's fake microphone beeps
    size = browser.execute_script(
        "const v = document.getElementById('live-view'); return [v.naturalWidth, v.naturalHeight];")
    assert size == [128, 128] and frames >= 25
    go.click()
    wait_until(lambda: status.text.startswith("live session ended ("), "the session's end", 30)
    assert go.text == "Go live" and browser.execute_script("return live") is None
