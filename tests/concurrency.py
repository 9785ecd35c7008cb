"""Running test code in several threads at once, for the races PostgreSQL must settle."""
import threading

from django.db import connections


def run_together(target, arguments) -> None:
    """Call target(argument) for each argument, each in its own thread (so with its own
    database connection), all released at the same moment; return when all are done."""
    barrier = threading.Barrier(len(arguments))

    def run(argument):
        try:
            barrier.wait()
            target(argument)
        finally:
            connections.close_all()  # this thread's connections

    threads = [threading.Thread(target=run, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
