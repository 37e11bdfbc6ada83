"""Reading Prometheus text in tests: a scrape of /metrics or of a metrics port, parsed with
prometheus_client's own parser."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


class Metrics:
    """The samples of one scrape."""

    def __init__(self, text: str):
        self.text = text
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}

    def series(self, name: str) -> list[tuple[dict, float]]:
        """(labels, value) of every sample called `name`."""
        return [(s.labels, s.value) for s in self.samples if s.name == name]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
        return sum(
            value
            for sample_labels, value in self.series(name)
            if all(sample_labels.get(k) == v for k, v in labels.items())
        )

    def since(self, earlier: Metrics, name: str, **labels: str) -> float:
        """How much `value(name, **labels)` moved from the `earlier` scrape to this one."""
        return self.value(name, **labels) - earlier.value(name, **labels)


def scrape(url: str) -> Metrics:
    """GET `url` (a /metrics page) and parse it; fails the test on any answer but 200."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return Metrics(response.read().decode())
