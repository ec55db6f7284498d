"""The plan file's schema as pydantic models: key names, types and per-entry rules.

:func:`validate_document` checks a parsed TOML document against :class:`PlanDocument` and turns the
first problem into a :class:`~decrimkit.errors.PlanError` that names the key and says what to write
instead (``plan key outputs.seed must be int, got str 'zero'.``). Rules that need more than one
section, the file system or the estimators' signatures live in :mod:`decrimkit.plan.parse`.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from decrimkit.errors import PlanError
from decrimkit.limits import MAX_OPTION_DEPTH
from decrimkit.registry import ESTIMATORS, PLAN_ALIASES, entry

__all__ = ["ALLOWLIST", "AGGREGATIONS", "PLACEBOS", "CASE_LEVEL", "TAKES_RESULT", "STEPS", "LABEL",
           "PlanDocument", "EntryTable", "validate_document"]

# plan name -> (module, function). Only these can be called from a plan: the registry's entries with
# plan=True, under their registry names (the same as their results' Spec.estimator), and older aliases.
ALLOWLIST: dict[str, tuple[str, str]] = {
    **{e.name: (e.module, e.function) for e in ESTIMATORS if e.plan},
    **{alias: (entry(name).module, entry(name).function) for alias, name in PLAN_ALIASES.items()},
}
# Estimators that take the case-level data frame itself (one row per case), not a Panel; a plan that
# calls only these needs no [design] table, and their column roles go in ``options``.
CASE_LEVEL: frozenset[str] = frozenset({"iv.leniency"})
# Estimators that take another entry's result instead of the data: did.honest needs an event study.
# (From did.att_gt it gets the event-study aggregate, att_gt(...).aggregate("dynamic").)
TAKES_RESULT: dict[str, tuple[str, ...]] = {"did.honest": ("did.event_study", "did.sun_abraham", "did.att_gt")}
AGGREGATIONS = ("simple", "dynamic", "group", "calendar")
PLACEBOS = ("space", "time")
# Follow-up keys a plan entry may use, and the estimators that have them.
STEPS: dict[str, tuple[str, ...]] = {
    "aggregate": ("did.att_gt",),
    "placebo": ("synth.scm",),
    "refit_v": ("synth.scm",),
    "of": tuple(TAKES_RESULT),
}
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$")


def _problem(text: str) -> PydanticCustomError:
    """A rule broken at the validator's location; the message reads ``plan key <where><text>``."""
    return PydanticCustomError("plan", "{text}", {"text": text})


class _Table(BaseModel):
    """A TOML table: no unknown keys, no coercion (``seed = "0"`` is refused, not read as 0)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PlanMeta(_Table):
    name: str | None = None
    title: str | None = None
    description: str = ""


class DataTable(_Table):
    dataset: str | None = None
    file: str | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataTable:
        if (self.dataset is None) == (self.path is None):
            raise _problem(' needs exactly one of dataset = "<bundled name>" or path = "data/<file>.csv".')
        if self.file is not None and self.dataset is None:
            raise _problem(" has file but no dataset; data.file names a file of a bundled dataset.")
        return self


class DesignTable(_Table):
    unit: str | None = None
    time: str | None = None
    outcome: str | None = None
    cohort: str | None = None
    treated: str | None = None
    population: str | None = None
    weights: str | None = None
    group: str | None = None
    covariates: list[str] | None = None
    allow_reversal: bool | None = None
    freq: str | None = None
    count: bool | None = None

    @model_validator(mode="after")
    def _cohort_or_treated(self) -> DesignTable:
        if self.cohort is not None and self.treated is not None:
            raise _problem(" takes cohort or treated, not both.")
        return self

    def roles(self) -> dict[str, Any]:
        """The keyword arguments of ``Panel.from_frame`` (the keys the plan set)."""
        out = self.model_dump(exclude_none=True)
        if "covariates" in out:
            out["covariates"] = tuple(out["covariates"])
        return out


class OutputsTable(_Table):
    out: str | None = None
    seed: int = Field(0, ge=0)
    suppress_below: int = Field(11, ge=1)


def _option_ok(value: Any, depth: int = 0) -> bool:
    if isinstance(value, (str, int, float, bool)):
        return not (isinstance(value, float) and not np.isfinite(value))
    if isinstance(value, list):
        return depth < MAX_OPTION_DEPTH and all(_option_ok(v, depth + 1) for v in value)
    if isinstance(value, dict) and depth == 0:  # e.g. policy_model = { Oregon = "de_jure" }: plain values
        return all(isinstance(k, str) and _option_ok(v, MAX_OPTION_DEPTH) for k, v in value.items())
    return False


class EntryTable(_Table):
    """One ``[[estimators]]`` or ``[[robustness]]`` table."""

    name: str
    label: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    aggregate: list[str] = Field(default_factory=list)
    placebo: Literal["space", "time"] | None = None
    refit_v: bool | None = None
    of: str | None = None

    @field_validator("name")
    @classmethod
    def _allowed(cls, name: str) -> str:
        if name not in ALLOWLIST:  # read at validation time: the allowlist is the registry's
            raise _problem(f" = {name!r} is not an allowed estimator; use one of {', '.join(ALLOWLIST)}.")
        return name

    @field_validator("options")
    @classmethod
    def _plain_values(cls, options: dict[str, Any]) -> dict[str, Any]:
        for key, value in options.items():
            if not _option_ok(value):
                raise _problem(
                    f".{key} must be a string, number, boolean, a list of them (lists nested at most "
                    f"{MAX_OPTION_DEPTH} deep) or a table of them, got {type(value).__name__}."
                )
        return options

    @field_validator("aggregate")
    @classmethod
    def _aggregations(cls, aggregate: list[str]) -> list[str]:
        bad = [a for a in aggregate if a not in AGGREGATIONS]
        if bad:
            raise _problem(f": {bad[0]!r} is not an aggregation; use {', '.join(AGGREGATIONS)}.")
        return aggregate

    @field_validator("label")
    @classmethod
    def _label(cls, label: str | None) -> str | None:
        if label is not None and not LABEL.match(label):
            raise _problem(f" = {label!r} must be letters, digits, '_', '-' or '.'.")
        return label

    @model_validator(mode="after")
    def _steps(self) -> EntryTable:
        for step, names in STEPS.items():
            if step in self.model_fields_set and self.name not in names:
                raise _problem(f".{step} applies only to {', '.join(names)}, not {self.name}.")
        if self.refit_v is not None and self.placebo is None:
            raise _problem('.refit_v goes with placebo = "space" or "time" (it re-chooses V in each placebo fit).')
        if self.name in TAKES_RESULT and self.of is None:
            raise _problem(
                f' ({self.name}) needs of = "<label>", the label of an earlier entry using '
                f"{' or '.join(TAKES_RESULT[self.name])}."
            )
        return self


class PlanDocument(_Table):
    """A whole plan file; ``[design]`` is optional here (only case-level plans may leave it out)."""

    plan: PlanMeta = Field(default_factory=PlanMeta)
    data: DataTable
    design: DesignTable | None = None
    estimators: list[EntryTable] = Field(min_length=1)
    robustness: list[EntryTable] = Field(default_factory=list)
    outputs: OutputsTable = Field(default_factory=OutputsTable)
    allow_outside_paths: bool = False


# ---- the first validation error, as one sentence naming the key -------------------------------------------


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel]:
    """The model that holds the key at ``loc`` (``("robustness", 0, "fn")`` -> :class:`EntryTable`)."""
    model: type[BaseModel] = PlanDocument
    for part in loc[:-1]:
        if isinstance(part, str):
            model = _inner_model(model.model_fields[part].annotation)
    return model


def _inner_model(annotation: Any) -> Any:
    """The pydantic model inside an annotation (``list[EntryTable]``, ``DesignTable | None``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _type_name(annotation: Any) -> str:
    """``str | None`` -> ``str``; ``list[str]`` -> ``list[str]``; a model or dict -> ``table``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation)))
    if typing.get_origin(annotation) is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return "table"
    if typing.get_origin(annotation) is list:
        inner = typing.get_args(annotation)[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return "an array of tables"
        return f"list[{_type_name(inner)}]"
    return getattr(annotation, "__name__", str(annotation))


def _sentence(err: Any, doc: dict[str, Any]) -> str:
    loc, kind, value = tuple(err["loc"]), err["type"], err.get("input")
    if kind == "plan":  # a rule of the schema; a whole table's rule reads "plan [data] needs ..."
        where = f"[{loc[0]}]" if len(loc) == 1 else f"key {_where(loc)}"
        return f"plan {where}{err['ctx']['text']}"
    if kind == "extra_forbidden":
        allowed = ", ".join(_model_at(loc).model_fields)
        if len(loc) == 1:
            unknown = sorted(set(doc) - set(PlanDocument.model_fields))
            return f"unknown top-level key(s) {unknown} in the plan; allowed: {', '.join(sorted(PlanDocument.model_fields))}."
        return f"unknown key {_where(loc)} in the plan; allowed: {allowed}."
    # climb out of list items: a wrong item in covariates is reported at design.covariates
    item = ""
    while loc and isinstance(loc[-1], int) and len(loc) > 1 and loc[-2] not in ("estimators", "robustness"):
        loc, item = loc[:-1], "a list holding "
    key = loc[-1] if loc else ""
    if isinstance(key, int):  # an [[estimators]] item that is not a table
        return f"plan key {loc[0]!r} must be an array of tables ([[{loc[0]}]])."
    model = _model_at(loc)
    field = model.model_fields.get(key)
    if key == "estimators" and kind in ("too_short", "missing"):
        return f'plan has no [[{key}]] entry; add at least one, e.g. name = "did.twfe".'
    if kind == "missing":
        if len(loc) == 1:
            return f"plan has no [{key}] table; add one (see the schema in docs/cli.md)."
        if key == "name":
            return f"plan key {_where(loc[:-1])} has no name; give one of {', '.join(ALLOWLIST)}."
        return f"plan key {_where(loc)} is required."
    if kind == "greater_than_equal":
        return f"plan key {_where(loc)} must be >= {err['ctx']['ge']}, got {value!r}."
    if kind == "literal_error":
        return f"plan key {_where(loc)} = {value!r}: use one of {', '.join(map(str, _literal_values(field)))}."
    if len(loc) == 1 and field is not None and _type_name(field.annotation) == "table":
        return f"plan key {key!r} must be a table ([{key}]), got {type(value).__name__}."
    if len(loc) == 1 and key in ("estimators", "robustness"):
        return f"plan key {key!r} must be an array of tables ([[{key}]])."
    expected = _type_name(field.annotation) if field is not None else "valid"
    if key == "allow_outside_paths":
        return f"plan key allow_outside_paths must be true or false, got {value!r}."
    return f"plan key {_where(loc)} must be {expected}, got {item}{type(value).__name__} {value!r}."


def _literal_values(field: Any) -> tuple[Any, ...]:
    for arg in typing.get_args(field.annotation):
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return typing.get_args(field.annotation)


def validate_document(doc: dict[str, Any]) -> PlanDocument:
    """The document as a :class:`PlanDocument`; :class:`PlanError` naming the key on the first problem."""
    try:
        return PlanDocument.model_validate(doc)
    except ValidationError as exc:
        raise PlanError(_sentence(exc.errors(include_url=False)[0], doc)) from None
