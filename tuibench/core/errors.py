class UserError(Exception):
    """Something the user asked for cannot be done as asked.

    The message is one line that says what is wrong and what to do; the CLI prints it and exits 2.
    """
