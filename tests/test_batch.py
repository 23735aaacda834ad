"""``talkinghead batch``: many rows, per-row options, resumable, failures summarised (exit 2)."""
from __future__ import annotations

import shutil

from talkinghead.batch import read_manifest
from talkinghead.cli import main


def test_batch_renders_rows_skips_finished_ones_and_summarises_failures(tmp_path, portrait_path,
                                                                        short_speech_wav, capsys):
    shutil.copy(portrait_path, tmp_path / "face.jpg")
    shutil.copy(short_speech_wav, tmp_path / "speech.wav")
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "image,audio,text,output,pose-style,still,emotion\n"
        "face.jpg,speech.wav,,out/a.mp4,3,,\n"
        "face.jpg,,Hi Bob.,out/b.mp4,,true,happy\n"
        "missing.jpg,speech.wav,,out/c.mp4,,,\n"
        "face.jpg,speech.wav,,out/d.mp4,,,bored\n"
        "face.jpg,speech.wav,,out/a.mp4,,,\n", encoding="utf-8")
    assert main(["batch", str(manifest), "--size", "64", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "2 done, 0 skipped (already there), 3 failed" in err
    assert "row 3" in err and "missing.jpg" in err
    assert "row 4" in err and "emotion" in err
    assert "row 5" in err and "earlier row" in err
    a, b = tmp_path / "out" / "a.mp4", tmp_path / "out" / "b.mp4"
    assert a.stat().st_size > 1000 and b.stat().st_size > 1000
    assert not (tmp_path / "out" / "c.mp4").exists()
    stamp = a.stat().st_mtime_ns

    assert main(["batch", str(manifest), "--size", "64", "--quiet"]) == 2
    assert "0 done, 2 skipped" in capsys.readouterr().err
    assert a.stat().st_mtime_ns == stamp

    manifest.write_text("image,audio,output\nface.jpg,speech.wav,out/a.mp4\n", encoding="utf-8")
    assert main(["batch", str(manifest), "--quiet"]) == 0


def test_manifest_without_the_needed_columns_is_a_user_error(tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_text("picture,sound\nx.jpg,y.wav\n", encoding="utf-8")
    assert main(["batch", str(manifest)]) == 2
    assert "needs the columns" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "absent.csv")]) == 2


def test_manifest_paths_are_relative_to_its_folder_and_empty_cells_keep_defaults(tmp_path):
    manifest = tmp_path / "sub" / "m.csv"
    manifest.parent.mkdir()
    manifest.write_text("image,audio,output,seed,ref_pose\np.jpg,s.wav,o.mp4,,r.mp4\n",
                        encoding="utf-8")
    (row,) = read_manifest(manifest)
    assert row.image == manifest.parent / "p.jpg" and row.output == manifest.parent / "o.mp4"
    assert row.options == {"ref_pose": str(manifest.parent / "r.mp4")}


def test_spreadsheet_exports_are_read_utf16_tab_and_semicolon_separated(tmp_path):
    """Spreadsheets save "Unicode text" (UTF-16, tabs) and, in many locales, CSV with
    semicolons; both read like a plain comma-separated UTF-8 manifest."""
    rows = [["image", "audio", "output", "seed"], ["p é.jpg", "s.wav", "o.mp4", "3"]]
    for name, encoding, delimiter in (("u16.csv", "utf-16", "\t"), ("semi.csv", "utf-8", ";")):
        manifest = tmp_path / name
        manifest.write_text("".join(delimiter.join(r) + "\n" for r in rows), encoding=encoding)
        (row,) = read_manifest(manifest)
        assert row.image == tmp_path / "p é.jpg" and row.audio == tmp_path / "s.wav"
        assert row.options == {"seed": "3"}


def test_a_manifest_in_another_encoding_is_a_user_error(tmp_path, capsys):
    manifest = tmp_path / "latin1.csv"
    manifest.write_bytes("image,audio,output\nphoto é.jpg,s.wav,o.mp4\n".encode("latin-1"))
    assert main(["batch", str(manifest)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_batch_refuses_export_motion(tmp_path, capsys):
    from talkinghead.cli import main

    manifest = tmp_path / "jobs.csv"
    manifest.write_text("image,audio,output\nface.jpg,speech.wav,out.mp4\n", encoding="utf-8")
    assert main(["batch", str(manifest), "--export-motion", "motion.json", "--quiet"]) == 2
    assert "--export-motion" in capsys.readouterr().err
