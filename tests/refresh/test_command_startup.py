"""manage.py refresh --help starts quickly: Django's set-up (admin, app hooks) and the command's
parser load no library that only a run needs. The benchmark times it (bench.processes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
# What a fresh process has loaded once Django is set up and the command's parser is built, as
# `manage.py refresh --help` does before printing.
PROBE = """
import json, sys
import django
django.setup()
from django.core.management import load_command_class
load_command_class("refresh", "refresh").create_parser("manage.py", "refresh").format_help()
print(json.dumps(sorted(sys.modules)))
"""
# Loaded by a run (or a dry run, the API, a delivery), never by the set-up: the numerical
# libraries, the provider and webhook client, DRF's serializers and the run's own steps.
RUN_ONLY = ("numpy", "requests", "rest_framework.serializers", "refresh.steps.flow", "market_data.fetching")


def modules_loaded_at_start_up() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "refresh_project.settings_test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_set_up_and_the_command_parser_load_nothing_only_a_run_needs():
    loaded = modules_loaded_at_start_up()
    # The probe did what --help does: the admin was discovered and the command loaded.
    assert {"refresh.admin.runs", "portfolios.admin", "refresh.management.commands.refresh"} <= loaded
    # PostgreSQL's backend needs psycopg anyway; on SQLite only a COPY (PostgreSQL only) would.
    run_only = RUN_ONLY if connection.vendor == "postgresql" else (*RUN_ONLY, "psycopg")
    assert sorted(loaded.intersection(run_only)) == []
