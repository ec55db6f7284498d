"""Shared inference: cluster-robust variances, the wild cluster bootstrap, bootstrap helpers, and
few-treated inference (randomization, Conley-Taber, Ferman-Pinto)."""

from decrimkit.inference.cluster import ClusterVcov, cluster_adjustment, cr1_vcov, fixef_dof, hc1_vcov, sandwich
from decrimkit.inference.few_treated import FEW_TREATED, ResidualInference, warn_few_treated
from decrimkit.inference.randomization import RandomizationInference, assignments, count_assignments
from decrimkit.inference.wild import (
    WildBootstrap,
    WildInference,
    wild_cluster_bootstrap,
    wild_cluster_test,
    wild_weights,
)

__all__ = [
    "FEW_TREATED",
    "RandomizationInference",
    "ResidualInference",
    "WildInference",
    "assignments",
    "count_assignments",
    "warn_few_treated",
    "wild_cluster_test",
    "ClusterVcov",
    "WildBootstrap",
    "cluster_adjustment",
    "cr1_vcov",
    "fixef_dof",
    "hc1_vcov",
    "sandwich",
    "wild_cluster_bootstrap",
    "wild_weights",
]
