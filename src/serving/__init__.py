"""The FastAPI scoring service. Built in issue #7; empty until then."""
