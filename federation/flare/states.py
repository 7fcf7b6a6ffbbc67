"""FLARE job states (``RunStatus`` in nvflare.apis.job_def) onto the portal's run states."""

from __future__ import annotations

# FLARE status string -> portal FlJob status
SUBMITTED, RUNNING, FINISHED, FAILED, ABORTED = (
    "submitted",
    "running",
    "finished",
    "failed",
    "aborted",
)

FLARE_TO_PORTAL: dict[str, str] = {
    "SUBMITTED": SUBMITTED,
    "APPROVED": SUBMITTED,
    "DISPATCHED": SUBMITTED,
    "RUNNING": RUNNING,
    "FINISHED:COMPLETED": FINISHED,
    "FINISHED:ABORTED": ABORTED,
    "FINISHED:ABANDONED": FAILED,
    "FINISHED:EXECUTION_EXCEPTION": FAILED,
    "FINISHED:ABNORMAL": FAILED,
    "FINISHED:CAN_NOT_SCHEDULE": FAILED,
    "FINISHED:FAILED_TO_RUN": FAILED,
}


def map_status(flare_status: str | None) -> str:
    """Unknown states count as running until FLARE says the job finished."""
    if not flare_status:
        return SUBMITTED
    status = str(flare_status).upper()
    if status in FLARE_TO_PORTAL:
        return FLARE_TO_PORTAL[status]
    if status.startswith("FINISHED"):
        return FAILED
    return RUNNING
