"""Fetching: HTTP and files under the address rules, limits and size caps; feed discovery."""
