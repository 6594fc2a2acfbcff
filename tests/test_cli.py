"""End-to-end checks of the installed `soundcollage` console script (run as a subprocess, as users run it)."""
import functools, http.server, os, shutil, subprocess, sys, tempfile, threading, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

EXE = shutil.which("soundcollage", path=str(Path(sys.executable).parent)) or "soundcollage"


def run(*args, cwd=None):
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def tone(path, sr=16000, dur=1.0):
    t = np.arange(int(sr * dur)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sr)


@pytest.fixture
def broken_folder(tmp_path):
    """Good clips mixed with every kind of broken file named in issue #2."""
    d = tmp_path / "mixed"
    (d / "sub").mkdir(parents=True)
    tone(d / "good.wav"); tone(d / "sub" / "good.flac", sr=44100); tone(d / "stereo.wav")
    sf.write(d / "stereo.wav", np.random.default_rng(0).uniform(-0.5, 0.5, (8000, 2)), 8000)
    (d / "empty.wav").write_bytes(b"")
    (d / "random.wav").write_bytes(np.random.default_rng(1).bytes(5000))
    (d / "truncated.wav").write_bytes((d / "good.wav").read_bytes()[:10000])
    (d / "text.flac").write_text("definitely not audio\n" * 30)
    sf.write(d / "nan.wav", np.array([0.0, np.nan] * 4000, np.float32), 16000, subtype="FLOAT")
    tone(d / "short.wav", dur=0.01)
    return d


@pytest.mark.parametrize("cmd", ["manifest", "synth", "demo", "discover", "paper", "clap-train", "clap-zeroshot", "clap-embed", "clap-curate"])
def test_help(cmd):
    r = run(cmd, "--help")
    assert r.returncode == 0 and "usage: soundcollage " + cmd in r.stdout


def test_manifest_on_broken_folder(broken_folder, tmp_path):
    out = tmp_path / "out" / "manifest.csv"
    r = run("manifest", broken_folder, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    good = pd.read_csv(out, dtype=str, keep_default_na=False)
    rejected = pd.read_csv(out.parent / "rejected.csv", dtype=str, keep_default_na=False)
    assert sorted(good.clip_id) == ["good", "stereo", "sub/good"]
    assert good.set_index("clip_id").labels["sub/good"] == '["sub"]'
    reasons = dict(zip(rejected.clip_id, rejected.reason))
    assert sorted(reasons) == ["empty", "nan", "random", "short", "text", "truncated"]
    assert "empty file" in reasons["empty"] and "non-finite" in reasons["nan"]
    assert "truncated" in reasons["truncated"] and "too short" in reasons["short"]
    assert "not a readable audio file" in reasons["random"] and "not a readable audio file" in reasons["text"]
    assert all(str(broken_folder) in p for p in rejected.path)


def test_bad_arguments_fail_with_one_line(tmp_path):
    r = run("manifest", tmp_path / "missing", "--out", tmp_path / "m.csv")
    assert r.returncode != 0 and "missing" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run("synth", "--out", tmp_path / "s", "--n", "-3")
    assert r.returncode != 0 and "--n" in r.stderr
    r = run("nonsense")
    assert r.returncode != 0


def test_synth_is_deterministic(tmp_path):
    for name in ("a", "b"):
        assert run("synth", "--out", tmp_path / name, "--n", 3, "--seed", 11, "--quiet").returncode == 0
    for f in sorted((tmp_path / "a" / "audio").glob("*.flac")):
        assert f.read_bytes() == (tmp_path / "b" / "audio" / f.name).read_bytes()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    "The demo of the built-in synthetic dataset, run once for the tests below."
    out = tmp_path_factory.mktemp("demo") / "demo"
    r = run("demo", "--out", out, "--n", 40, "--quiet")
    assert r.returncode == 0, r.stderr
    return out, r


def test_demo_writes_report(demo):
    out, r = demo
    html = (out / "report.html").read_text()
    assert "class=\"card\"" in html and (out / "classes.png").stat().st_size > 1000
    assert "Hidden background classes" in (out / "dataset.html").read_text()
    assert len(pd.read_csv(out / "tasks.csv")) == 32
    summary = pd.read_csv(out / "summary.csv").set_index("run")
    assert list(summary.index) == ["soundcollage", "baseline"] and (summary.n_hidden == 6).all()
    assert "hidden classes recovered" in r.stdout


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
BROWSER_REQUIRED = os.environ.get("SOUNDCOLLAGE_REQUIRE_BROWSER") == "1"     # .ci/run sets it: CI installs Chromium


def open_in_chromium(page: Path, screenshot: Path = None, width: int = 1300, height: int = 1600):
    """Serve `page`'s folder on localhost and open it in Debian's headless Chromium (selenium, the system
    chromedriver: nothing is downloaded). Returns (driver, server); the caller quits both."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    handler = functools.partial(Quiet, directory=str(page.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    o = webdriver.ChromeOptions()
    o.binary_location = str(CHROMIUM)
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--mute-audio", f"--user-data-dir={tempfile.mkdtemp()}",
              f"--window-size={width},{height}"]:
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")                              # never let Selenium Manager fetch a driver
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=o)
    driver.get(f"http://127.0.0.1:{server.server_address[1]}/{page.name}")
    if screenshot is not None: driver.save_screenshot(str(screenshot))
    return driver, server


def wait_for(driver, script, timeout=120):
    "Poll a JavaScript expression until it is truthy; returns its value."
    t0 = time.time()
    while not (v := driver.execute_script(script)):
        if time.time() - t0 > timeout: raise AssertionError(f"timed out waiting for: {script}")
        time.sleep(0.25)
    return v


def card_values(driver, section, key):
    return driver.execute_script(f"return [...document.getElementById('cards-{section}').children].map(c => +c.dataset.{key})")


@pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not BROWSER_REQUIRED,
                    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
def test_report_in_a_browser(demo, tmp_path):
    "Issue 18, item 3: the demo's report in a real browser: every image and audio loads, sorting works, a clean console."
    out, _ = demo
    driver, server = open_in_chromium(out / "report.html", screenshot=tmp_path / "report.png")
    try:
        wait_for(driver, "return document.readyState === 'complete'")
        bad = driver.execute_script("return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt)")
        assert driver.execute_script("return document.images.length") > 100 and bad == [], bad
        n_audio = driver.execute_script("return document.querySelectorAll('audio').length")
        assert n_audio == 2 * 32 * 2 * 3                                          # two runs, 32 cards, 2 sides, 3 players
        wait_for(driver, "return [...document.querySelectorAll('audio')].every(a => a.readyState >= 1 || a.error)")
        broken = driver.execute_script("return [...document.querySelectorAll('audio')].filter(a => a.error || !(a.duration > 0)).map(a => a.src)")
        assert broken == [], broken[:5]
        for section in ("soundcollage", "baseline"):
            clarity = card_values(driver, section, "clarity")
            assert clarity == sorted(clarity, reverse=True)                        # opened sorted by clarity
            driver.find_element("css selector", f".sorter[data-for='cards-{section}'] button[data-key='as']").click()
            by_as = card_values(driver, section, "as")
            assert by_as == sorted(by_as, reverse=True) and card_values(driver, section, "clarity") != clarity
            driver.find_element("css selector", f".sorter[data-for='cards-{section}'] button[data-key='clarity']").click()
            assert card_values(driver, section, "clarity") == clarity
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == [], errors
        assert (tmp_path / "report.png").stat().st_size > 10_000
    finally:
        driver.quit(); server.shutdown()


def test_discover_names_with_a_clap_teacher(tmp_path):
    "Issue 18, item 4: a teacher trained by clap-train names the discovered classes (--labeler clap:CKPT,vocab=FILE)."
    assert run("synth", "--out", tmp_path / "s", "--n", 16, "--seed", 3, "--min-duration", 5, "--max-duration", 6, "--quiet").returncode == 0
    man = pd.read_csv(tmp_path / "s" / "manifest.csv")
    hidden = man.hidden_labels.map(lambda s: s.strip("[]").replace('"', "").split(",")[0].strip())
    pairs = pd.DataFrame({"clip_id": man.clip_id, "path": man.path, "caption": [f"a sound of {h}" for h in hidden]})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    r = run("clap-train", "--train", tmp_path / "pairs.csv", "--out", tmp_path / "teacher", "--epochs", 1, "--batch-size", 4,
            "--width", 0.125, "--text-model", "minilm", "--device", "cpu", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    vocab = sorted(set(hidden)) + ["speech", "music"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    r = run("discover", tmp_path / "s", "--out", tmp_path / "d", "--labeler", f"clap:{tmp_path / 'teacher' / 'best.pt'},vocab={tmp_path / 'vocab.txt'}",
            "--tasks", 2, "--no-baseline", "--device", "cpu", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "named with ClapLabeler" in r.stdout
    labels = pd.read_csv(tmp_path / "d" / "labels.csv")
    assert len(labels) and set(labels.label) <= set(vocab) | {"Silence"}
    assert (labels.groupby(["task", "side", "sample"]).size() <= 10).all()        # top-10 per segment, as for YAMNet
    assert (tmp_path / "d" / "clarity.csv").exists() and (tmp_path / "d" / "report.html").exists()
