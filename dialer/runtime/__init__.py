"""The running service: wiring, scheduler, workers, ingest, the use cases."""
