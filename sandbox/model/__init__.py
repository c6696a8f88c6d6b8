"""The run model: typed, versioned records that pass between the layers (docs/architecture.md).

``report``: the report.json document; its JSON Schema ships as docs/report.schema.json.
``sample``: one samples.jsonl record, the fields every sampler backend returns.
``run_info``: run.json, every key declared once.
"""
