"""The process: daemon lifecycle, logging, systemd notification, memory tuning."""
