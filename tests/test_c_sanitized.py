"""The compiled parts (scraper/_plaintext.c, storage/_bigram.c) under AddressSanitizer and
UndefinedBehaviorSanitizer: each is built again with both, loaded into a fresh interpreter with
the sanitiser runtimes preloaded, and fed hostile and random text (every width of str, marks of
ours, cut-off tags and escapes, a 4 M-character post), its results checked against the Python
versions. A read or write out of bounds, or undefined arithmetic, aborts that interpreter: pages
come from strangers, and a crash in C would take the crawl down with it."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTENSIONS = {"_plaintext": ROOT / "scraper" / "_plaintext.c", "_bigram": ROOT / "storage" / "_bigram.c"}

# Runs in the sanitised interpreter: SANITISED is the directory of the rebuilt modules.
EXERCISE = textwrap.dedent(r'''
    import importlib.util, random, sys
    from pathlib import Path

    from scraper import clean, config
    from scraper.engines.discuz import MARKUP_NOISE
    from storage.bigram import BIGRAM_RANGES, python_bigram_document

    def load(name):
        path = next(Path(SANITISED).glob(name + ".*"))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    plaintext, bigram = load("_plaintext"), load("_bigram")
    tags = ('<font class="jammer">', "</font>", '<span style="display:none">', "</span>")
    pieces = ["<br>", "<", "<b", "<br", "&", "&amp;", "&lt;", "&nbsp;", "&nbsp", "&am", *tags, "a", "Z", "9", "中",
              "鲸鱼", "\U00020000", "\x00", "\udfff", "\ud800", " ", "\n", "\u3000", "\xa0", "é", ">", ";", ", M0 J# x0 L/ B- S"]
    rng = random.Random(20261130)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 120))) for _ in range(6000)]
    texts += ["中文" * 2_000_000 + "<br>" + "&amp;" * 1000, "<br>" * 100_000, tags[0] * 50_000, "&" * 100_000]
    for text in texts:
        assert plaintext.plain_layout(text, config.JAMMER_MIN_UNITS) == clean.python_plain_layout(text), text
        assert plaintext.cut_plainest_noise(text, *tags) == clean.python_cut_plainest_noise(text, MARKUP_NOISE), text
        assert bigram.pair_document(text, BIGRAM_RANGES) == python_bigram_document(text), text
    print("exercised", len(texts))
''')


def _sanitiser_runtimes() -> list[str] | None:
    runtimes = []
    for name in ("libasan.so", "libubsan.so"):
        found = subprocess.run(["cc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
        if not found or not Path(found).is_absolute() or not Path(found).exists():
            return None
        runtimes.append(found)
    return runtimes


@pytest.mark.slow
def test_the_compiled_parts_run_clean_under_address_and_undefined_behaviour_sanitisers(tmp_path):
    runtimes = _sanitiser_runtimes() if subprocess.run(["which", "cc"], capture_output=True).returncode == 0 else None
    if runtimes is None:  # CI installs gcc, whose runtimes these are; a machine without them cannot run this
        pytest.skip("no C compiler with AddressSanitizer and UBSan runtimes")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name, source in EXTENSIONS.items():
        subprocess.run(
            ["cc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
             "-fno-omit-frame-pointer", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
             str(source), "-o", str(tmp_path / f"{name}{suffix}")],
            check=True, capture_output=True,
        )
    environment = {
        "LD_PRELOAD": " ".join(runtimes),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",  # CPython's own allocations are not leaks of ours
        "PYTHONMALLOC": "malloc",  # every str its own allocation, whose bounds ASan watches (not pymalloc's arenas)
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
    }
    run = subprocess.run(
        [sys.executable, "-c", f"SANITISED = {str(tmp_path)!r}\n{EXERCISE}"],
        env=environment, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "exercised 6004" in run.stdout
