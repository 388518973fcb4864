"""Input files: only regular files are read (never a FIFO or device), within a size limit, as
UTF-8 (BOM accepted); GBK is refused with the fix (or decoded for imports that ask), and YAML is
loaded with limits on depth, aliases and documents, refusing duplicate keys by line. Every
refusal is bad input (exit 2) that changes nothing."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session
from typer.testing import CliRunner

from core import infile
from core.calendar import load_overrides
from core.errors import InvalidInput
from core.yamlfile import MAX_DEPTH, load_yaml
from notifications import routing, templates
from safeloop import checklists, orgfile, risks
from safeloop.cli.inspect import read_results
from safeloop.cli.main import app
from tests.conftest import DEMO_ORG
from tests.helpers import is_zh, table_counts

ROOT = Path(__file__).resolve().parents[2]
CHECKLIST = ROOT / "safeloop" / "data" / "checklists" / "general-team.yaml"
ROUTING = ROOT / "notifications" / "routing.example.yaml"
REGISTER = "enterprise: jinhua\nareas:\n  - {name: 罐区, polygon: [[0, 0], [10, 0], [10, 10]]}\n"
RESULTS = "- {item: T01, outcome: fail, note: 两名操作工未戴防护眼镜}\n"
GBK_FIX = "不是 UTF-8 编码（看起来是 GBK/GB18030），请另存为 UTF-8 后重试"
LAUGHS = 'a: &a ["哈","哈","哈","哈","哈","哈","哈","哈","哈"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9))


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the block takes longer than ``seconds``."""
    def expired(*_: object) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def state(session: Session) -> tuple[dict[str, int], tuple[object, ...]]:
    """Every table's row count and the audit chain head: a refusal must change neither."""
    counts = table_counts(session)
    head = tuple(session.connection().execute(text("SELECT seq, hash FROM audit_head")).one())
    session.rollback()
    return counts, head


def gbk(path: Path, content: str) -> Path:
    path.write_bytes(content.encode("gbk"))
    return path


# ---- the reader ----------------------------------------------------------------------------


def test_gbk_is_detected_and_refused_with_the_fix_or_decoded_on_request(tmp_path: Path) -> None:
    path = gbk(tmp_path / "人员.csv", "编号,姓名\nsun.banzhang,孙班长\n")
    with pytest.raises(InvalidInput) as err:
        infile.read_text(path, "导入文件")
    assert GBK_FIX in err.value.message and str(path) in err.value.message
    assert infile.read_text(path, "导入文件", allow_gb18030=True) == "编号,姓名\nsun.banzhang,孙班长\n"


def test_bom_is_dropped_and_other_bytes_name_their_offset(tmp_path: Path) -> None:
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfname: \xe5\xad\x99\n")
    assert infile.read_text(bom) == "name: 孙\n"
    binary = tmp_path / "photo.yaml"
    binary.write_bytes(b"ok: 1\n\xff\xd8\xff\xe0")
    with pytest.raises(InvalidInput, match="第 6 字节（0xff）无法解码"):
        infile.read_text(binary)
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"a: 1\n\x00\x00")
    with pytest.raises(InvalidInput, match="第 5 字节是 NUL"):
        infile.read_text(nul)
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_bytes("a: 孙".encode("utf-16"))
    with pytest.raises(InvalidInput, match="UTF-16"):
        infile.read_text(utf16)


def test_fifo_device_directory_and_oversize_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "org.yaml"
    os.mkfifo(fifo)  # nobody writes: a blocking open or read would hang forever
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(infile.MAX_YAML_BYTES + 1)
    cases = [(fifo, "命名管道（FIFO），不是普通文件"), (Path("/dev/zero"), "设备文件，不是普通文件"),
             (tmp_path, "目录，不是普通文件"), (big, "超过上限 10 MB"),
             (tmp_path / "missing.yaml", "找不到文件")]
    for path, expected in cases:
        started = time.monotonic()
        with within(5), pytest.raises(InvalidInput) as err:
            infile.read_text(path)
        assert expected in err.value.message and is_zh(err.value.message)
        assert time.monotonic() - started < 1
    assert infile.check_regular(DEMO_ORG, "组织文件") == DEMO_ORG.stat().st_size
    with pytest.raises(InvalidInput, match="证据文件 /dev/zero 是设备文件"):
        infile.check_regular("/dev/zero", "证据文件", infile.MAX_EVIDENCE_BYTES)


# ---- the YAML loader -------------------------------------------------------------------------


def test_billion_laughs_is_refused_fast() -> None:
    started = time.monotonic()
    with within(5), pytest.raises(InvalidInput, match="十亿笑声"):
        load_yaml(LAUGHS, "laughs.yaml")
    assert time.monotonic() - started < 1
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    with pytest.raises(InvalidInput, match="别名（\\*引用）超过 100 个"):
        load_yaml(many, "many.yaml")
    with pytest.raises(InvalidInput, match="第 1 行：别名引用了包含它自身的结构"):
        load_yaml("a: &a [1, *a]\n", "cycle.yaml")


def test_merge_keys_and_a_few_aliases_still_load() -> None:
    value, _ = load_yaml("base: &b {x: 1, y: 2}\nitem:\n  <<: *b\n  y: 3\n", "ok.yaml")
    assert value == {"base": {"x": 1, "y": 2}, "item": {"x": 1, "y": 3}}


def test_deep_nesting_and_multiple_documents_are_refused() -> None:
    with within(5), pytest.raises(InvalidInput, match=f"deep.yaml 第 1 行：嵌套超过 {MAX_DEPTH} 层"):
        load_yaml("[" * 500 + "]" * 500, "deep.yaml")
    with within(5), pytest.raises(InvalidInput, match="deep.yaml 第 1 行"):
        load_yaml("[" * 100_000 + "]" * 100_000, "deep.yaml")
    with pytest.raises(InvalidInput, match="two.yaml 第 2 行：文件中有多个 YAML 文档"):
        load_yaml("a: 1\n---\nb: 2\n", "two.yaml")


def test_duplicate_keys_are_refused_naming_both_lines() -> None:
    with pytest.raises(InvalidInput) as err:
        load_yaml("people:\n  - id: sun\n    name: 孙\n    name: 钱\n", "org.yaml")
    assert err.value.message == ("org.yaml 第 4 行：键「name」重复（第 3 行已出现），"
                                 "同一映射中每个键只能出现一次")
    with pytest.raises(InvalidInput, match="第 2 行：键「true」重复（第 1 行已出现）"):
        load_yaml("yes: 1\ntrue: 2\n", "bool.yaml")  # YAML 1.1: both are the boolean true


# ---- every input file goes through them ---------------------------------------------------------


def test_gbk_input_files_are_refused_with_the_fix_and_change_nothing(org: Session,
                                                                    tmp_path: Path) -> None:
    before = state(org)
    loaders = {
        "组织文件": lambda p: orgfile.load(org, p),
        "检查表文件": lambda p: checklists.load(org, p),
        "风险点文件": lambda p: risks.load_register(org, p, actor="li.anquan"),
        "通知路由文件": lambda p: routing.load(p),
        "检查结果文件": lambda p: read_results(org, p),
        "日历覆盖文件": lambda p: load_overrides(p),
        "消息模板文件": lambda p: templates.load(p),
    }
    sources = {
        "组织文件": DEMO_ORG.read_text(encoding="utf-8"),
        "检查表文件": CHECKLIST.read_text(encoding="utf-8"),
        "风险点文件": REGISTER,
        "通知路由文件": ROUTING.read_text(encoding="utf-8"),
        "检查结果文件": RESULTS,
        "日历覆盖文件": "holidays:\n  - {date: 2027-01-01, name: 元旦}\n",
        "消息模板文件": "hazard.assign:\n  title: 隐患 {{ code }} 已分派\n  body: 请整改\n",
    }
    for what, load in loaders.items():
        path = gbk(tmp_path / f"{what}.yaml", sources[what])
        with pytest.raises(InvalidInput) as err:
            load(path)
        assert err.value.message.startswith(f"{what} {path} {GBK_FIX}"), err.value.message
    assert state(org) == before


def test_bom_org_and_checklist_files_load(session: Session, tmp_path: Path) -> None:
    org_file = tmp_path / "org.yaml"
    org_file.write_bytes(b"\xef\xbb\xbf" + DEMO_ORG.read_bytes())
    assert orgfile.load(session, org_file).created["person"] == 11
    checklist = tmp_path / "checklist.yaml"
    checklist.write_bytes(b"\xef\xbb\xbf" + CHECKLIST.read_bytes())
    assert checklists.load(session, checklist)[1] is True


def test_fifo_and_dev_zero_as_org_file_are_refused_and_change_nothing(org: Session,
                                                                     tmp_path: Path) -> None:
    fifo = tmp_path / "org.yaml"
    os.mkfifo(fifo)
    before = state(org)
    for path in (fifo, Path("/dev/zero")):
        with within(5), pytest.raises(InvalidInput, match="不是普通文件"):
            orgfile.load(org, path)
    assert state(org) == before


def test_nan_and_inf_polygons_are_refused(org: Session, tmp_path: Path) -> None:
    before = state(org)
    for bad in (".nan", ".inf", "-.inf"):
        path = tmp_path / "register.yaml"
        path.write_text(REGISTER.replace("[10, 10]", f"[10, {bad}]"), encoding="utf-8")
        with pytest.raises(InvalidInput, match="第 3 行 areas.0.polygon：第 3 个顶点不是有限数字"):
            risks.load_register(org, path, actor="li.anquan")
        with pytest.raises(InvalidInput, match="第 3 个顶点 .* 不是有限数字"):
            risks.set_area(org, "jinhua", "罐区", [[0, 0], [10, 0], [10, float(bad.replace(".", ""))]],
                           actor="li.anquan")
    with pytest.raises(InvalidInput, match="不是有限数字"):
        risks.parse_polygon("0,0 10,0 nan,10")
    assert state(org) == before


# ---- the CLI's own file options -----------------------------------------------------------------


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SAFELOOP_STORAGE_DIR", str(tmp_path / "store"))
    from core.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["--db", db_url, *args])

    assert invoke("org", "load", str(DEMO_ORG)).exit_code == 0
    yield invoke
    get_settings.cache_clear()


def test_plan_results_and_annual_plan_files_are_read_safely(cli, tmp_path: Path) -> None:
    laughs = tmp_path / "plan.yaml"
    laughs.write_text(LAUGHS, encoding="utf-8")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    gbk_plan = gbk(tmp_path / "gbk.yaml", "objectives: 消除隐患\n")
    commands = [
        (("hazard", "fire", "YH-000001", "draft_plan", "--as", "li.anquan", "--plan"), "十亿笑声"),
        (("inspect", "submit", "t/2026-11-02", "--as", "sun.banzhang", "--results"), "不是普通文件"),
        (("plan", "annual", "draft", "--as", "qian.jianguan"), GBK_FIX),
    ]
    for (args, expected), path in zip(commands, (laughs, fifo, gbk_plan), strict=True):
        with within(10):
            result = cli(*args, str(path))
        assert result.exit_code == 2, result.output
        assert expected in " ".join(result.output.split()), result.output
    duplicate = tmp_path / "dup.yaml"
    duplicate.write_text("objectives: 甲\nobjectives: 乙\n", encoding="utf-8")
    result = cli("hazard", "fire", "YH-000001", "draft_plan", "--as", "li.anquan", "--plan",
                 str(duplicate))
    assert result.exit_code == 2 and "键「objectives」重复" in result.output, result.output
