"""Distributions to integers to bytes: scale tables, CDF tables, escapes, constriction calls."""

from .coder import CdfTables, decode, encode
from .stages import FactorizedStage, GaussianStage, SteppedFactorizedStage, default_scale_table

__all__ = ["CdfTables", "decode", "encode", "FactorizedStage", "GaussianStage", "SteppedFactorizedStage", "default_scale_table"]
