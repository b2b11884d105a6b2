import subprocess
import sys

import pytest

from attnlab.cli import main


def test_list_prints_every_module_with_paper(capsys):
    import attnlab

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in attnlab.list_attention():
        assert name in out
    assert "Woo et al." in out and "2*C*(C//r)" in out


def test_bench_modules_small_run_saves_table(tmp_path, capsys):
    out = tmp_path / "modules.md"
    code = main(["bench", "modules", "--modules", "se,cbam", "--shapes", "16x8x8", "--batch", "2",
                 "--repeats", "2", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "cbam (naive)" in printed and "fwd x clone" in printed
    text = out.read_text()
    assert "| se | 16x8x8 |" in text and "Command: `attnlab" in text


def test_bench_unknown_module_is_a_clear_error(capsys):
    assert main(["bench", "modules", "--modules", "cbma", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert "unknown attention module 'cbma'" in err and "'cbam'" in err


def test_bad_shape_is_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "modules", "--shapes", "256x28"])
    assert "CxHxW" in capsys.readouterr().err


def test_console_script_entry_point():
    res = subprocess.run([sys.executable, "-m", "attnlab.cli", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "attnlab" in res.stdout
