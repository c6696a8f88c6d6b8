"""The run model: typed, versioned records that pass between the layers (docs/architecture.md).

``report``: the report.json document; its JSON Schema ships as docs/report.schema.json.
``sample``: one samples.jsonl record, the fields every sampler backend returns.
``run_info``: run.json, every key declared once.
``event``, ``operation``, ``role_sweep``: the lines of events.jsonl, operations.jsonl and
jsheap.jsonl, roles.jsonl; each record writes its line (``to_record``) and reads it back from
every format version (``from_record``, None for a line that is not one).
``alert``: alerts.jsonl, the sampler's live alerts.
``cleanup``: cleanup.json: the verifier's ProcessRecord and LeftoverFile, read back (every
format) as CleanupFacts.
``fields``: the type checks those readers share.
"""
