-- Someone edited a window's slots in the web UI.
UPDATE capacity_windows SET slots = 9 WHERE key = 'fall'
