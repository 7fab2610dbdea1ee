"""The canary detection table: what ``phyjudge canary check`` catches, on the format-trained
tiny judge and a real PhyGround clip (its seven canaries: three metrics and four laws).

The canaries are recorded once for the module, on the trusted setup: the tiny judge whose
adapter carries PhyGround's published template (as PhyJudge-9B's does; the tiny judge's own
template is the bundled rubric's text, so dropping it would change nothing), 2 frames per
second at 262144 pixels per frame (so that half of it, 131072, is a budget the video
processor takes). Every case is then one check of a handful of judge calls. The full table,
the false-alarm rate and the cost of a check: benchmarks/canary_detection.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import PHYGROUND

from pytest_phyjudge import load_judge
from pytest_phyjudge.deploy.server import JudgeServer
from pytest_phyjudge.testing.impostors import (
    ANSWERS_FOUR,
    ClaimingServer,
    check_canaries,
    run_canary_command,
    tiny_adapters,
)

pytestmark = pytest.mark.local

#: The clip the canaries are recorded on (its prompt lists four laws), and the settings.
CLIP = "cosmos-predict2.5-2b__collision_60.mp4"
PIXELS, HALF_PIXELS = "262144", "131072"
SAME = "same behaviour:"
IMPOSTOR = "THE RECORDED IDENTITY BUT OTHER BEHAVIOUR: this judge claims"


class Bench:
    """The recorded canaries and the adapters the cases check them with."""

    def __init__(self, folder: Path) -> None:
        self.adapters = tiny_adapters(folder, PHYGROUND / "adapter-files" / "subq+human.yaml")
        self.videos = folder / "videos"
        self.videos.mkdir()
        shutil.copyfile(PHYGROUND / "videos" / CLIP, self.videos / CLIP)
        self.canaries = self.record(folder / "canaries.json", *self.local())

    def local(self, adapter: Path | None = None) -> list[str]:
        """The judge options of the trusted setup (with another adapter)."""
        adapter = adapter or self.adapters.reference
        return ["--adapter-dir", str(adapter), "--device", "cpu", "--max-pixels", PIXELS]

    def record(self, out: Path, *judge: str) -> Path:
        prompts = PHYGROUND / "humaneval_prompts.json"
        args = ["--videos", str(self.videos), "--prompts", str(prompts), "--out", str(out)]
        code, _, err = run_canary_command("record", *args, *judge)
        assert code == 0, err
        return out


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, phyground_videos: list[Path]):
    """Recorded once; torch on one thread meanwhile (on a busy 2-core box, two threads
    spin against each other: the checks' CPU time measured 5 times that of one thread)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield Bench(tmp_path_factory.mktemp("canary-detection"))
    finally:
        torch.set_num_threads(threads)


def test_a_the_same_judge_checked_again_and_again_raises_no_alarm(bench: Bench):
    for _ in range(2):
        check = check_canaries(bench.canaries, *bench.local())
        assert check.code == 0, check.output
        assert check.verdict.startswith(SAME)
        assert (check.agreement, check.mean_diff, check.max_tv) == (1.0, 0.0, 0.0)
        assert check.calls == 14  # 7 canaries, greedy and distribution


def test_b_a_lora_that_adds_nothing_is_drift(bench: Bench):
    """Every lora_B zeroed in a copy of the adapter (its folder name, the label a canary file
    records, unchanged): the weights' sha256 shows the new adapter, and the answers drift."""
    check = check_canaries(bench.canaries, *bench.local(bench.adapters.zeroed))
    assert check.code == 7, check.output
    assert check.verdict.startswith("drift: recorded as adapter on base (tiny) [adapter sha256")
    assert check.agreement < 0.5


def test_c_the_bundled_rubric_instead_of_the_adapters_template_is_caught(bench: Bench):
    with pytest.warns(UserWarning, match="bundled rubric text stands in"):
        check = check_canaries(bench.canaries, *bench.local(bench.adapters.bundled))
    assert check.code == 7, check.output
    assert check.verdict.startswith(IMPOSTOR)
    assert "note: the prompt text differs on 7 canaries" in check.output


@pytest.mark.parametrize(
    ("options", "changed"),
    [
        (["--fps", "1"], "'fps': 1.0"),
        (["--max-pixels", HALF_PIXELS], f"'max_pixels': {HALF_PIXELS}"),
    ],
    ids=["d-1-fps-instead-of-2", "e-half-the-pixel-budget"],
)
def test_d_e_other_frames_under_the_same_identity_are_the_loudest(
    bench: Bench, options: list[str], changed: str
):
    check = check_canaries(bench.canaries, *bench.local(), *options)
    assert check.code == 7, check.output
    assert check.verdict.startswith(IMPOSTOR)
    assert changed in check.output.split("note: settings recorded", 1)[1].split("\n")[0]


def test_f_a_judge_answering_4_to_everything_is_drift(bench: Bench):
    check = check_canaries(bench.canaries, "--judge", ANSWERS_FOUR)
    assert check.code == 7, check.output
    assert check.verdict.startswith("drift: recorded as adapter on base (tiny)")
    assert "now answers-four (scripted)" in check.verdict
    assert check.max_tv > 0.5  # one-hot on 4 against the judge's spread of digits


def test_g_a_server_claiming_one_judge_while_serving_another_is_the_loudest(
    bench: Bench, trained_tiny_judge
):
    """``phyjudge serve``'s server (in this process, as ``phyjudge serve`` runs it):
    canaries recorded over HTTP on judge A; the honest server
    passes, and one whose /v1/models names A while B (A with its LoRA zeroed, as a server
    that ignores the adapter) answers is named."""
    judge_b = load_judge(bench.adapters.zeroed, device="cpu")
    try:
        with JudgeServer(trained_tiny_judge) as honest:
            served = bench.canaries.with_name("served.json")
            # Two axes: each is a request of its own, the clip sent along every time.
            canaries = bench.record(served, "--url", honest.url, "--axes", "SA", "collision")
            check = check_canaries(canaries, "--url", honest.url)
            assert check.code == 0 and check.verdict.startswith(SAME), check.output
            with ClaimingServer(judge_b, claimed=honest) as liar:
                check = check_canaries(canaries, "--url", liar.url)
    finally:
        judge_b.close()
    assert check.code == 7, check.output
    assert check.verdict.startswith(IMPOSTOR) and "served as phyjudge" in check.verdict
    assert check.agreement < 0.5
