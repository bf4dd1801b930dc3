"""Every Celery task's name, once: domain code queues work by these and never imports ``tasks/``.

``tests/test_task_names.py`` checks that each is registered with the Celery app, and that nothing
under ``src/`` queues a task by a loose string.
"""

PLAN_DUE_DIGESTS = "papermail.plan_due_digests"
SEND_DELIVERY_BATCH = "papermail.send_delivery_batch"
SWEEP_DELIVERIES = "papermail.sweep_deliveries"
SEND_CONFIRMATION = "papermail.send_confirmation"
RECORD_HEARTBEAT = "papermail.record_heartbeat"
PURGE_EXPIRED_SIGNUPS = "papermail.purge_expired_signups"
SCORE_PAPERS = "papermail.score_papers"
FETCH_ARXIV = "papermail.fetch_arxiv"
FETCH_HUGGINGFACE = "papermail.fetch_huggingface"
FETCH_GITHUB = "papermail.fetch_github"
FETCH_HACKERNEWS = "papermail.fetch_hackernews"
FETCH_BLUESKY = "papermail.fetch_bluesky"
FETCH_SEMANTIC_SCHOLAR = "papermail.fetch_semantic_scholar"
CATCH_UP = "papermail.catch_up"
BACKFILL_ARXIV_DAYS = "papermail.backfill_arxiv_days"
PROCESS_SIGNUP = "papermail.process_signup"
SWEEP_SIGNUP_REQUESTS = "papermail.sweep_signup_requests"
LOOK_UP_PAPERS = "papermail.look_up_papers"
SWEEP_INBOUND_MESSAGES = "papermail.sweep_inbound_messages"
FETCH_BOUNCE_MAILBOX = "papermail.fetch_bounce_mailbox"
PROCESS_INBOUND_GROUP = "papermail.process_inbound_group"
SEND_PREFERENCES_LINK = "papermail.send_preferences_link"
