"""Process plumbing every Sentimon process shares, and nothing else.

Each service's ``main.py`` and the embedded launcher import it; it imports no service.

* ``process``: binding the listening socket, the stop signal, serving HTTP until told to
  stop, logging a background task that died;
* ``http``: the one error shape of every HTTP answer, and 503 while the database is away;
* ``probes``: ``/healthz``, ``/readyz`` and ``/metrics`` for any process;
* ``auth``: API keys from ``Authorization: Bearer``, checked against a role;
* ``bus``: distributed mode's topics and the Kafka connection;
* ``database``: the prestart wait for the database.
"""
