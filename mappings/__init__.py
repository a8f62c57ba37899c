"""Package data: these JSON files install as lsr.definitions.mappings (read by lsr.definitions.load_definition)."""
