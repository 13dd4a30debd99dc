"""One function per step: gather through the adapters, decide (planning is pure), act idempotently."""
