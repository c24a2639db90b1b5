"""The deal: dates, pool, tranches, fees, accounts, support, triggers and waterfalls."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, PrivateAttr

from .common import OutputName, Rate, SchemaVersion, SourcedModel
from .dates import Dates
from .pool import Pool
from .support import Support
from .tranche import Account, Fee, Tranche
from .waterfall import CleanUpCall, CoverageRatioSpec, Trigger, Waterfalls


def _no_nul(text: str) -> str:
    if "\0" in text:
        raise ValueError("a scenario name or path cannot hold a NUL character")
    return text


#: a bundled scenario's name or a scenario file's path, relative to the deal file
ScenarioRef = Annotated[
    str, Field(strict=True, min_length=1, pattern=r"\S"), AfterValidator(_no_nul)
]

SCHEMA_VERSION = 1


class Deal(SourcedModel):
    """A whole deal as written in a deal file (TOML or JSON); :attr:`source` names the file."""

    #: identity fingerprint recorded when validated (see schema.load.revalidated_deal)
    _fingerprint: int | None = PrivateAttr(default=None)

    schema_version: SchemaVersion
    name: OutputName
    description: str = ""
    #: a code or name (CNY, 人民币): labels the outputs, so a name's rules (no control
    #: character, no formula start); an ESC in it reached the terminal
    currency: OutputName = "CNY"
    base_scenario: ScenarioRef | None = None
    deterministic_scenario: ScenarioRef | None = None
    base_rate: Rate = 0.0
    dates: Dates
    pool: Pool
    tranches: list[Tranche] = Field(min_length=1)
    fees: list[Fee] = Field(default_factory=list)
    accounts: list[Account] = Field(default_factory=list)
    support: list[Support] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)
    waterfalls: Waterfalls
    clean_up_call: CleanUpCall | None = None
    coverage_ratio: CoverageRatioSpec = Field(default_factory=CoverageRatioSpec)
