"""Scrapes a /metrics page and parses it with the Prometheus Python client's parser (Debian
python3-prometheus-client), for the interop tests. The parser raises on anything malformed.

prometheus_scrape.py URL: prints CONTENT-TYPE, then FAMILY name type and SAMPLE name labels value
lines (labels sorted, k=v joined by commas).
"""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

with urllib.request.urlopen(sys.argv[1], timeout=30) as response:
    print("CONTENT-TYPE", response.headers.get("Content-Type"))
    text = response.read().decode("utf-8")

for family in text_string_to_metric_families(text):
    print("FAMILY", family.name, family.type)
    for sample in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
        print("SAMPLE", sample.name, labels, repr(sample.value))
