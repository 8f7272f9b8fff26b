"""calmirror: a local CalDAV system calendar kept in step with Apple iCloud.

Packages (each `__init__` maps its own modules): `remote` (the only code that talks to
iCloud), `local` (the only code that touches Radicale), `state` (the only code that touches
SQLite), `availability` (busy and free time), `web` (the local page), `cli` (the command
line), `emulator` (a loopback iCloud), `testing` (builders shared by tests and benchmarks).

The modules at this level, by what they are for:

- Plain data and settings: `model` (the types everything passes around), `errors` (the
  typed error tree), `config`, `config_edit`, `home` (where the files live),
  `credentials`, `logs`, `hrefs` (pure URL helpers), `digest` (an appointment's hash).
- Pure decisions: `plan` (mirror and push), `plan_linked` (pushed appointments changed in
  iCloud), `transform` (rewrites on the way in and out), `compat`, `compat_bounds` and
  `compat_series` (compatible copies of what Radicale refuses or reads otherwise),
  `ical_lines` (a line-level iCalendar model), `feedsplit` (one ICS feed into resources).
- Mirroring iCloud: `engine` (one mirror pass and one push pass), `mirror` (the pass's batch
  loop), `mirror_collections` (which collection mirrors which calendar), `mirror_recovery`
  (a mirror cut short by a crash), `mirror_source` (fetching, halving around a bad item),
  `mirror_lock` (one pass per mirror across processes), `sync_report` (what a pass did),
  `prefetch` (the next multiget while this one is worked on), `late_listing` (a resource
  missing from a listing is not yet gone), `full_listing` (a periodic listing of every ETag
  finds a change no sync token reports), `linked` (following pushed appointments), `me`
  (whose answer to an invitation counts).
- Pushing appointments: `detect` (client changes into outbox rows), `push` (the outbox to
  the linked calendar).
- Accounts and connections: `account` (connect, refresh, disconnect), `calendar_choice`
  (which calendar a person means, and its role), `connections` (one client and health per
  account), `health`, `reconnect` (following a moved calendar home), `refused` (a refused
  password in its server's words).
- Feeds: `feeds` (polling subscribed ICS feeds), `feed_mirror`, `feed_choices`.
- Running: `daemon` (the one process and its threads), `control` (one daemon per home,
  signals), `signal_inbox`, `sdnotify`, `worker` (a background queue), `interpreter`
  (its lock handed over every 1 ms), `arenas` (malloc arenas), `status` and `doctor` (what
  is wrong and what to do).
"""

__version__ = "0.1.0"
