"""Video generators under test that are models, not code: diffusers pipelines named in suites."""
