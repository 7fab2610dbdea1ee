"""``phyjudge merge`` under hostile output folders and adapter snapshots: the folder it writes
must be new or empty (never a user's files, a file, a pipe, a link to nowhere), refused
before the model loads; and only the adapter's own rubric files are copied into the
checkpoint (never a link out of the snapshot, never a pipe)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.deploy.merge import merge_adapter, rubric_files
from pytest_phyjudge.engine.infer_constants import CONSTANTS_FILE
from pytest_phyjudge.engine.rubric import TEMPLATE_FILE
from pytest_phyjudge.judges.remote.contract import PROVENANCE_FILE


def _adapter(folder: Path) -> Path:
    """A snapshot that plans (config and weights) but never loads: no model is needed."""
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "b"}))
    (folder / "adapter_model.safetensors").write_bytes(b"{}")
    return folder


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _user_files(out: Path) -> Path:
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    return out


def _forged_provenance(out: Path) -> Path:
    out.mkdir()
    (out / PROVENANCE_FILE).write_text(json.dumps({"adapter_sha256": "0" * 64}))
    return out


def _dangling(out: Path) -> Path:
    out.symlink_to(out.parent / "nowhere")
    return out


def _loop(out: Path) -> Path:
    out.symlink_to(out)
    return out


def _under_a_file(out: Path) -> Path:
    out.write_text("a user's file")
    return out / "checkpoint"


def _file(out: Path) -> Path:
    out.write_text("a user's file")
    return out


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize(
    ("make", "said"),
    [
        (_user_files, "already holds files"),
        (_forged_provenance, "already holds files"),
        (_file, "is a file"),
        (_fifo, "is a pipe"),
        (_dangling, "link to nothing"),
        (_loop, "loop"),
        (_under_a_file, "under a file"),
    ],
    ids=[
        "user-files",
        "forged-provenance",
        "a-file",
        "a-fifo",
        "dangling-link",
        "link-loop",
        "under-a-file",
    ],
)
def test_an_output_it_would_not_own_is_refused_before_loading(tmp_path, capsys, make, said):
    """Refused at once, without the model stack (these run without torch), and left as it
    was: the CLI exits with a one-paragraph error naming the folder."""
    adapter = _adapter(tmp_path / "adapter")
    out = make(tmp_path / "merged")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = ["merge", "--adapter-dir", str(adapter), "--out", str(out)]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert said in err and str(out) in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if make is _user_files:
        assert (out / "notes.txt").read_text() == "mine"
    if make in (_file, _under_a_file):
        assert (tmp_path / "merged").read_text() == "a user's file"


def test_an_empty_folder_or_a_link_to_one_is_accepted(tmp_path, monkeypatch):
    """The refusal is not the whole story: an empty folder goes on to loading (here, the
    model stack is hidden, so that is where it stops)."""
    from pytest_phyjudge.engine import extras

    monkeypatch.setattr(extras, "_unimportable", lambda modules: (["torch"], ["hidden"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    link = tmp_path / "link"
    link.symlink_to(empty)
    for out in (empty, link):
        with pytest.raises(Exception, match="needs the in-process judge"):
            merge_adapter(_adapter(tmp_path / f"adapter-{out.name}"), out)


def test_a_rubric_file_linked_out_of_the_adapter_is_not_copied(tmp_path):
    adapter = _adapter(tmp_path / "adapter")
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    (adapter / CONSTANTS_FILE).symlink_to(secret)
    with pytest.raises(InputError, match="link out of the adapter folder") as info:
        rubric_files(adapter)
    assert "PRIVATE KEY" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_rubric_file_that_is_a_pipe_is_refused_not_read(tmp_path):
    adapter = _adapter(tmp_path / "adapter")
    _fifo(adapter / TEMPLATE_FILE)
    with pytest.raises(InputError, match="is a pipe"):
        rubric_files(adapter)  # a read would block: the test's timeout would say so


def test_a_hub_snapshot_s_links_into_its_blobs_are_its_own(tmp_path):
    repo = tmp_path / "models--someone--adapter"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "abc123").write_text("SUBQ = []\n")
    snapshot = repo / "snapshots" / "rev"
    snapshot.mkdir(parents=True)
    (snapshot / CONSTANTS_FILE).symlink_to(Path("../../blobs/abc123"))
    assert rubric_files(snapshot) == {CONSTANTS_FILE: "SUBQ = []\n"}
