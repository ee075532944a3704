"""Reading lbrecon's Prometheus page."""


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} of a Prometheus text page, samples as
    exposed (histogram buckets as `_bucket`)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types


def metric(samples, metric_name, **labels):
    return samples.get((metric_name, frozenset(labels.items())))
