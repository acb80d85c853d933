"""The resumed daemon: composition root, D-Bus adapter, notifier, watchers, sleep."""
