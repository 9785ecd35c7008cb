"""Quick audience box: how long parsing one line takes (target ≤ 20 ms), and what the first
line in a fresh process costs (the tokenizer's dictionary and the lexicon).

    .venv/bin/python bench/bench_quick_audience.py                  # a fresh SQLite file in a temp folder
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_h4 .venv/bin/python bench/bench_quick_audience.py

The database is migrated and given the demo taxonomy plus 300 more tags and 60 segments
(a lexicon of a realistic size); nothing else is needed. Each line is parsed RUNS times;
the figures are per line: median, 95th percentile and worst, with the definition
validated by the condition language (as the box and the API do) and without."""
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
if "DATABASE_URL" not in os.environ:
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-quick-')}/db.sqlite3"
os.environ.setdefault("CDP_VAR_DIR", tempfile.mkdtemp(prefix="bench-quick-var-"))  # a cold jieba cache

RUNS = 50
TARGET_MS = 20
LINES = [
    "上海+女性+喜欢运动鞋+高购买频率", "95后女性、高消费、偏好口红", "近30天下单2次以上", "30天内没下单",
    "浏览过口红", "买过运动鞋", "25-35岁女性", "消费超过5000", "可短信触达的活跃客户", "同意邮件营销",
    "上海或北京女性+高价值", "非上海的新客", "沉睡客户+流失风险", "冠军客户", "上海+女姓+喜欢运动衣",
    "火星人+会飞的客户", "近7天浏览过口红且没买过口红", "80后男士、近一个月消费超过1000元",
    "women in Shanghai who like sneakers, high spend", "men in Beijing aged 25-35",
    "ordered at least 2 times in the last 30 days", "haven't ordered in 30 days", "Shangai women who like sneekers",
    "上海白领女性、VIP客户、双11大促人群",
]


def main():
    import django

    started = time.perf_counter()
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    setup_s = time.perf_counter() - started
    seed()
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']}); migrate + seed {setup_s:.1f} s")

    from segments.quick import lexicon
    from segments.quick.parse import quick_parse

    t0 = time.perf_counter()
    lexicon.tokenizer()
    cold_tokenizer = time.perf_counter() - t0  # includes writing the trimmed dictionary once
    lexicon._tokenizer_state.update(tokenizer=None, learned={})
    t0 = time.perf_counter()
    lexicon.tokenizer()
    warm_tokenizer = time.perf_counter() - t0  # a new process: the trimmed dictionary and jieba's cache exist
    t0 = time.perf_counter()
    first = quick_parse(LINES[0])
    first_parse = time.perf_counter() - t0  # builds the lexicon and teaches the tokenizer its phrases
    phrases = len(lexicon.lexicon_current().phrases)
    print(f"tokenizer load: {cold_tokenizer * 1000:.0f} ms the very first time (trims jieba's dictionary), "
          f"{warm_tokenizer * 1000:.0f} ms in later processes")
    print(f"first line in a process (lexicon of {phrases} phrases built): {first_parse * 1000:.0f} ms")
    assert first.definition and not first.unknown, first

    print(f"load average now: {', '.join(f'{n:.1f}' for n in os.getloadavg())} on {os.cpu_count()} cores "
          "(wall times wait for a core; CPU times do not)")
    for validate in (True, False):
        wall, cpu = [], []
        for line in LINES:
            for _run in range(RUNS):
                t0, c0 = time.perf_counter(), time.thread_time()
                quick_parse(line, validate=validate)
                cpu.append((time.thread_time() - c0) * 1000)
                wall.append((time.perf_counter() - t0) * 1000)
        label = "validated" if validate else "parse only"
        for name, times in (("wall", wall), ("CPU", cpu)):
            times.sort()
            median, p95, worst = statistics.median(times), times[int(len(times) * 0.95)], times[-1]
            print(f"per line, {label:10} {name:4} ({len(LINES)} lines × {RUNS}): median {median:.2f} ms, "
                  f"p95 {p95:.2f} ms, max {worst:.2f} ms  → p95 ≤ {TARGET_MS} ms: "
                  f"{'met' if p95 <= TARGET_MS else 'MISSED'}")


def seed():
    from profiles.demo import demo_taxonomy
    from profiles.models import Tag, TagCategory
    from segments.models import Segment
    from segments.services import segment_save

    if Tag.objects.filter(slug="bench-tag-0").exists():
        return
    demo_taxonomy()
    interest = TagCategory.objects.get(code="interest")
    Tag.objects.bulk_create([Tag(name=f"兴趣{i}号", slug=f"bench-tag-{i}", category=interest) for i in range(300)])
    for i, name in enumerate(["上海白领女性", "VIP客户", "双11大促人群", *(f"测试分群{i}" for i in range(57))]):
        if not Segment.objects.filter(slug=f"bench-segment-{i}").exists():
            segment_save(segment=Segment(slug=f"bench-segment-{i}", name=name),
                         definition={"field": "order_count", "op": "gte", "value": i})


if __name__ == "__main__":
    main()
