"""``aiwarden apply --dry-run``: a field-level diff (current -> desired per rule, receiver and
route field) and exit 1 while changes are pending; receiver secrets named by
``${env:NAME}`` / ``{file: PATH}`` instead of written. A real server, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiwarden.cli import main
from aiwarden.store import kv
from tests.server.live import ThreadServer

SECRET = "s3cr3t-token-4711"


def _cli(server: ThreadServer, capsys: pytest.CaptureFixture[str], *argv: str
         ) -> tuple[int, str, str]:
    code = main([*argv, "--url", server.url])
    out = capsys.readouterr()
    return code, out.out, out.err


def _rules(model: str, critical: float, team: str | None = None) -> str:
    labels = f", labels: {{team: {team}}}" if team else ""
    return (f"rules:\n  - {{name: drift-x, model: {model}, metric: drift, column: x, "
            f"critical: {critical}{labels}}}\n  - {{name: vol, model: {model}, metric: volume, "
            "op: '<', critical: 1, window: 15m}\n")


def test_dry_run_shows_each_field_and_exits_1_while_changes_are_pending(
        server: ThreadServer, http: httpx.Client, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    m = f"diff-{uuid.uuid4().hex[:6]}"
    f = tmp_path / "rules.yaml"
    f.write_text(_rules(m, 0.3))
    code, out, _ = _cli(server, capsys, "apply", str(f), "--dry-run")
    assert code == 1 and f"+ {m}/drift-x\n    column: \"x\"" in out
    assert _cli(server, capsys, "apply", str(f))[0] == 0
    code, out, _ = _cli(server, capsys, "apply", str(f), "--dry-run")
    assert code == 0 and "would change 0 rule(s); 2 unchanged" in out

    f.write_text(_rules(m, 0.5, team="risk").replace(
        f"  - {{name: vol, model: {m}, metric: volume, op: '<', critical: 1, window: 15m}}\n",
        ""))
    before = [r for r in http.get("/rules").json() if r["model"] == m]
    code, out, _ = _cli(server, capsys, "apply", str(f), "--dry-run")
    assert code == 1
    assert f"~ {m}/drift-x\n" in out and "    critical: 0.3 -> 0.5\n" in out
    assert '    labels.team: (absent) -> "risk"\n' in out
    assert f"- {m}/vol\n" in out and '    metric: "volume"' in out
    assert [r for r in http.get("/rules").json() if r["model"] == m] == before  # untouched
    code, out, _ = _cli(server, capsys, "apply", str(f), "--dry-run", "-o", "json")
    plan = json.loads(out)
    (upd,) = [c for c in plan["diff"] if c["action"] == "update"]
    assert upd["kind"] == "rule" and {(x["field"], x["current"], x["desired"])
                                      for x in upd["fields"]} == {
        ("critical", 0.3, 0.5), ("labels.team", None, "risk")}


def _hook_file(model: str, url: str, extra: str = "") -> str:
    return (f"rules:\n  - {{name: vol, model: {model}, metric: volume, op: '<', critical: 1}}\n"
            f"receivers:\n  - {{type: webhook, name: hook, url: '{url}'{extra}}}\n"
            "route: {receiver: hook, group_wait: 5s}\n")


def test_receiver_secrets_from_the_environment_and_files(
        server: ThreadServer, http: httpx.Client, db_url: str,
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from aiwarden.alerting.notify import CONFIG
    from aiwarden.store.database import Database

    m = f"sec-{uuid.uuid4().hex[:6]}"
    f = tmp_path / "rules.yaml"
    signing = server.settings.secrets_folder / "signing"  # only files in there are read
    signing.parent.mkdir(exist_ok=True)
    signing.write_text("hmac-key-from-file\n")
    monkeypatch.setenv("AIWARDEN_SECRET_TEST_HOOK_URL", f"http://127.0.0.1:9/hook/{SECRET}")
    f.write_text(_hook_file(m, "${env:AIWARDEN_SECRET_TEST_HOOK_URL}",
                            f", secret: {{file: {signing}}}"))
    code, out, err = _cli(server, capsys, "apply", str(f))
    assert code == 0, err
    assert SECRET not in out + err + json.dumps(http.get("/notifications/config").json())
    center = server.server.config.app.state.notifications
    hook = center.receivers["hook"]  # resolved in the process that delivers
    assert hook._url == f"http://127.0.0.1:9/hook/{SECRET}"
    assert hook._secret == "hmac-key-from-file"  # the file's newline dropped
    db = Database(db_url)
    with db.read() as conn:
        stored = kv.get(conn, CONFIG)
    db.dispose()
    assert SECRET not in json.dumps(stored)  # the reference is stored, not the secret
    assert stored["receivers"][0]["url"] == "${env:AIWARDEN_SECRET_TEST_HOOK_URL}"

    # another reference: a diff on the stored setting, never the value
    monkeypatch.setenv("AIWARDEN_SECRET_TEST_HOOK_URL2", f"http://127.0.0.1:9/other/{SECRET}")
    f.write_text(_hook_file(m, "${env:AIWARDEN_SECRET_TEST_HOOK_URL2}"))
    code, out, _ = _cli(server, capsys, "apply", str(f), "--dry-run")
    assert code == 1 and "~ receiver hook" in out and SECRET not in out

    # a missing variable or file: refused, naming it and the field
    monkeypatch.delenv("AIWARDEN_SECRET_TEST_HOOK_URL2")
    for dry in ("--dry-run", None):
        code, _, err = _cli(server, capsys, "apply", str(f), *([dry] if dry else []))
        assert code == 2 and err.count("\n") == 1
        assert "receivers[0]" in err and "url" in err
        assert "environment variable AIWARDEN_SECRET_TEST_HOOK_URL2 is not set" in err
    f.write_text(_hook_file(m, "http://127.0.0.1:9/x", ", secret: {file: nope}"))
    r = http.post("/rules/apply", content=f.read_text())
    assert r.status_code == 422 and r.json()["detail"]["field"] == "receivers[0].secret"
    assert "nope" in r.json()["detail"]["message"]
    assert center.receivers["hook"]._url.endswith(SECRET)  # the refused file changed nothing


def test_references_resolve_inside_strings_and_whole_values(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from aiwarden.alerting.notifiers.secrets import resolve_secrets
    from aiwarden.errors import ParameterError

    monkeypatch.setenv("AW_TOKEN", "t0k")
    monkeypatch.setenv("AIWARDEN_SECRET_ENVS", "OTHER, AW_TOKEN")  # listed by the operator
    (tmp_path / "s").write_text("from-file")
    got: dict[str, Any] = resolve_secrets({
        "url": "https://h.example/x/${env:AW_TOKEN}?k=${file:%s}" % (tmp_path / "s"),
        "headers": {"Authorization": {"env": "AW_TOKEN"}}, "timeout": 3}, tmp_path)
    assert got == {"url": "https://h.example/x/t0k?k=from-file",
                   "headers": {"Authorization": "t0k"}, "timeout": 3}
    with pytest.raises(ParameterError) as err:
        resolve_secrets({"headers": {"X": "${env:AIWARDEN_SECRET_NOT_SET_ANYWHERE}"}})
    assert err.value.field == "headers.X" and "AIWARDEN_SECRET_NOT_SET_ANYWHERE" in str(err.value)


def test_only_secret_variables_can_be_named(
        server: ThreadServer, http: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever may change receivers must not be able to send the server's own environment
    (its database URL, a cloud token) to a URL of their choosing, nor learn which variables
    exist: an unlisted name is refused alike whether it is set or not."""
    monkeypatch.setenv("AW_SERVER_TOKEN", SECRET)
    answers = []
    for name in ("AW_SERVER_TOKEN", "AW_SURELY_UNSET_VARIABLE"):
        r = http.put("/notifications/config", json={"receivers": [
            {"type": "webhook", "name": "leak", "url": f"http://127.0.0.1:9/${{env:{name}}}"}]})
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail["field"] == "receivers[0].url" and SECRET not in r.text
        answers.append(detail["message"].replace(name, "NAME"))
    assert answers[0] == answers[1] and "AIWARDEN_SECRET_" in answers[0]
    assert "leak" not in server.server.config.app.state.notifications.receivers


def test_secret_files_are_one_short_line_of_a_regular_file_in_the_secrets_folder(
        server: ThreadServer, http: httpx.Client, tmp_path: Path) -> None:
    import os

    from aiwarden.alerting.notifiers.secrets import MAX_FILE_BYTES

    folder = server.settings.secrets_folder
    assert folder == Path(server.settings.data_dir) / "secrets"  # the default
    folder.mkdir(exist_ok=True)
    center = server.server.config.app.state.notifications
    outside = tmp_path / "outside"
    outside.write_text("not-a-secret\n")
    (folder / "ok").write_text("hook-key-ok\n")
    (folder / "big").write_text("x" * (MAX_FILE_BYTES + 1))
    (folder / "lines").write_text("one\ntwo\n")
    (folder / "dir").mkdir(exist_ok=True)
    (folder / "out-link").unlink(missing_ok=True)
    (folder / "out-link").symlink_to(outside)
    (folder / "in-link").unlink(missing_ok=True)
    (folder / "in-link").symlink_to(folder / "ok")
    fifo = folder / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)  # reading it would block the server forever

    def put(secret: object) -> httpx.Response:
        return http.put("/notifications/config", json={
            "receivers": [{"type": "webhook", "name": "sec", "url": "http://127.0.0.1:9/h",
                           "secret": secret}], "route": {"receiver": "sec"}})

    for name in ("ok", str(folder / "ok"), "in-link"):  # relative, absolute, a link inside
        r = put({"file": name})
        assert r.status_code == 200, (name, r.text)
        assert center.receivers["sec"]._secret == "hook-key-ok"
    refused = {str(outside): "is outside the secrets folder",
               "../outside": "is outside the secrets folder",
               "/etc/passwd": "is outside the secrets folder",
               "out-link": "is outside the secrets folder",
               "big": f"is larger than {MAX_FILE_BYTES} bytes",
               "lines": "holds more than one line", "dir": "is not a regular file",
               "fifo": "is not a regular file", "missing": "cannot read secret file"}
    for name, reason in refused.items():
        for secret in ({"file": name}, f"${{file:{name}}}"):
            r = put(secret)
            assert r.status_code == 422, (name, r.status_code, r.text)
            detail = r.json()["detail"]
            assert detail["field"] == "receivers[0].secret", detail
            assert reason in detail["message"] and repr(name) in detail["message"], detail
            assert "not-a-secret" not in r.text and "root:" not in r.text
    assert center.receivers["sec"]._secret == "hook-key-ok"  # the refusals changed nothing


def test_rollback_policies_in_a_rule_file_are_diffed(
        server: ThreadServer, http: httpx.Client, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    m = f"rbd-{uuid.uuid4().hex[:6]}"
    http.post("/models", json={"name": m}).raise_for_status()
    f = tmp_path / "rules.yaml"
    f.write_text(_rules(m, 0.3) + f"rollback_policies:\n  - {{model: {m}, severity: warning}}\n")
    code, out, _ = _cli(server, capsys, "apply", str(f), "--dry-run")
    assert code == 1 and f"+ rollback policy {m}\n" in out and '    severity: "warning"' in out
    assert _cli(server, capsys, "apply", str(f))[0] == 0
    assert _cli(server, capsys, "apply", str(f), "--dry-run")[0] == 0  # nothing pending
    f.write_text(f.read_text().replace("severity: warning", "severity: critical"))
    code, out, _ = _cli(server, capsys, "apply", str(f), "--dry-run")
    assert code == 1 and '    severity: "warning" -> "critical"' in out
    assert "would change 0 rule(s); 1 other setting(s)" in out


def test_a_lone_surrogate_in_a_rule_file_is_refused_by_its_field(http: httpx.Client) -> None:
    """YAML may spell a lone UTF-16 surrogate that UTF-8 cannot store: schemathesis found
    the apply answering 500 when it reached the notification config."""
    body = (b'{"receivers": [{"type": "webhook", "name": "\\ud8b4x", '
            b'"url": "http://a.example/"}]}')
    for dry in ("true", "false"):
        r = http.post("/rules/apply", content=body, params={"dry_run": dry},
                      headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"]["field"] == "receivers[0].name"
