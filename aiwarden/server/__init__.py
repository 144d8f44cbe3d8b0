"""The HTTP shell around the monitoring service (FastAPI under uvicorn)."""
