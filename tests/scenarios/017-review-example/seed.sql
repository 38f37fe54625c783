-- Students booked on the electives; the school accepted the agreement; a coordinator changed a window in the UI.
INSERT INTO rotations (capacity_window_id, student, start_date, end_date, status) VALUES ((SELECT id FROM capacity_windows WHERE key = 'electives'), 'Student One', '2027-02-01', '2027-02-28', 'scheduled');
INSERT INTO rotations (capacity_window_id, student, start_date, end_date, status) VALUES ((SELECT id FROM capacity_windows WHERE key = 'electives'), 'Student Two', '2027-03-01', '2027-03-28', 'scheduled');
UPDATE agreements SET status = 'active' WHERE key = 'state-2027';
UPDATE capacity_windows SET slots = 9 WHERE key = 'fall'
