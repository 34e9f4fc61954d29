"""The one exception type that reaches the user as a single actionable line instead of a traceback."""


class DepthcliError(Exception):
    """Bad input or environment: the message names the file/value, what is wrong and what to do.

    The CLI prints it as one line and exits with status 2. Science code raises it for anything a user
    can cause (bad paths, malformed files, unsupported sizes); programming errors stay ordinary
    exceptions so that they keep their tracebacks.
    """

    exit_status = 2  # what the command line exits with (a run stopped by a signal: 128 + its number)
