from attnlab.benchtools import format_table, write_markdown


def test_format_table_aligns_and_rounds():
    text = format_table(["name", "ms"], [["se", 1.23456], ["cbam", 12.0]])
    lines = text.splitlines()
    assert lines[0].startswith("name") and "1.23" in lines[2] and "12" in lines[3]
    assert len({len(lines[0]), len(lines[1])}) == 1


def test_write_markdown_replaces_file(tmp_path):
    path = tmp_path / "results" / "r.md"
    write_markdown(path, "T", "pre", ["a", "b"], [[1, 2.5]])
    write_markdown(path, "T", "again", ["a", "b"], [[3, 4.0]])
    text = path.read_text()
    assert text.startswith("# T") and "again" in text and "| 3 | 4 |" in text and "pre" not in text
    assert list(path.parent.iterdir()) == [path]  # no temporary left behind
