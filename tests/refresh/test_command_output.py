"""manage.py refresh for people and scripts: the progress bar, --json, --help and every exit code."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from refresh.models import RefreshRun, RunStatus

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args) -> subprocess.CompletedProcess:
    """The command as a terminal runs it (argument errors exit before touching the database)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "refresh_project.settings_test"}
    return subprocess.run(
        [sys.executable, "manage.py", "refresh", *args],
        check=False,  # the exit code is what the tests look at
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_progress_bar_follows_the_steps_on_stderr_and_json_goes_to_stdout(demo, capsys):
    out = StringIO()

    call_command("refresh", "--all", stdout=out)

    bar = capsys.readouterr().err
    for step in ("Fetching data", "Recalculating metrics", "Reporting status"):
        assert step in bar
    assert "100%" in bar
    body = json.loads(out.getvalue())
    assert body["status"] == "success"
    assert "\n  " in out.getvalue()  # indented for a person


def test_json_prints_one_line_and_no_progress_bar(demo, capsys):
    out = StringIO()

    call_command("refresh", "--prices", "--json", stdout=out)

    assert capsys.readouterr().err == ""
    [line] = out.getvalue().splitlines()
    assert json.loads(line)["status"] == "success"


def test_timeout_exits_3(demo, settings):
    settings.REFRESH_TIME_LIMIT_SECONDS = {**settings.REFRESH_TIME_LIMIT_SECONDS, "prices": 0}

    with pytest.raises(SystemExit) as exit_info:
        call_command("refresh", "--prices", "--json", stdout=StringIO())

    assert exit_info.value.code == 3
    assert RefreshRun.objects.get().status == RunStatus.TIMEOUT


def test_a_refused_request_exits_64_and_starts_nothing(demo):
    with pytest.raises(CommandError) as error:
        call_command("refresh", "--prices", "--symbols", "NOPE", stdout=StringIO())

    assert error.value.returncode == 64
    assert not RefreshRun.objects.exists()


@pytest.mark.parametrize("args", [(), ("--all", "--mode", "sometimes"), ("--all", "--prices")])
def test_bad_arguments_exit_64_not_argparses_2_which_means_partial(args):
    result = _manage(*args)

    assert result.returncode == 64
    assert "error:" in result.stderr
    assert result.stdout == ""


def test_help_documents_json_and_the_exit_codes():
    result = _manage("--help")

    assert result.returncode == 0
    assert "--json" in result.stdout
    for line in ("0   success", "1   failed", "2   partial", "3   timeout or cancelled", "64  bad arguments"):
        assert line in result.stdout
