"""The plugin system: registration through the hook, entry points, duplicate names,
and the rule that every hook is documented and tested (after datasette)."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

import gateway
from gateway import hookspecs
from gateway.adapter import Adapter
from gateway.errors import PluginError
from gateway.plugins import PluginManager

import subprocess

from conftest import REPO, drop

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
HOOKS = sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "gateway_spec"))


def _adapter(name: str, department: str = "police") -> type[Adapter]:
    from contracts import BirthEvent

    class _Test(Adapter):
        contracts = (BirthEvent,)
        file_types = (".txt",)

        def parse(self, source):
            return iter(())

        def normalize(self, row):
            raise NotImplementedError

    _Test.name, _Test.department = name, department
    return _Test


@pytest.mark.backend_independent
def test_hooks_exist():
    assert HOOKS == ["register_adapters", "register_jobs", "register_reconciliations"]


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.backend_independent
def test_every_hook_is_documented(hook):
    text = DOCS.read_text(encoding="utf-8")
    assert re.search(rf"^##+ `?{hook}\(", text, re.M), f"{hook} is not documented in {DOCS}"
    assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.backend_independent
def test_every_hook_has_a_test(hook):
    assert f"test_hook_{hook}" in globals(), f"add test_hook_{hook} to tests/test_plugins.py"


@pytest.mark.backend_independent
def test_hook_register_adapters():
    manager = PluginManager(load_entry_points=False)

    class Plugin:
        @gateway.hookimpl
        def register_adapters(self, register):
            register(_adapter("water-board", "population-office"))

    plugin = Plugin()
    manager.register(plugin, name="test-plugin")
    try:
        info = manager.adapter("water-board")
        assert info.department == "population-office"
        assert info.contracts == ["BirthEvent"]
        assert "hospital-births" in manager.adapters(), "built-ins come through the same hook"
    finally:
        manager.unregister(plugin)
    assert "water-board" not in manager.adapters()


def test_hook_register_jobs(tmp_path):
    from gateway.config import load_settings
    from gateway.exchange.home import init_home
    from gateway.scheduler.runner import Job, JobResult, gateway_jobs

    init_home(tmp_path / "home")
    settings = load_settings(tmp_path / "home")

    class Stand:  # the console's stand-in: settings only
        def __init__(self):
            self.settings = settings

    manager = PluginManager(load_entry_points=False)
    builtin = [job.name for job in gateway_jobs(Stand(), manager)]
    assert builtin[0] == "inboxes" and "reconcile" in builtin, "built-ins come through the same hook"

    class Plugin:
        @gateway.hookimpl
        def register_jobs(self, register, gateway):
            register(Job("water-board-check", lambda context: JobResult("ok"), at=["06:30"]))

    plugin = Plugin()
    manager.register(plugin, name="test-plugin")
    try:
        jobs = {job.name: job for job in gateway_jobs(Stand(), manager)}
        assert set(jobs) == set(builtin) | {"water-board-check"}
        assert jobs["water-board-check"].schedule_text == "at 06:30 (China time)"

        class Twice:
            @gateway.hookimpl
            def register_jobs(self, register, gateway):
                register(Job("reconcile", lambda context: JobResult("again"), every=60))

        twice = Twice()
        manager.register(twice, name="twice")
        try:
            with pytest.raises(PluginError, match=r"'reconcile' is registered twice: by .*gateway\.reconcile\.job"):
                gateway_jobs(Stand(), manager)
        finally:
            manager.unregister(twice)
    finally:
        manager.unregister(plugin)
    assert "water-board-check" not in [job.name for job in gateway_jobs(Stand(), manager)]


@pytest.mark.backend_independent
def test_hook_register_reconciliations():
    from gateway.reconcile import Evidence, Reconciliation

    manager = PluginManager(load_entry_points=False)

    class Permits(Reconciliation):
        name = "permits-without-housing"
        subject_contract, evidence_contract = "ResidencePermit", "HousingOccupancy"
        matching_keys = ("holder.id_number", "occupants.id_number")
        grace = "2 months"
        notify = ("housing",)

        def subjects(self, records):
            return iter(())

        def evidence(self, records):
            return (Evidence(r, None) for r in records)

    class Plugin:
        @gateway.hookimpl
        def register_reconciliations(self, register):
            register(Permits)

    plugin = Plugin()
    manager.register(plugin, name="test-rules")
    try:
        rules = manager.reconciliations()
        assert rules["permits-without-housing"] is Permits
        assert "unregistered-births" in rules, "built-ins come through the same hook"
    finally:
        manager.unregister(plugin)
    assert "permits-without-housing" not in manager.reconciliations()

    class Clash:
        @gateway.hookimpl
        def register_reconciliations(self, register):
            register(type("Mine", (Permits,), {"name": "unregistered-births"}))

    class Broken:
        @gateway.hookimpl
        def register_reconciliations(self, register):
            register(type("NoDepartments", (Permits,), {"name": "broken-rule", "notify": ()}))

    for bad, message in ((Clash(), r"registered twice: by test_plugins.Mine .* and by gateway.reconcile.builtin.UnregisteredBirths"),
                         (Broken(), "notify names no department")):
        manager.register(bad, name="bad-rules")
        try:
            with pytest.raises(PluginError, match=message):
                manager.reconciliations()
        finally:
            manager.unregister(bad)


@pytest.mark.backend_independent
def test_duplicate_adapter_name_is_refused_naming_both():
    manager = PluginManager(load_entry_points=False)

    class Clash:
        @gateway.hookimpl
        def register_adapters(self, register):
            register(_adapter("hospital-births"))

    manager.register(Clash(), name="clash")
    with pytest.raises(PluginError) as info:
        manager.adapters()
    message = str(info.value)
    assert "hospital-births" in message
    assert "adapters.hospital_births.HospitalBirthsAdapter" in message
    assert "_adapter.<locals>._Test" in message


@pytest.mark.backend_independent
def test_register_refuses_what_is_not_an_adapter():
    manager = PluginManager(load_entry_points=False)

    class Wrong:
        @gateway.hookimpl
        def register_adapters(self, register):
            register(object)

    manager.register(Wrong(), name="wrong")
    with pytest.raises(PluginError, match="Adapter subclass"):
        manager.adapters()


@pytest.mark.backend_independent
def test_unknown_adapter_lists_the_choices():
    manager = PluginManager(load_entry_points=False)
    with pytest.raises(Exception) as info:
        manager.adapter("no-such")
    assert "Valid choices" in str(info.value) and "hospital-births" in str(info.value)


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A real distribution on sys.path, found through importlib.metadata entry points."""
    (tmp_path / "river_plugin.py").write_text(
        textwrap.dedent(
            '''
            from contracts import BirthEvent
            from gateway import Adapter, hookimpl

            class RiverAdapter(Adapter):
                name = "river-board"
                department = "population-office"
                contracts = (BirthEvent,)
                file_types = (".txt",)
                def parse(self, source):
                    return iter(())
                def normalize(self, row):
                    raise NotImplementedError

            @hookimpl
            def register_adapters(register):
                register(RiverAdapter)
            '''
        ),
        encoding="utf-8",
    )
    dist = tmp_path / "river_plugin-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: river-plugin\nVersion: 1.2.3\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[gateway]\nriver = river_plugin\n", encoding="utf-8")
    (dist / "top_level.txt").write_text("river_plugin\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("river_plugin", None)


@pytest.mark.backend_independent
def test_entry_point_plugins_load(installed_plugin):
    info = PluginManager().adapter("river-board")
    assert (info.package, info.version) == ("river-plugin", "1.2.3")


@pytest.mark.backend_independent
def test_disabled_and_allowlisted_plugins(installed_plugin, monkeypatch):
    monkeypatch.setenv("GATEWAY_DISABLED_PLUGINS", "river")
    assert "river-board" not in PluginManager().adapters()
    monkeypatch.delenv("GATEWAY_DISABLED_PLUGINS")
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "something-else")
    assert "river-board" not in PluginManager().adapters()
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "river")
    assert "river-board" in PluginManager().adapters()


@pytest.mark.backend_independent
def test_adapters_list_command_shows_package_and_version():
    listing = subprocess.run([str(REPO / ".venv/bin/gateway"), "adapters", "list"], capture_output=True, text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if "hospital-births" in line)
    assert "hospital" in line and "BirthEvent" in line and "interagency-gateway" in line and gateway.__version__ in line


def test_a_third_party_adapter_serves_its_department(settings, installed_plugin):
    from gateway.exchange.lifecycle import Gateway

    gw = Gateway(settings, plugins=PluginManager())
    try:
        drop(settings, "population-office", "anything.txt", b"hello\n")
        [outcome] = gw.run_once()
        assert outcome.status == "processed" and outcome.accepted == 0
        assert outcome.department == "population-office"
    finally:
        gw.close()
