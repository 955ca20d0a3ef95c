"""The application layer between HTTP and the rest: actions (a report, a toggle: rules + store +
events), the caches kept current by the change feed (directory, presence indexes), and the
state ``/register`` returns. Nothing here imports from ``presenced.api`` or ``presenced.web``."""
