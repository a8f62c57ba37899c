"""Package data: these JSON files install as lsr.definitions.pipelines (read by lsr.definitions.load_definition)."""
