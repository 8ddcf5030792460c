"""The prediction API: FastAPI on Lambda (Mangum), serving one model artifact."""
