"""Shared inference: cluster-robust variances, the wild cluster bootstrap, bootstrap helpers."""

from decrimkit.inference.cluster import (
    ClusterVcov,
    WildBootstrap,
    cluster_adjustment,
    cr1_vcov,
    fixef_dof,
    hc1_vcov,
    sandwich,
    wild_cluster_bootstrap,
    wild_weights,
)

__all__ = [
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
