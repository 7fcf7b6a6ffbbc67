SCHEDULE = {
    "feedback-resend-notifications": {
        "task": "feedback.resend_notifications",
        "schedule": 900.0,
    },
}
