"""Reading GET /metrics in tests: every sample through prometheus_client's own parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str, **options) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} of GET /metrics, through the real parser."""
    response = httpx.get(url + "/metrics", timeout=10, **options)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    """The sample of `name` with exactly `labels`; failing that, the sum over the samples whose
    labels include them (modengine_decode_info carries machine-dependent decoder labels)."""
    family = samples.get(name, {})
    exact = tuple(sorted(labels.items()))
    if exact in family:
        return family[exact]
    return sum(v for key, v in family.items() if set(exact) <= set(key))
