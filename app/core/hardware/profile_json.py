"""HardwareProfile <-> JSON: the ``homefire hw --json`` schema and the user profiles file format.

The keys are the dataclass field names (units in the names: ``_bytes``, ``_gbs``, ``_w``, ``_mj``),
plus ``"schema": 1``. Reading validates every field so a hand-edited or imported profile gives a
clear ConfigError instead of a crash deep in the fit estimator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, cast, get_args

from app.core.errors import ConfigError
from app.core.hardware.profile import (
    AbsentPart,
    Backend,
    CpuInfo,
    GpuDevice,
    GpuVendor,
    HardwareProfile,
    ProfileSource,
)

SCHEMA_VERSION = 1


def profile_to_dict(profile: HardwareProfile) -> dict[str, Any]:
    data: dict[str, Any] = {"schema": SCHEMA_VERSION}
    data.update(asdict(profile))
    return _lists(data)


def _lists(value: Any) -> Any:
    # JSON has arrays, not tuples; converting here keeps to_dict == json.loads(json.dumps(to_dict)).
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(item) for item in value]
    return value


class _Fields:
    """Typed reads from one JSON object, naming the bad field when one is wrong."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a JSON object")
        self.data = data
        self.where = where

    def _get(self, key: str, kinds: tuple[type, ...], optional: bool, what: str) -> Any:
        value = self.data.get(key)
        if value is None and optional:
            return None
        # bool is an int in Python, never a count or a size here.
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise ConfigError(f"{self.where}: {key!r} must be {what}")
        return value

    def text(self, key: str) -> str:
        return str(self._get(key, (str,), False, "a string"))

    def opt_text(self, key: str) -> str | None:
        value = self._get(key, (str,), True, "a string or null")
        return None if value is None else str(value)

    def count(self, key: str, optional: bool = True) -> int | None:
        value = self._get(key, (int,), optional, "a whole number")
        if value is not None and value < 0:
            raise ConfigError(f"{self.where}: {key!r} must not be negative")
        return None if value is None else int(value)

    def size(self, key: str) -> int:
        value = self.count(key, optional=False)
        assert value is not None  # optional=False raised otherwise
        return value

    def number(self, key: str) -> float | None:
        value = self._get(key, (int, float), True, "a number or null")
        if value is not None and value < 0:
            raise ConfigError(f"{self.where}: {key!r} must not be negative")
        return None if value is None else float(value)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._get(key, (bool,), True, "true or false")
        return default if value is None else bool(value)

    def choice(self, key: str, allowed: tuple[str, ...], optional: bool = False) -> str | None:
        value = self._get(key, (str,), optional, "a string")
        if value is not None and value not in allowed:
            raise ConfigError(f"{self.where}: {key!r} must be one of {', '.join(allowed)}")
        return None if value is None else str(value)

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise ConfigError(f"{self.where}: {key!r} must be a list")
        return value


_VENDORS: tuple[str, ...] = get_args(GpuVendor)
_BACKENDS: tuple[str, ...] = get_args(Backend)
_SOURCES: tuple[str, ...] = get_args(ProfileSource)


def _cpu(data: Any, where: str) -> CpuInfo:
    fields = _Fields(data, f"{where}: 'cpu'")
    simd = fields.items("simd")
    if not all(isinstance(flag, str) for flag in simd):
        raise ConfigError(f"{where}: 'cpu.simd' must be a list of strings")
    return CpuInfo(
        brand=fields.text("brand"),
        physical_cores=fields.count("physical_cores"),
        logical_cores=fields.count("logical_cores"),
        simd=tuple(simd),
        arch=fields.opt_text("arch"),
        performance_cores=fields.count("performance_cores"),
        efficiency_cores=fields.count("efficiency_cores"),
    )


def _gpu(data: Any, where: str) -> GpuDevice:
    fields = _Fields(data, where)
    return GpuDevice(
        vendor=cast(GpuVendor, fields.choice("vendor", _VENDORS)),
        name=fields.text("name"),
        memory_total_bytes=fields.size("memory_total_bytes"),
        memory_free_bytes=fields.count("memory_free_bytes"),
        memory_used_bytes=fields.count("memory_used_bytes"),
        unified_memory=fields.flag("unified_memory"),
        usable_memory_bytes=fields.count("usable_memory_bytes"),
        memory_bandwidth_gbs=fields.number("memory_bandwidth_gbs"),
        backend=cast(Backend | None, fields.choice("backend", _BACKENDS, optional=True)),
        usable_by_build=fields.flag("usable_by_build"),
        unusable_reason=fields.opt_text("unusable_reason"),
        driver_version=fields.opt_text("driver_version"),
        cuda_version=fields.opt_text("cuda_version"),
        compute_capability=fields.opt_text("compute_capability"),
        power_draw_w=fields.number("power_draw_w"),
        energy_mj=fields.count("energy_mj"),
        index=fields.count("index") or 0,
        memory_bandwidth_source=fields.opt_text("memory_bandwidth_source"),
        usable_memory_source=fields.opt_text("usable_memory_source"),
    )


def _absent(data: Any, where: str) -> AbsentPart:
    fields = _Fields(data, where)
    return AbsentPart(part=fields.text("part"), reason=fields.text("reason"))


def _strings(values: list[Any], where: str) -> tuple[str, ...]:
    if not all(isinstance(value, str) for value in values):
        raise ConfigError(f"{where} must be a list of strings")
    return tuple(values)


def profile_from_dict(data: Any, where: str = "profile") -> HardwareProfile:
    fields = _Fields(data, where)
    schema = fields.data.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise ConfigError(f"{where}: schema {schema!r} is not supported (this is {SCHEMA_VERSION})")
    name = fields.text("name")
    where = f"{where} {name!r}"
    fields.where = where
    backends = fields.items("backends") or ["cpu"]
    for backend in backends:
        if backend not in _BACKENDS:
            raise ConfigError(f"{where}: backend {backend!r} is not one of {', '.join(_BACKENDS)}")
    return HardwareProfile(
        name=name,
        source=cast(ProfileSource, fields.choice("source", _SOURCES, optional=True) or "user"),
        os=fields.text("os"),
        cpu=_cpu(fields.data.get("cpu"), where),
        ram_total_bytes=fields.size("ram_total_bytes"),
        ram_available_bytes=fields.count("ram_available_bytes"),
        ram_bandwidth_gbs=fields.number("ram_bandwidth_gbs"),
        ram_bandwidth_source=fields.opt_text("ram_bandwidth_source"),
        gpus=tuple(
            _gpu(gpu, f"{where}: gpus[{index}]") for index, gpu in enumerate(fields.items("gpus"))
        ),
        backends=cast(tuple[Backend, ...], tuple(backends)),
        llama_cpp_version=fields.opt_text("llama_cpp_version"),
        disk_free_bytes=fields.count("disk_free_bytes"),
        absent=tuple(
            _absent(part, f"{where}: absent[{index}]")
            for index, part in enumerate(fields.items("absent"))
        ),
        sources=_strings(fields.items("sources"), f"{where}: 'sources'"),
    )
