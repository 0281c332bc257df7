"""The plugin system: registration through the hook, entry points, duplicate names,
and the rule that every hook is documented and tested (after datasette)."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest
from typing import Annotated

from pydantic import Field

import gateway
import gateway.errors
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
    assert HOOKS == [
        "register_adapters", "register_contracts", "register_field_kinds", "register_jobs", "register_reasons",
        "register_reconciliations",
    ]


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


def _refused(manager: PluginManager, plugin: object, ask, message: str) -> None:  # type: ignore[no-untyped-def]
    manager.register(plugin, name="bad-plugin")
    try:
        with pytest.raises(PluginError, match=message):
            ask()
    finally:
        manager.unregister(plugin)


def test_hook_register_contracts():
    from typing import ClassVar

    from contracts import Contract, DeathEvent
    from contracts.fields import Phone, Text

    manager = PluginManager(load_entry_points=False)

    class WaterMeter(Contract):
        contract_name: ClassVar[str] = "WaterMeter"
        business_key_fields: ClassVar[tuple[str, ...]] = ("meter_no",)
        event_date_field: ClassVar[str | None] = None
        meter_no: Text
        phone: Phone | None = None

    class Plugin:
        @gateway.hookimpl
        def register_contracts(self, register):
            register(WaterMeter)

    plugin = Plugin()
    manager.register(plugin, name="water")
    try:
        assert manager.contract("WaterMeter") is WaterMeter
        assert WaterMeter.label_zh == "WaterMeter", "the Chinese name defaults to the contract's name"
        assert manager.contracts()["DeathEvent"] is DeathEvent, "built-ins come through the same hook"
        assert len(manager.contracts()) == 13
    finally:
        manager.unregister(plugin)
    assert "WaterMeter" not in manager.contracts()
    with pytest.raises(gateway.errors.UnknownName, match="Unknown contract 'WaterMeter'. Valid choices: AdoptionEvent"):
        manager.contract("WaterMeter")

    def contract_plugin(cls):  # type: ignore[no-untyped-def]
        class One:
            @gateway.hookimpl
            def register_contracts(self, register):
                register(cls)

        return One()

    clash = type("MyDeaths", (WaterMeter,), {"contract_name": "DeathEvent", "__module__": __name__})
    no_key = type("NoKey", (WaterMeter,), {"contract_name": "NoKey", "business_key_fields": (), "__module__": __name__})
    bad_path = type("BadPath", (WaterMeter,), {"contract_name": "BadPath", "business_key_fields": ("meter_number",), "__module__": __name__})
    bad_date = type("BadDate", (WaterMeter,), {"contract_name": "BadDate", "event_date_field": "read_on", "__module__": __name__})

    class Unknown(Contract):
        contract_name: ClassVar[str] = "UnknownKind"
        business_key_fields: ClassVar[tuple[str, ...]] = ("code",)
        code: Annotated[str, Field(json_schema_extra={"kind": "meter_secret"})]

    for bad, message in (
        (clash, r"Contract name 'DeathEvent' is registered twice: by test_plugins\.MyDeaths \(package .*\) and by contracts\.deaths\.DeathEvent"),
        (no_key, r"Contract test_plugins\.NoKey \(package .*\) has no business_key_fields"),
        (bad_path, r"business_key_fields names 'meter_number', which is not a field. Valid fields: meter_no, phone"),
        (bad_date, r"event_date_field names 'read_on', which is not a field"),
        (Unknown, r"field code has kind 'meter_secret', which is not a registered field kind. Valid kinds: address, credit_code"),
        (DeathEvent.model_fields, r"register\(\) takes a contracts.Contract subclass"),
    ):
        _refused(manager, contract_plugin(bad), manager.contracts, message)


def test_hook_register_field_kinds():
    from gateway.masking import FieldKind, mask_value, personal_kinds

    manager = PluginManager(load_entry_points=False)
    meter = FieldKind("meter_secret", "表计密钥", "meter secret", True, lambda value: value[:1] + "###")

    class Plugin:
        @gateway.hookimpl
        def register_field_kinds(self, register):
            register(meter)

    plugin = Plugin()
    manager.register(plugin, name="meter-kinds")
    try:
        kinds = manager.field_kinds()
        assert kinds["meter_secret"] is meter
        assert {"name", "id_number", "address", "phone", "document_number", "free_text", "credit_code"} <= set(kinds)
        assert mask_value("S3CRET", "meter_secret") == "S###", "masking uses the registered kinds"
        assert "meter_secret" in personal_kinds() and "phone" in personal_kinds() and "credit_code" not in personal_kinds()
    finally:
        manager.unregister(plugin)
    assert "meter_secret" not in manager.field_kinds()
    assert mask_value("S3CRET", "meter_secret") == "S3CRET", "an unregistered kind is masked by no rule of its own"

    class Twice:
        @gateway.hookimpl
        def register_field_kinds(self, register):
            register(FieldKind("phone", "电话", "phone", True, str))

    class Wrong:
        @gateway.hookimpl
        def register_field_kinds(self, register):
            register(FieldKind("Meter Secret", "表计密钥", "meter secret", True, str))

    _refused(manager, Twice(), manager.field_kinds, "Field kind 'phone' is registered twice")
    _refused(manager, Wrong(), manager.field_kinds, "the name must be snake_case")
    _refused(manager, type("NotAKind", (), {"register_field_kinds": gateway.hookimpl(lambda self, register: register("phone"))})(),
             manager.field_kinds, "register\\(\\) takes a gateway.masking.FieldKind")


def test_hook_register_reasons():
    manager = PluginManager(load_entry_points=False)

    class Plugin:
        @gateway.hookimpl
        def register_reasons(self, register):
            register("meter_no_format", "水表编号格式错误", "the meter number is malformed")

    plugin = Plugin()
    manager.register(plugin, name="meter-reasons")
    try:
        assert manager.reason_text("meter_no_format") == ("水表编号格式错误", "the meter number is malformed")
        assert manager.reasons()["id_check_char"] == ("公民身份号码校验位错误", "ID number check character is wrong")
        assert manager.reason_text("phone_format")[0].startswith("电话号码格式错误")
    finally:
        manager.unregister(plugin)
    assert manager.reason_text("meter_no_format", "fallback") == ("数据无效", "fallback")

    for code, zh, en, message in (
        ("MeterNo", "水表编号格式错误", "malformed", "Reason code 'MeterNo' must be snake_case"),
        ("meter_no", "", "malformed", "needs a Chinese and an English text, neither empty"),
        ("meter_no", "水表编号格式错误", " ", "needs a Chinese and an English text, neither empty"),
        ("missing", "没填", "empty", "Reason code 'missing' is registered twice with other texts"),
    ):
        bad = type("Bad", (), {"register_reasons": gateway.hookimpl(lambda self, register, c=code, z=zh, e=en: register(c, z, e))})()
        _refused(manager, bad, manager.reasons, message)


def test_an_adapter_raising_an_unregistered_code_is_refused_at_registration():
    manager = PluginManager(load_entry_points=False)
    adapter = type("Meters", (_adapter("water-meters", "population-office"),), {"reason_codes": ("meter_no_format",)})

    class Plugin:
        @gateway.hookimpl
        def register_adapters(self, register):
            register(adapter)

    _refused(manager, Plugin(), manager.adapters,
             "raises reason code\\(s\\) meter_no_format with no registered text: an unregistered code is refused at registration")

    class Texts:
        @gateway.hookimpl
        def register_reasons(self, register):
            register("meter_no_format", "水表编号格式错误", "the meter number is malformed")

    texts, plugin = Texts(), Plugin()
    manager.register(texts, name="texts")
    manager.register(plugin, name="meters")
    try:
        assert manager.adapter("water-meters").adapter_class is adapter
    finally:
        manager.unregister(plugin)
        manager.unregister(texts)


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
