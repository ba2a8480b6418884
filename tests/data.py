"""Test data shared by several modules."""

import textwrap

# An extra catalog (--models-file) adding one small model.
ACME_CATALOG = textwrap.dedent("""\
    [[models]]
    id = "acme/test-1"
    provider = "meta"
    owned_by = "acme"
    created = 2024-06-01
    context_window = 4096
    max_output_tokens = 64
    tokenizer = "llama3"
    tokenizer_exact = false
    capabilities = ["chat", "completions"]
    """)
