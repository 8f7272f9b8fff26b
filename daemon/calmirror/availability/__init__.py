"""Busy and free time from iCloud's exact text: recurrence, busy rules, zones, slots and the guard.

The engine (`engine`) and everything under it are pure: calendars in, intervals out. Only
`sources` reads the local store, and only `guard` talks to the local server's write path.
"""
