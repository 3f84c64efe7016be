"""The Textual app. It never imports torch or a library: it starts runs in a child process and only sees events."""
