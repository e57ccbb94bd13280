"""Running ETL without anyone at a terminal: the scheduler, the inbox, retries and time-outs, notifications."""
