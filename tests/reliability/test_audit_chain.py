"""The chain's own defences: the head only moves forward, checkpoints are append-only and name
their chain, an auditor's anchor catches what the database alone cannot, and the recorded time
never goes backwards. Every attack here passed verify before the chain had these defences.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session
from typer.testing import CliRunner

from models import OutboxMessage
from models.db import make_engine
from safeloop.cli.main import app
from states import audit
from states.jobs import checkpoint
from tests.conftest import BACKENDS
from tests.helpers import fire, fresh_database, is_zh, walk_to
from tests.reliability.test_tamper import FIELDS, build_chain, is_sqlite

runner = CliRunner()
HEAD_REFUSED = "only moves forward"
SQLITE_TRIGGERS = (
    "audit_entry_no_update", "audit_entry_no_delete", "audit_head_forward_only",
    "audit_head_no_delete", "audit_head_single_row", "audit_checkpoint_no_update",
    "audit_checkpoint_no_delete",
)


def drop_all_triggers(session: Session) -> None:
    """An attacker with DDL rights removes every defence the database has."""
    conn = session.connection()
    if is_sqlite(session):
        for trigger in SQLITE_TRIGGERS:
            conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
    else:
        for table in ("audit_entry", "audit_head", "audit_checkpoint"):
            conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    session.commit()


def head(session: Session) -> tuple[int, str]:
    value = audit.lock_head(session.connection())
    session.rollback()
    return value


def notified_anchors(session: Session) -> list[str]:
    """``SEQ:HASH`` from each checkpoint notification, as the auditors received them."""
    payloads = session.connection().execute(
        select(OutboxMessage.payload).where(OutboxMessage.template == "audit.checkpoint")  # type: ignore[arg-type]
        .order_by(OutboxMessage.id)).scalars().all()  # type: ignore[arg-type]
    session.rollback()
    return [f"{p['seq']}:{p['hash']}" for p in map(json.loads, payloads)]


@pytest.fixture
def verify_cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """``safeloop --db URL audit verify ARGS`` with the storage folder (and so the configured
    checkpoint file) under tmp_path; returns (exit code, output)."""
    monkeypatch.setenv("SAFELOOP_STORAGE_DIR", str(tmp_path / "store"))
    from core.settings import get_settings

    get_settings.cache_clear()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--db", db_url, "audit", "verify", *args])
        return result.exit_code, result.output

    yield invoke
    get_settings.cache_clear()


def store_file(tmp_path: Path) -> Path:
    return tmp_path / "store" / checkpoint.CHECKPOINT_FILE


# ---- the head moves only forward; checkpoints are append-only ------------------------------


def test_head_only_moves_forward_to_an_existing_row(org: Session) -> None:
    n = build_chain(org)
    seq, digest = head(org)
    earlier = org.connection().execute(
        text("SELECT hash FROM audit_entry WHERE seq = :s"), {"s": n - 2}).scalar_one()
    org.rollback()
    refused = (
        f"UPDATE audit_head SET seq = {n - 2}, hash = '{earlier}'",  # back to an existing row
        "UPDATE audit_head SET seq = seq + 1",  # forward to a row that does not exist
        f"UPDATE audit_head SET hash = '{'f' * 64}'",  # same seq, another hash
        "UPDATE audit_head SET chain_id = 'another'",
        "DELETE FROM audit_head",
        f"INSERT INTO audit_head (id, seq, hash, chain_id) VALUES (2, 0, '{audit.GENESIS}', 'x')",
    )
    for statement in refused:
        with pytest.raises(DBAPIError, match=HEAD_REFUSED):
            org.connection().exec_driver_sql(statement)
        org.rollback()
    org.connection().exec_driver_sql(f"UPDATE audit_head SET seq = {seq}")  # a no-op is fine
    org.commit()
    assert head(org) == (seq, digest)
    assert audit.verify(org.connection()).ok
    org.rollback()


def test_deleting_rows_after_the_last_checkpoint_cannot_fix_the_head(org: Session) -> None:
    """The issue's attack: delete the rows after the last checkpoint (entry triggers bypassed)
    and set the head back to the checkpoint: the head's trigger refuses."""
    build_chain(org)
    point = checkpoint.take(org)
    hid = walk_to(org, "rectifying")
    fire(org, hid, "extend_deadline", "wang.zhuren", data={"deadline": "2027-01-05T00:00:00Z"},
         comment="补充")
    conn = org.connection()
    if is_sqlite(org):
        conn.exec_driver_sql("DROP TRIGGER audit_entry_no_delete")
    else:
        conn.exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER USER")
    org.commit()
    conn = org.connection()
    conn.execute(text("DELETE FROM audit_entry WHERE seq > :s"), {"s": point.seq})
    with pytest.raises(DBAPIError, match=HEAD_REFUSED):
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"),
                     {"s": point.seq, "h": point.hash})
    org.rollback()
    result = audit.verify(org.connection())  # the deletion was rolled back with it
    org.rollback()
    assert result.ok and result.count > point.seq


def test_checkpoints_are_append_only(org: Session) -> None:
    build_chain(org)
    checkpoint.take(org)
    statements = ["UPDATE audit_checkpoint SET hash = 'x'", "DELETE FROM audit_checkpoint"]
    if not is_sqlite(org):
        statements.append("TRUNCATE audit_checkpoint")
        statements.append("TRUNCATE audit_head")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only|only moves forward"):
            org.connection().exec_driver_sql(statement)
        org.rollback()
    assert checkpoint.check(org).ok


def test_each_database_gets_its_own_chain_id(tmp_path: Path) -> None:
    ids = []
    for i in range(2):
        with _sqlite_database(tmp_path / f"{i}.db") as url:
            eng = make_engine(url)
            with eng.connect() as conn:
                ids.append(audit.chain_id(conn))
            eng.dispose()
    assert len(set(ids)) == 2 and all(len(i) == 36 for i in ids)


@contextmanager
def _sqlite_database(path: Path) -> Iterator[str]:
    from safeloop.schema import upgrade

    url = f"sqlite:///{path}"
    eng = make_engine(url)
    upgrade(eng)
    eng.dispose()
    yield url


# ---- the anchor an auditor holds catches what the database alone cannot ---------------------


def test_truncation_with_every_defence_dropped_is_caught_by_the_anchor(
        org: Session, tmp_path: Path, verify_cli) -> None:
    """Rows after the first checkpoint deleted, the second checkpoint removed from the table and
    the file, the head set back, all triggers dropped: verify alone passes, the anchor the
    second checkpoint's notification gave the auditors does not."""
    file = store_file(tmp_path)
    build_chain(org)
    first = checkpoint.take(org, file=file)
    hid = walk_to(org, "rectifying")
    fire(org, hid, "extend_deadline", "wang.zhuren", data={"deadline": "2027-01-05T00:00:00Z"},
         comment="等待备件")
    second = checkpoint.take(org, file=file)
    anchors = notified_anchors(org)
    assert anchors == [f"{first.seq}:{first.hash}", f"{second.seq}:{second.hash}"]
    assert verify_cli("--anchor", anchors[1])[0] == 0

    drop_all_triggers(org)
    conn = org.connection()
    conn.execute(text("DELETE FROM audit_entry WHERE seq > :s"), {"s": first.seq})
    conn.execute(text("DELETE FROM audit_checkpoint WHERE seq > :s"), {"s": first.seq})
    conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": first.seq, "h": first.hash})
    org.commit()
    file.write_text(first.line() + "\n", encoding="utf-8")

    code, output = verify_cli()
    assert code == 0, output  # nothing inside the database or its file shows it any more
    code, output = verify_cli("--anchor", anchors[0], "--anchor", anchors[1])
    assert code == 1, output
    assert f"没有第 {second.seq} 条" in output and "截断" in output


def rewrite_everything(session: Session, file: Path) -> None:
    """A consistent rewrite inside the database: one actor changed, every later hash, the head,
    the checkpoint table and the checkpoint file recomputed to match."""
    drop_all_triggers(session)
    conn = session.connection()
    rows = [dict(r) for r in conn.execute(
        text(f"SELECT {', '.join(FIELDS)} FROM audit_entry ORDER BY seq")).mappings()]
    new_hash, prev = {}, audit.GENESIS
    for row in rows:
        if row["seq"] == 2:
            row["actor"] = "mallory"
        row["prev_hash"] = prev
        prev = row["hash"] = audit.entry_hash(row)
        new_hash[row["seq"]] = prev
        conn.execute(text("UPDATE audit_entry SET actor = :actor, prev_hash = :prev_hash, "
                          "hash = :hash WHERE seq = :seq"), row)
    conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": rows[-1]["seq"], "h": prev})
    points = [dict(r) for r in conn.execute(text("SELECT * FROM audit_checkpoint")).mappings()]
    for point in points:
        conn.execute(text("UPDATE audit_checkpoint SET hash = :h WHERE id = :i"),
                     {"h": new_hash[point["seq"]], "i": point["id"]})
    session.commit()
    lines = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
    file.write_text("".join(json.dumps({**p, "hash": new_hash[p["seq"]]}) + "\n" for p in lines),
                    encoding="utf-8")


def test_full_rewrite_inside_the_database_is_caught_by_the_anchor(
        org: Session, tmp_path: Path, verify_cli) -> None:
    file = store_file(tmp_path)
    build_chain(org)
    checkpoint.take(org, file=file)
    [anchor] = notified_anchors(org)
    rewrite_everything(org, file)
    code, output = verify_cli()
    assert code == 0, output  # the rewrite is consistent with everything the database holds
    code, output = verify_cli("--anchor", anchor)
    assert code == 1 and "与锚点不符" in output and "被改写" in output, output


@pytest.mark.parametrize("bad", ["12", "abc:def", "0:" + "a" * 64, "5:" + "g" * 64,
                                 "5:" + "a" * 63, "-1:" + "a" * 64])
def test_bad_anchor_is_bad_input(org: Session, verify_cli, bad: str) -> None:
    build_chain(org)
    code, output = verify_cli("--anchor", bad)
    assert code == 2 and "锚点" in output and is_zh(output), output


# ---- checkpoints name their chain -----------------------------------------------------------


def test_another_chains_checkpoint_is_a_warning_not_a_rewrite(
        org: Session, tmp_path: Path, verify_cli) -> None:
    """Two databases sharing one checkpoint file (the issue's false alarm): each one's verify
    names the other's checkpoints as another chain's and passes."""
    file = store_file(tmp_path)
    build_chain(org)
    checkpoint.take(org, file=file)
    with fresh_database("sqlite", tmp_path) as other_url:
        other = make_engine(other_url)
        with Session(other, expire_on_commit=False) as session:
            walk_to(session, "closed")
            theirs = checkpoint.take(session, file=file)
            report = checkpoint.check(session, file)
            assert report.ok and report.checked == 2, report  # its table row and file line
            assert len(report.warnings) == 1 and "另一条链" in report.warnings[0]
        other.dispose()
    code, output = verify_cli()
    assert code == 0 and "另一条链" in output and "被改写" not in output, output
    code, output = verify_cli("--json")
    report = json.loads(output)
    assert code == 0 and report["ok"] and report["checkpoint_problems"] == []
    assert [theirs.chain_id in w for w in report["checkpoint_warnings"]] == [True]


def test_this_chains_checkpoint_that_no_longer_matches_is_a_rewrite(
        org: Session, tmp_path: Path, verify_cli) -> None:
    file = store_file(tmp_path)
    build_chain(org)
    point = checkpoint.take(org, file=file)
    forged = checkpoint.Checkpoint(point.seq, "a" * 64, point.taken_at, None, point.chain_id)
    with file.open("a", encoding="utf-8") as handle:
        handle.write(forged.line() + "\n")
    code, output = verify_cli()
    assert code == 1 and "被改写" in output and f"第 {point.seq} 条" in output, output


def test_table_checkpoint_naming_another_chain_is_a_problem(org: Session) -> None:
    """Only a changed chain id can put another chain's checkpoint in this database's table."""
    build_chain(org)
    checkpoint.take(org)
    drop_all_triggers(org)
    org.connection().exec_driver_sql("UPDATE audit_head SET chain_id = 'forged-chain'")
    org.commit()
    report = checkpoint.check(org)
    assert not report.ok and "另一条链" in report.problems[0] and "forged-chain" in report.chain_id


def test_missing_checkpoint_file_is_reported(org: Session, tmp_path: Path, verify_cli) -> None:
    file = store_file(tmp_path)
    build_chain(org)
    code, output = verify_cli()
    assert code == 0 and "不存在" in output and "从未写入" in output, output  # nothing written yet
    checkpoint.take(org, file=file)
    assert verify_cli()[0] == 0
    file.unlink()
    code, output = verify_cli()
    assert code == 1 and str(file) in output and "不存在" in output, output


def test_unreadable_checkpoint_file_is_a_problem(org: Session, tmp_path: Path, verify_cli) -> None:
    file = store_file(tmp_path)
    build_chain(org)
    checkpoint.take(org, file=file)
    file.write_text("{not json\n", encoding="utf-8")
    code, output = verify_cli()
    assert code == 1 and "无法读取或解析" in output, output


# ---- recorded time ---------------------------------------------------------------------------


def entry(n: int, **kw: object) -> audit.PendingEntry:
    return audit.PendingEntry("hazard", n, f"YH-{n:06d}", "report", None, "reported", "a", "r",
                              "2026-01-01T00:00:00.000000Z", None, "{}", None, **kw)  # type: ignore[arg-type]


def test_recorded_at_never_goes_backwards(session: Session) -> None:
    late, early = datetime(2030, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC)
    later = datetime(2031, 6, 1, 12, tzinfo=UTC)
    conn = session.connection()
    audit.append(conn, [entry(1, channel="cli", simulated=True)], clock=lambda: late)
    audit.append(conn, [entry(2), entry(3)], clock=lambda: early)  # the clock went back
    audit.append(conn, [entry(4, channel="flow")], clock=lambda: later)
    session.commit()
    rows = session.connection().execute(text(
        "SELECT seq, recorded_at, at, channel, credential, simulated, hash_version "
        "FROM audit_entry ORDER BY seq")).all()
    session.rollback()
    assert [r.recorded_at for r in rows] == [audit.format_at(late)] * 3 + [audit.format_at(later)]
    assert {r.at for r in rows} == {"2026-01-01T00:00:00.000000Z"}  # business time untouched
    assert [(r.channel, r.credential, bool(r.simulated), r.hash_version) for r in rows] == [
        ("cli", None, True, 2), (None, None, False, 2), (None, None, False, 2),
        ("flow", None, False, 2)]
    assert audit.verify(session.connection()).ok
    session.rollback()


def test_unknown_channel_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="channel"):
        audit.append(session.connection(), [entry(1, channel="telepathy")])
    session.rollback()
    assert audit.lock_head(session.connection())[0] == 0
    session.rollback()


def test_engine_rows_are_version_2_with_a_recorded_time(org: Session) -> None:
    """Every existing caller of PendingEntry (the engine here) writes version 2 rows."""
    walk_to(org, "closed")
    rows = org.connection().execute(text(
        "SELECT hash_version, recorded_at, simulated FROM audit_entry")).all()
    org.rollback()
    assert rows and all(r.hash_version == 2 and r.recorded_at and r.simulated is not None
                        for r in rows)


# ---- version 1 rows written before version 2 still verify beside new rows --------------------


@contextmanager
def database_at(backend: str, directory: Path, revision: str) -> Iterator[str]:
    """An empty database migrated only up to ``revision``."""
    from safeloop.schema import upgrade
    from tests.conftest import PG_URL, _pg_url_with_schema

    if backend == "sqlite":
        url = f"sqlite:///{directory / 'old.db'}"
        eng = make_engine(url)
        upgrade(eng, revision)
        eng.dispose()
        yield url
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL or "")
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = _pg_url_with_schema(schema)
    eng = make_engine(url)
    upgrade(eng, revision)
    eng.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


V1_COMMENTS = ['引号"与\\反斜杠', "换行\n制表\t", None, "emoji 😀", "分隔符\u2028"]


def write_v1_trail(url: str) -> tuple[int, str]:
    """Rows as the code before version 2 wrote them, and a checkpoint of their head."""
    eng = make_engine(url)
    prev = audit.GENESIS
    with eng.begin() as conn:
        for seq, comment in enumerate(V1_COMMENTS, start=1):
            values = [seq, "hazard", seq, f"YH-{seq:06d}", "report", None, "reported", "sun.banzhang",
                      "inspector", f"2026-11-0{seq}T01:00:00.000000Z", comment, '{"n":1}', None, prev]
            row = dict(zip(audit.HASHED_FIELDS, values, strict=True))
            prev = row["hash"] = audit.row_hash(values)
            conn.execute(text(f"INSERT INTO audit_entry ({', '.join(row)}) VALUES "
                              f"({', '.join(':' + c for c in row)})"), row)
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": len(V1_COMMENTS), "h": prev})
        conn.execute(text("INSERT INTO audit_checkpoint (seq, hash, taken_at) VALUES (:s, :h, 't')"),
                     {"s": len(V1_COMMENTS), "h": prev})
    eng.dispose()
    return len(V1_COMMENTS), prev


def verdict_both_ways(conn, monkeypatch: pytest.MonkeyPatch) -> list[audit.VerifyResult]:
    """verify with SQLite's json_array (on SQLite) and with the Python encoder."""
    results = [audit.verify(conn)]
    with monkeypatch.context() as patch:
        patch.setattr(audit, "_sqlite_json", lambda _cursor: False)
        results.append(audit.verify(conn, batch=2))
    return results


@pytest.mark.parametrize("backend", BACKENDS)
def test_version_1_trail_upgraded_then_version_2_rows_verify(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safeloop.schema import upgrade

    with database_at(backend, tmp_path, "0005") as url:
        seq, digest = write_v1_trail(url)
        eng = make_engine(url)
        upgrade(eng)  # 0006: the columns, a chain id, the triggers
        with Session(eng, expire_on_commit=False) as session:
            conn = session.connection()
            chain = audit.chain_id(conn)
            assert conn.execute(text("SELECT chain_id FROM audit_checkpoint")).scalar_one() == chain
            assert {r[0] for r in conn.execute(text("SELECT hash_version FROM audit_entry"))} == {1}
            audit.append(conn, [entry(10, channel="web", credential="session-7"),
                                entry(11, simulated=True)])
            session.commit()
            conn = session.connection()
            results = verdict_both_ways(conn, monkeypatch)
            assert all(r.ok and r.count == seq + 2 for r in results), results
            assert conn.execute(text("SELECT prev_hash FROM audit_entry WHERE seq = :s"),
                                {"s": seq + 1}).scalar_one() == digest  # v2 chained onto v1
            session.rollback()
            assert checkpoint.check(session).ok

            originals = {r.seq: dict(r._mapping) for r in session.connection().execute(text(
                "SELECT seq, comment, channel, hash_version FROM audit_entry WHERE seq <= 4"))}
            session.rollback()
            drop_all_triggers(session)
            for bad_seq, statement in ((2, "UPDATE audit_entry SET comment = 'x' WHERE seq = 2"),
                                       (3, "UPDATE audit_entry SET channel = 'web' WHERE seq = 3"),
                                       (4, "UPDATE audit_entry SET hash_version = 2 WHERE seq = 4")):
                session.connection().exec_driver_sql(statement)
                session.commit()
                bad = verdict_both_ways(session.connection(), monkeypatch)
                session.rollback()
                assert [(r.ok, r.first_bad_seq) for r in bad] == [(False, bad_seq)] * 2, statement
                session.connection().execute(text(
                    "UPDATE audit_entry SET comment = :comment, channel = :channel, "
                    "hash_version = :hash_version WHERE seq = :seq"), originals[bad_seq])
                session.commit()
            assert audit.verify(session.connection()).ok
            session.rollback()
        eng.dispose()
