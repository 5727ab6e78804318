"""gunicorn's settings for the web processes; gunicorn reads this file from the working directory.

Threaded workers: a request that waits for its run (``"wait": 20``) holds one thread, not a
whole process, so the others keep answering. Bind with ``-b`` or ``PORT``, size with ``-w`` or
``WEB_CONCURRENCY``; anything here can be overridden on the command line.
"""

import os

from gunicorn.glogging import Logger

worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Above the longest request the API allows (a 20 s wait), below a proxy's usual 60 s.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Our own middleware writes one structured, redacted record per request; gunicorn's access log
# stays off unless asked for (--access-logfile), and is redacted then too.
accesslog = None


class RedactingLogger(Logger):
    """gunicorn's logger with tokens and secrets taken out of access-log lines (the request line,
    query, headers and environ variables the format may name)."""

    def atoms(self, resp, req, environ, request_time):
        # Imported here: --chdir and --pythonpath, which put the project on sys.path, apply after this file is read.
        from core.log_redaction import redact  # noqa: PLC0415 - see above

        return redact(super().atoms(resp, req, environ, request_time))


logger_class = RedactingLogger
