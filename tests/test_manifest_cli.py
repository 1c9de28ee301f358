"""Manifests and the data they describe, through the CLI as a user runs it (issues 7 and 8).

Exclusions and symlinks, the ``verify --data`` difference report, errors for missing inputs,
id rules (no traversal, no terminal controls, NFC), shard sets, FIFOs as inputs, the sidecars
written beside a manifest, and hard links.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tests.conftest import NOW, ROOT, one_error_line, run_cli

SPEC = """\
name: t
version: "1"
description: d
publisher: {name: P}
sources:
  - {id: all, name: All, kind: dataset, license: CC0-1.0, paths: ["**"]}
"""


def _line(entry_id: str, digest: str = "a" * 64, size: int = 1) -> bytes:
    """A manifest line in canonical form, as a hostile or careless writer might make it."""
    from provenance import _json

    return _json.canonical({"id": entry_id, "sha256": digest, "size": size}) + b"\n"


def _write_manifest(path: Path, ids: list[str]) -> Path:
    lines = sorted((f"{k:064x}", entry_id) for k, entry_id in enumerate(ids))
    path.write_bytes(b"".join(_line(i, d) for d, i in lines))
    return path


def _files(root: Path, files: dict[str, bytes | str]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        content = data.encode() if isinstance(data, str) else data
        (root / name).write_bytes(content)
    return root


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A developer key and a trust store that trusts it."""
    work = tmp_path_factory.mktemp("keys")
    for step in [
        ("key", "generate", work / "dev.key"),
        ("trust", "add", work / "trust.json", work / "dev.key.pub", "--name", "Lab", "--role",
         "dataset-publisher"),
    ]:  # fmt: skip
        assert run_cli(*step).returncode == 0
    (work / "spec.yaml").write_text(SPEC)
    return work


def _signed(keys: Path, manifest_path: Path, out: Path) -> Path:
    """Build and sign a card for ``manifest_path``."""
    card = out / "card.json"
    result = run_cli(
        "card", "build", keys / "spec.yaml", "--manifest", manifest_path, "-o", card, "--now", NOW
    )
    assert result.returncode == 0, result.stderr
    signed = out / "signed.json"
    assert run_cli("card", "sign", card, "--key", keys / "dev.key", "-o", signed).returncode == 0
    return signed


def _verify_data(
    keys: Path, signed: Path, manifest_path: Path, data: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "verify", signed, "--trust", keys / "trust.json", "--manifest", manifest_path,
        "--data", data, *extra,
    )  # fmt: skip


def _ids(manifest_path: Path) -> set[str]:
    return {json.loads(line)["id"] for line in manifest_path.read_text().splitlines()}


# ----------------------------------------------------------------------------------------------
# Issue 7.5: --exclude and symlinks


def test_exclude_leaves_out_files_and_folders_and_verify_takes_the_same(
    keys: Path, tmp_path: Path
) -> None:
    data = _files(
        tmp_path / "data",
        {
            "keep.txt": "k",
            "notes.log": "l",
            "sub/deep.log": "l",
            "sub/keep.log": "kept by a negation",
            "cache/a.bin": "c",
            "cache/b/c.bin": "c",
        },
    )
    os.mkfifo(data / "cache" / "pipe")  # inside an excluded folder: never reached
    out = tmp_path / "m.jsonl"
    excludes = ["--exclude", "*.log", "--exclude", "!sub/keep.log", "--exclude", "cache/"]
    result = run_cli("manifest", "build", data, "-o", out, *excludes)
    assert result.returncode == 0, result.stderr
    assert _ids(out) == {"keep.txt", "sub/keep.log"}
    assert "excluded 2 file(s) and 1 folder(s)" in result.stderr
    signed = _signed(keys, out, tmp_path)
    # verify walks the folder the same way when given the same patterns...
    same = _verify_data(keys, signed, out, data, *excludes, "--json")
    assert same.returncode == 0, same.stdout
    # ...and without them, the excluded files are extra (the FIFO in cache/ is refused).
    os.unlink(data / "cache" / "pipe")
    plain = _verify_data(keys, signed, out, data, "--json")
    assert plain.returncode == 1
    assert json.loads(plain.stdout)["data"]["extra"] == [
        "cache/a.bin",
        "cache/b/c.bin",
        "notes.log",
        "sub/deep.log",
    ]


def test_walk_options_are_refused_for_a_records_file(tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"id": "a", "text": "x"}\n')
    for option in (("--exclude", "*"), ("--symlinks", "error")):
        result = run_cli("manifest", "build", records, "-o", tmp_path / "m.jsonl", *option)
        assert result.returncode == 2
        assert "--exclude and --symlinks apply to a directory" in one_error_line(result)


def test_verify_refuses_walk_options_without_data(keys: Path, tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {"a.txt": "a"})
    out = tmp_path / "m.jsonl"
    assert run_cli("manifest", "build", data, "-o", out).returncode == 0
    signed = _signed(keys, out, tmp_path)
    for option in (("--exclude", "*"), ("--symlinks", "error")):
        result = run_cli(
            "verify", signed, "--trust", keys / "trust.json", "--manifest", out, *option
        )
        assert result.returncode == 2
        assert "apply to the files of --data" in one_error_line(result)


def test_symlinks_are_skipped_with_one_line_and_can_be_refused(tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {"a.txt": "a", "sub/b.txt": "b"})
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink(tmp_path / "outside.txt", data / "out-link")
    os.symlink("/usr", data / "sub" / "usr")
    os.symlink("a.txt", data / "alias")
    out = tmp_path / "m.jsonl"
    result = run_cli("manifest", "build", data, "-o", out)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.strip()]
    assert notes == [
        f"note: skipped 3 symlink(s) in {data}, 2 pointing outside it (never followed)"
    ]
    assert _ids(out) == {"a.txt", "sub/b.txt"}
    strict = run_cli("manifest", "build", data, "-o", tmp_path / "s.jsonl", "--symlinks", "error")
    assert strict.returncode == 2
    assert "symlink points out of the data root" in one_error_line(strict)
    assert not (tmp_path / "s.jsonl").exists()


def test_verify_data_skips_symlinks_as_build_does(keys: Path, tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {"a.txt": "a"})
    os.symlink("/etc", data / "etc")
    out = tmp_path / "m.jsonl"
    assert run_cli("manifest", "build", data, "-o", out).returncode == 0
    signed = _signed(keys, out, tmp_path)
    result = _verify_data(keys, signed, out, data, "--json")
    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)
    assert (report["data"]["symlinksSkipped"], report["data"]["symlinksOutside"]) == (1, 1)
    strict = _verify_data(keys, signed, out, data, "--symlinks", "error")
    assert strict.returncode == 2 and "points out of the data root" in one_error_line(strict)


# ----------------------------------------------------------------------------------------------
# Issue 7.8: verify --data reports counts, then paths; moved files


def test_verify_data_prints_counts_then_at_most_20_paths_per_kind(
    keys: Path, tmp_path: Path
) -> None:
    data = _files(tmp_path / "data", {f"f{k:02d}.txt": f"content {k}" for k in range(40)})
    out = tmp_path / "m.jsonl"
    assert run_cli("manifest", "build", data, "-o", out).returncode == 0
    signed = _signed(keys, out, tmp_path)
    for k in range(25):
        (data / f"f{k:02d}.txt").write_text(f"changed {k}")
    (data / "f30.txt").unlink()
    (data / "f31.txt").rename(data / "renamed.txt")  # the same content under a new path
    (data / "new.txt").write_text("new")
    human = _verify_data(keys, signed, out, data)
    assert human.returncode == 1
    lines = human.stdout.splitlines()
    head = next(k for k, line in enumerate(lines) if "data files" in line)
    assert lines[head] == "FAIL  data files: 25 changed, 1 missing, 1 extra, 1 moved of 40"
    listed = [line.split() for line in lines[head + 1 :] if line.startswith("        ")]
    changed = [words[1] for words in listed if words[0] == "changed:" and words[1] != "..."]
    assert changed == [f"f{k:02d}.txt" for k in range(20)]
    assert ["changed:", "...", "and", "5", "more"] in listed
    assert ["missing:", "f30.txt"] in listed and ["extra:", "new.txt"] in listed
    assert ["moved:", "f31.txt", "->", "renamed.txt"] in listed
    assert ["(--json", "lists", "every", "path)"] in listed
    as_json = _verify_data(keys, signed, out, data, "--json")
    report = json.loads(as_json.stdout)["data"]
    assert report["changed"] == [f"f{k:02d}.txt" for k in range(25)]
    assert (report["missing"], report["extra"]) == (["f30.txt"], ["new.txt"])
    assert report["moved"] == [{"from": "f31.txt", "to": "renamed.txt"}]
    assert report["entries"] == 40


def test_a_copy_is_extra_and_a_move_needs_the_original_gone(keys: Path, tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {"a.txt": "same", "b.txt": "same", "c.txt": "other"})
    out = tmp_path / "m.jsonl"
    assert run_cli("manifest", "build", data, "-o", out).returncode == 0
    signed = _signed(keys, out, tmp_path)
    shutil.copy(data / "c.txt", data / "c-copy.txt")  # c.txt is still there: a copy, extra
    (data / "b.txt").rename(data / "z.txt")  # one of two identical files moved
    report = json.loads(_verify_data(keys, signed, out, data, "--json").stdout)["data"]
    assert report["moved"] == [{"from": "b.txt", "to": "z.txt"}]
    assert (report["missing"], report["extra"]) == ([], ["c-copy.txt"])


# ----------------------------------------------------------------------------------------------
# Issue 7.9 and 7.10: errors that say what is wrong, ids that stay under the root, shards, sizes


def test_manifest_build_of_a_missing_path_says_it_does_not_exist(tmp_path: Path) -> None:
    for name in ("missing-dir", "missing-dir/", "missing.jsonl"):
        result = run_cli("manifest", "build", tmp_path / name, "-o", tmp_path / "m.jsonl")
        assert result.returncode == 2
        line = one_error_line(result)
        assert "no such file or directory" in line and "unknown records format" not in line


@pytest.mark.parametrize(
    "bad_id", ["../etc/passwd", "a/../../b", "..", "/etc/passwd", "a/.."], ids=repr
)
def test_traversal_ids_are_refused_by_manifest_show_and_card_build(
    tmp_path: Path, bad_id: str
) -> None:
    manifest_path = _write_manifest(tmp_path / "m.jsonl", ["ok.txt", bad_id])
    show = run_cli("manifest", "show", manifest_path)
    assert show.returncode == 2
    assert "segment" in one_error_line(show) or "absolute" in one_error_line(show)
    (tmp_path / "spec.yaml").write_text(SPEC)
    build = run_cli(
        "card", "build", tmp_path / "spec.yaml", "--manifest", manifest_path, "-o",
        tmp_path / "c.json",
    )  # fmt: skip
    assert build.returncode == 2 and repr(bad_id) in one_error_line(build)
    assert not (tmp_path / "c.json").exists()


def test_ids_that_only_look_like_traversal_are_fine(tmp_path: Path) -> None:
    manifest_path = _write_manifest(tmp_path / "m.jsonl", ["...", "a..b/c", "a/...", ".hidden"])
    assert run_cli("manifest", "show", manifest_path).returncode == 0


def test_merge_refuses_an_incomplete_or_mixed_shard_set(tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {f"f{k}.txt": f"{k}" for k in range(30)})
    shards = []
    for k in range(4):
        out = tmp_path / f"part-{k}.jsonl"
        result = run_cli("manifest", "build", data, "-o", out, "--shard", f"{k}/4")
        assert result.returncode == 0, result.stderr
        record = json.loads((tmp_path / f"part-{k}.jsonl.shard.json").read_text())
        assert (record["shard"], record["shards"]) == (k, 4)
        shards.append(out)
    merged = tmp_path / "merged.jsonl"
    partial = run_cli("manifest", "merge", shards[0], shards[2], "-o", merged)
    assert partial.returncode == 2
    line = one_error_line(partial)
    assert "2 of 4 given, missing 1/4, 3/4" in line and "counts from 0" in line
    assert not merged.exists()
    twice = run_cli("manifest", "merge", *shards, shards[1], "-o", merged)
    assert twice.returncode == 2 and "is shard 1/4, as" in one_error_line(twice)
    whole = tmp_path / "whole.jsonl"
    assert run_cli("manifest", "build", data, "-o", whole).returncode == 0
    assert not (tmp_path / "whole.jsonl.shard.json").exists()
    mixed = run_cli("manifest", "merge", *shards[:3], whole, "-o", merged)
    assert mixed.returncode == 2 and "has no shard record" in one_error_line(mixed)
    complete = run_cli("manifest", "merge", *shards, "-o", merged)
    assert complete.returncode == 0, complete.stderr
    assert merged.read_bytes() == whole.read_bytes()
    assert not (tmp_path / "merged.jsonl.shard.json").exists()  # the merge is no shard
    # A shard rebuilt from other data keeps its name but not its record's digest.
    shutil.copy(shards[3], tmp_path / "saved")
    shards[3].write_bytes(b"")
    stale = run_cli("manifest", "merge", *shards, "-o", tmp_path / "stale.jsonl")
    assert stale.returncode == 2 and "describes another manifest" in one_error_line(stale)
    assert not (tmp_path / "stale.jsonl").exists()


def test_shard_help_says_k_counts_from_0() -> None:
    for command in (("manifest", "build"), ("manifest", "merge")):
        text = " ".join(run_cli(*command, "--help").stdout.split())
        assert "K counting from 0" in text


def test_sizes_are_given_with_binary_units(tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {"a.bin": bytes(1_003_605), "b.txt": "x"})
    out = tmp_path / "m.jsonl"
    build = run_cli("manifest", "build", data, "-o", out)
    assert f"wrote {out}: 2 entries, 1,003,606 bytes (980.1 KiB)" in build.stdout
    show = run_cli("manifest", "show", out)
    assert f"checked {out}: 2 entries, 1,003,606 bytes (980.1 KiB)" in show.stdout
    assert json.loads(run_cli("manifest", "show", out, "--json").stdout)["bytes"] == 1_003_606


# ----------------------------------------------------------------------------------------------
# Issue 8.6: terminal controls in ids are refused; what reaches a terminal is escaped

ERASE_AND_FAKE = "x\x1b[2K\r\x1b[1Aok    data files: all 1 files match\x1b[8m"


def test_a_manifest_id_that_would_erase_lines_is_refused(keys: Path, tmp_path: Path) -> None:
    manifest_path = _write_manifest(tmp_path / "m.jsonl", ["a.txt", ERASE_AND_FAKE])
    for command in (
        ("manifest", "show", manifest_path),
        ("card", "build", keys / "spec.yaml", "--manifest", manifest_path, "-o", tmp_path / "c"),
    ):
        result = run_cli(*command)
        assert result.returncode == 2
        line = one_error_line(result)
        assert "U+001B, a control or bidi control character" in line
        assert "\x1b" not in result.stdout + result.stderr and "\r" not in result.stderr


@pytest.mark.parametrize("char", ["\x1b", "\x7f", "\x9b", "\u202e", "\u2066", "\u2028"], ids=repr)
def test_control_and_bidi_characters_are_refused_in_records_and_file_names(
    tmp_path: Path, char: str
) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text(json.dumps({"id": f"rec{char}1", "text": "t"}) + "\n")
    result = run_cli("manifest", "build", records, "-o", tmp_path / "m.jsonl")
    assert result.returncode == 2 and "control" in one_error_line(result)
    assert char not in result.stderr
    data = _files(tmp_path / "data", {f"evil{char}.txt": "x"})
    result = run_cli("manifest", "build", data, "-o", tmp_path / "m.jsonl")
    assert result.returncode == 2 and "rename it or exclude it" in one_error_line(result)
    assert char not in result.stderr
    assert not (tmp_path / "m.jsonl").exists()
    ok = run_cli("manifest", "build", data, "-o", tmp_path / "m.jsonl", "--exclude", "evil*")
    assert ok.returncode == 0, ok.stderr


def test_names_from_a_trust_store_are_escaped_in_verify_output(keys: Path, tmp_path: Path) -> None:
    trust = tmp_path / "trust.json"
    name = "Lab\x1b[2K\rok    everything"
    assert (
        run_cli(
            "trust",
            "add",
            trust,
            keys / "dev.key.pub",
            "--name",
            name,
            "--role",
            "dataset-publisher",
        ).returncode
        == 0
    )
    data = _files(tmp_path / "data", {"a.txt": "a"})
    out = tmp_path / "m.jsonl"
    assert run_cli("manifest", "build", data, "-o", out).returncode == 0
    signed = _signed(keys, out, tmp_path)
    human = run_cli("verify", signed, "--trust", trust)
    assert human.returncode == 0
    assert "\x1b" not in human.stdout and "\r" not in human.stdout
    assert "Lab\\x1b[2K\\x0dok    everything" in human.stdout
    as_json = run_cli("verify", signed, "--trust", trust, "--json")
    assert "\x1b" not in as_json.stdout and "\\u001b" in as_json.stdout
    assert name in json.loads(as_json.stdout)["checks"][0]["detail"]


def test_escape_helper() -> None:
    from provenance.cli._common import escape

    assert escape("plain/path é 日本.txt") == "plain/path é 日本.txt"
    assert escape("a\x1b[2Kb\r\n\t") == "a\\x1b[2Kb\\x0d\\x0a\\x09"
    assert escape("\x7f\x9b\u202e\u2066\u200b\ufeff\u2028") == (
        "\\x7f\\x9b\\u202e\\u2066\\u200b\\ufeff\\u2028"
    )
    assert escape("\U000e0041") == "\\U000e0041"  # a tag character (format, invisible)


# ----------------------------------------------------------------------------------------------
# Issue 8.8: a FIFO as an input is refused at once, never waited on


def _run_quickly(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a timeout short enough that a hang fails the test, not the suite."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PROVENANCE_NOW", None)
    return subprocess.run(
        [sys.executable, "-m", "provenance", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=20, check=False,
    )  # fmt: skip


def test_fifos_as_inputs_exit_2_without_hanging(keys: Path, tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {"a.txt": "a"})
    good = tmp_path / "good.jsonl"
    assert run_cli("manifest", "build", data, "-o", good).returncode == 0
    signed = _signed(keys, good, tmp_path)
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    trust = keys / "trust.json"
    for command in (
        ("manifest", "show", fifo),
        ("manifest", "build", fifo, "-o", tmp_path / "m.jsonl"),
        ("manifest", "merge", good, fifo, "-o", tmp_path / "m.jsonl"),
        ("verify", signed, "--trust", trust, "--manifest", fifo),
        ("verify", signed, "--trust", trust, "--manifest", fifo, "--data", data),
        ("card", "build", keys / "spec.yaml", "--manifest", fifo, "-o", tmp_path / "c"),
    ):
        result = _run_quickly(*command)
        assert result.returncode == 2, (command, result.stderr)
        assert "not a regular file" in one_error_line(result)


def test_a_fifo_beside_the_manifest_exits_2_without_hanging(keys: Path, tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {"a.txt": "a"})
    out = tmp_path / "m.jsonl"
    assert run_cli("manifest", "build", data, "-o", out).returncode == 0
    signed = _signed(keys, out, tmp_path)
    (tmp_path / "m.jsonl.fp").unlink()
    os.mkfifo(tmp_path / "m.jsonl.fp")
    result = _run_quickly("verify", signed, "--trust", keys / "trust.json", "--manifest", out)
    assert result.returncode == 2 and "m.jsonl.fp: not a regular file" in one_error_line(result)
    os.mkfifo(tmp_path / "part.jsonl.shard.json")
    shutil.copy(out, tmp_path / "part.jsonl")
    merge = _run_quickly("manifest", "merge", tmp_path / "part.jsonl", "-o", tmp_path / "x")
    assert merge.returncode == 2 and "not a regular file" in one_error_line(merge)


# ----------------------------------------------------------------------------------------------
# Issue 8.9: the manifest and its sidecars written into the data folder are not data


def test_manifest_built_into_the_data_folder_verifies(keys: Path, tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {"a.txt": "a", "b/c.txt": "c"})
    out = data / "manifest.jsonl"
    for shard in ((), ("--shard", "0/1")):  # a shard also writes its record beside it
        result = run_cli("manifest", "build", data, "-o", out, *shard)
        assert result.returncode == 0, result.stderr
        assert (data / "manifest.jsonl.fp").exists()
        assert (data / "manifest.jsonl.shard.json").exists() == bool(shard)
        assert _ids(out) == {"a.txt", "b/c.txt"}
        signed = _signed(keys, out, tmp_path)
        report = _verify_data(keys, signed, out, data, "--json")
        assert report.returncode == 0, report.stdout
        assert json.loads(report.stdout)["data"]["extra"] == []


# ----------------------------------------------------------------------------------------------
# Issue 8.10: one name, one spelling (ids are NFC)

NFC = unicodedata.normalize("NFC", "caf\u00e9.txt")
NFD = unicodedata.normalize("NFD", "caf\u00e9.txt")


def test_nfc_and_nfd_spellings_of_one_name_are_an_error_naming_both(tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {NFC: "composed", NFD: "decomposed"})
    if len(os.listdir(data)) != 2:
        pytest.skip("this file system normalizes names")
    result = run_cli("manifest", "build", data, "-o", tmp_path / "m.jsonl")
    assert result.returncode == 2
    line = one_error_line(result)
    assert ascii(str(data / NFD)) in line and ascii(str(data / NFC)) in line
    assert "two Unicode spellings" in line
    assert not (tmp_path / "m.jsonl").exists()


def test_a_name_that_is_not_nfc_is_refused_and_nfc_is_kept(tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {f"e\u0301t\u00e9/{NFC}": "x"})  # a folder name not NFC
    if os.listdir(data) != ["e\u0301t\u00e9"]:
        pytest.skip("this file system normalizes names")
    result = run_cli("manifest", "build", data, "-o", tmp_path / "m.jsonl")
    assert result.returncode == 2 and "not in Unicode normalization form NFC" in result.stderr
    os.rename(data / "e\u0301t\u00e9", data / "\u00e9t\u00e9")
    assert run_cli("manifest", "build", data, "-o", tmp_path / "m.jsonl").returncode == 0
    assert _ids(tmp_path / "m.jsonl") == {f"\u00e9t\u00e9/{NFC}"}


def test_ids_must_be_nfc_in_manifests_and_records(tmp_path: Path) -> None:
    show = run_cli("manifest", "show", _write_manifest(tmp_path / "m.jsonl", [NFD]))
    assert show.returncode == 2 and "not in Unicode normalization form NFC" in one_error_line(show)
    records = tmp_path / "r.jsonl"
    records.write_text(json.dumps({"id": NFD, "text": "t"}) + "\n")
    build = run_cli("manifest", "build", records, "-o", tmp_path / "out.jsonl")
    assert build.returncode == 2 and "NFC" in one_error_line(build)


# ----------------------------------------------------------------------------------------------
# Issue 8.14: hard links


def test_hard_links_are_counted_in_a_warning(keys: Path, tmp_path: Path) -> None:
    data = _files(tmp_path / "data", {"a.txt": "a", "b.txt": "b", "c.txt": "c"})
    (tmp_path / "elsewhere.txt").write_text("shared")
    os.link(tmp_path / "elsewhere.txt", data / "linked.txt")
    os.link(data / "a.txt", data / "a-again.txt")
    out = tmp_path / "m.jsonl"
    result = run_cli("manifest", "build", data, "-o", out)
    assert result.returncode == 0
    assert one_error_line(result) == (
        f"warning: 3 file(s) in {data} have other hard links; a link outside the folder can"
        " change their content"
    )
    signed = _signed(keys, out, tmp_path)
    report = json.loads(_verify_data(keys, signed, out, data, "--json").stdout)
    assert report["data"]["hardLinked"] == 3
