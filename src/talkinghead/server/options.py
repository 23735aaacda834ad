"""Generation options by name (``pose_style=3``, ``still=true``) → a ``Config``.

The names are the fields of ``FaceConfig`` and ``MotionConfig`` plus ``seed``, ``fps``, ``crf``,
``transcript`` and the CLI's ``no_blink``. They are read from the dataclasses, so an option a
stage adds to its config (say ``emotion``) is accepted here, by the server and by ``batch``,
without further change; a name the config does not have is refused. Options whose value is a
file path (``ref_pose``, ``ref_blink``, any ``ref_*`` or ``*_path``) are left out for the server
(``allow_paths=False``): a client must never name files on the server.
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from talkinghead import config as config_module
from talkinghead.config import Config, FaceConfig, MotionConfig, VideoConfig
from talkinghead.errors import UserError

_SECTIONS = {"face": FaceConfig, "motion": MotionConfig}
_TOP_LEVEL = ("seed", "transcript")
_VIDEO = ("fps", "crf")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class OptionError(UserError):
    """An option is unknown or its value is not valid."""


@dataclass(frozen=True)
class Option:
    """One option: where it lives in ``Config`` (``section`` None: top level), its kind (bool,
    int, float, str, or floats: a comma-separated list), default and allowed values, if listed."""

    name: str
    section: str | None
    field: str
    kind: str
    default: Any
    choices: tuple[str, ...] = ()
    negate: bool = False

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (for the web page and the docs)."""
        default = (not self.default) if self.negate else self.default
        default = list(default) if isinstance(default, tuple) else default
        return {"name": self.name, "type": self.kind, "default": default,
                "choices": list(self.choices)}


def available_options(allow_paths: bool = True) -> dict[str, Option]:
    """Every option a request (``allow_paths=False``) or a manifest row may set, by name."""
    options: dict[str, Option] = {}
    for section, cls in _SECTIONS.items():
        for f, kind in _fields(cls):
            if not allow_paths and is_path_option(f.name):
                continue
            options[f.name] = Option(f.name, section, f.name, kind, f.default, _choices(f.name))
    for f, kind in _fields(VideoConfig):
        if f.name in _VIDEO:
            options[f.name] = Option(f.name, "video", f.name, kind, f.default)
    for f, kind in _fields(Config):
        if f.name in _TOP_LEVEL:
            options[f.name] = Option(f.name, None, f.name, kind, f.default)
    if "blink" in options:  # the CLI's spelling: --no-blink
        blink = options.pop("blink")
        options["no_blink"] = dataclasses.replace(blink, name="no_blink", negate=True)
    return options


def is_path_option(name: str) -> bool:
    """Whether the option's value names a file (``ref_pose``, ``motion_path``, ...)."""
    return name.startswith("ref_") or name.endswith(("_path", "_file", "_dir"))


def _fields(cls: type) -> list[tuple[dataclasses.Field, str]]:
    """(field, kind) for each field of a config dataclass; kind: bool, int, float, str or other."""
    hints = typing.get_type_hints(cls)
    return [(f, _kind(hints[f.name])) for f in dataclasses.fields(cls)]


def _kind(hint: Any) -> str:
    """The scalar kind behind a type hint (``int | None`` → ``int``; Literal → its values' type)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return "floats"
    if typing.get_origin(hint) is typing.Literal:
        return type(args[0]).__name__ if args else "str"
    if args and typing.get_origin(hint) is not None:
        return _kind(args[0])
    name = getattr(hint, "__name__", "")
    return name if name in ("bool", "int", "float", "str") else "str"


def _choices(name: str) -> tuple[str, ...]:
    """Allowed values: the crop modes, or a tuple ``NAMES`` in config.py (EMOTIONS for emotion)."""
    if name == "preprocess":
        from talkinghead.face.crop import MODES

        return tuple(MODES)
    listed = getattr(config_module, name.upper() + "S", ())
    return tuple(listed) if isinstance(listed, tuple) and all(isinstance(v, str) for v in listed) else ()


def parse_value(option: Option, raw: str) -> Any:
    """``raw`` text converted to the option's type; ``OptionError`` when it does not fit."""
    text = raw.strip()
    try:
        if option.kind == "bool":
            value = _parse_bool(text)
            return not value if option.negate else value
        if text == "" and option.default is None:
            return None
        if option.kind == "int":
            return int(text)
        if option.kind == "float":
            return float(text)
        if option.kind == "floats":
            return tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError as exc:
        raise OptionError(f"option {option.name}: {raw!r} is not a valid {option.kind}") from exc
    if option.choices and text not in option.choices:
        raise OptionError(f"option {option.name}: {raw!r} is not one of {', '.join(option.choices)}")
    return text


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(text)


def apply_options(base: Config, raw: Mapping[str, str], allow_paths: bool = True) -> Config:
    """``base`` with the named options set from their text values.

    Raises ``OptionError`` for an unknown name (file-path options too, unless ``allow_paths``) or
    a value the config refuses (its message says which option and why).
    """
    options = available_options(allow_paths)
    unknown = sorted(set(raw) - set(options))
    if unknown:
        raise OptionError(f"unknown option(s): {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(options))}")
    changes: dict[str | None, dict[str, Any]] = {}
    for name, text in raw.items():
        opt = options[name]
        changes.setdefault(opt.section, {})[opt.field] = parse_value(opt, text)
    try:
        return _replace(base, changes)
    except (ValueError, TypeError) as exc:
        raise OptionError(f"invalid options: {exc}") from exc


def _replace(base: Config, changes: dict[str | None, dict[str, Any]]) -> Config:
    top = dict(changes.get(None, {}))
    for section in ("face", "motion", "video"):
        if section in changes:
            top[section] = dataclasses.replace(getattr(base, section), **changes[section])
    return dataclasses.replace(base, **top)


def config_to_dict(config: Config) -> dict[str, Any]:
    """A JSON-ready copy of ``config`` (to hand to a job's worker process)."""
    return dataclasses.asdict(config)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """The inverse of ``config_to_dict``."""
    sections = {"face": FaceConfig, "motion": MotionConfig, "video": VideoConfig}
    kwargs = {k: (sections[k](**_tuples(v)) if k in sections else v) for k, v in data.items()}
    return Config(**kwargs)


def _tuples(values: Mapping[str, Any]) -> dict[str, Any]:
    """JSON gives lists back where the config held tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
