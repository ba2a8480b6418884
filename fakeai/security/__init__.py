"""Authentication, rate limits, abuse detection and input validation (docs/security.md).

``runtime.Security`` holds the state, ``auth.Guard`` is the middleware that applies it
to every request, and ``hooks.admit``/``settle`` are what generating routes call once
they know the model and the prompt size.
"""
