"""The JSON reader streams (ijson): a malformed record is reported at once, with its record
number, line and column, without reading on to the end of the file.

Measured on this machine (2 cores, loaded) with a 205 MB JSON Lines file whose second
record is malformed (`open_table`, the mapping screen's first read):
    before (json.raw_decode on a sliding buffer, refilled to the end after the error):
        78.9 s, peak RSS 832 MB
    after (ijson, yajl2_c):  0.45 s, peak RSS 156 MB (Django's own; the encoding check's
        streaming pass over the file is most of the time)
A valid 300,000-record array reads at the same speed as before (~3 s for the header pass
and ~3 s for the rows, both versions, in the same noise).
"""
import json

import pytest

from profiles.importing.readers import ReadError, Table, open_table

pytestmark = pytest.mark.django_db

GOOD = '{"手机": "137%08d", "姓名": "某某", "城市": "北京", "备注": "' + "x" * 60 + '"}\n'


def big_file(tmp_path, *, bad_line: str, records=200_000, name="big.jsonl"):
    """JSON Lines: one good record, the bad one, then `records` good ones (about 20 MB)."""
    path = tmp_path / name
    with open(path, "w", encoding="utf-8") as file:
        file.write(GOOD % 0)
        file.write(bad_line)
        for number in range(records):
            file.write(GOOD % (number + 1))
    return path


def test_a_malformed_record_early_in_a_large_file_stops_the_reading_at_once(tmp_path):
    # given a 20 MB file whose second record is not valid JSON
    path = big_file(tmp_path, bad_line='{"手机": "13800138000", 姓名: "张伟"}\n')
    table = Table(path=str(path), format="json", encoding="utf-8-sig", headers=["手机", "姓名"],
                  size=path.stat().st_size)
    # when its rows are read
    with pytest.raises(ReadError) as error:
        list(table.rows())
    # then the error names the record, its line and column, in the staff member's language
    assert "第 2 条记录不是有效的 JSON（第 2 行第 23 列）" in str(error.value)
    # and the reader stopped at once: it read one chunk, not the 20 MB after the error
    assert table._bytes_read <= 2 * 2**20 < table.size / 8


def test_the_position_is_found_deep_in_the_file_and_in_an_array(tmp_path):
    path = tmp_path / "array.json"
    records = [{"手机": f"137{n:08d}", "n": n} for n in range(30_000)]
    text = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n]\n"
    text = text.replace('"n": 25000}', '"n": 25000,}')  # record 25,001, line 25,002
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReadError) as error:
        open_table(str(path))
    assert "第 25001 条记录" in str(error.value) and "第 25,002 行" in str(error.value)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_json_in_every_encoding_is_read_as_a_stream(tmp_path, encoding):
    path = tmp_path / "customers.json"
    path.write_bytes('[{"手机": "13800138000", "姓名": "张伟", "积分": 1.5, "标签": ["VIP", "高价值"]}]'.encode(encoding))
    table = open_table(str(path))
    assert table.headers == ["手机", "姓名", "积分", "标签"]
    assert list(table.rows()) == [(2, ["13800138000", "张伟", 1.5, '["VIP", "高价值"]'])]


def test_json_lines_and_concatenated_objects_are_read(tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_text('{"手机": "13800138000"}\n\n{"手机": "13900139000", "城市": "上海"}{"手机": "13700137000"}\n',
                    encoding="utf-8")
    table = open_table(str(path))
    assert table.headers == ["手机", "城市"]
    assert [cells for _n, cells in table.rows()] == [["13800138000", ""], ["13900139000", "上海"],
                                                     ["13700137000", ""]]


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "第 1 条记录不是带列名的对象"),
    ("[]", "JSON 文件中没有记录"),
    ('{"手机": "138', "第 1 条记录不是有效的 JSON"),
])
def test_json_that_holds_no_usable_records_is_refused_clearly(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReadError) as error:
        open_table(str(path))
    assert message in str(error.value)
